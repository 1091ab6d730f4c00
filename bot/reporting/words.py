"""The frequent words of residents' descriptions (高频词), for the demand analysis: pure text work, no database.

What a supervisor reads here must say what people need ("轮椅", "助听器", "路灯") and must never say who they
are. So, in this order:

1. the text is masked with :func:`reference.privacy.mask_text` (phone and ID-card numbers), and the case's own
   beneficiary and address are cut out of it;
2. jieba segments it with part-of-speech tags (town names and programme words kept whole);
3. a word counts only when its tag is a content word (nouns, verbal nouns, verbs, adjectives; never a person's
   name ``nr*``, a number or measure word ``m``/``q``, a pronoun, an adverb, a particle or a time word), it is two
   to eight Chinese characters, it does not start with a numeral ("一辆", "三巷"), it is not a stop word (greetings,
   fillers, "不了", "想要" …), and it is not part of a beneficiary's name seen in the sample.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reference.privacy import mask_text
from reference.towns import TOWNS

STOP_WORDS = frozenset(
    """
    我们 你们 他们 她们 自己 这个 那个 这些 那些 这里 那里 这边 那边 什么 怎么 怎样 为什么 因为 所以 但是 而且
    如果 就是 还是 或者 可以 可能 需要 希望 想要 一下 一些 一个 一点 一直 已经 现在 时候 没有 不是 还有
    问题 情况 帮忙 帮助 麻烦 谢谢 你好 您好 请问 家里 有个 那么 这么 非常 比较 特别 真的 好像 觉得 知道 不能
    不会 不要 我们家 个人 目前 今天 明天 昨天 之前 以后 之后 然后 电话 联系 地址 姓名 名字 社区 村里 镇上 东莞
    不了 不到 不好 不行 不用 不便 得到 起来 下来 出来 过来 回来 一样 东西 这样 那样 怎么办 有没有 能不能
    可不可以 是不是 在吗 喂喂 哈喽 好的 好吧 行吗 可以吗 谢谢你 多谢 唔该 帮下 帮我 帮帮 麻烦你 打扰 请求 申请
    反映 反应 诉求 心愿 事情 事儿 好几年 几年 很多 太多 有点 一般 平时 每天 经常 总是 最近
    """.split()
)
#: jieba tags of content words; everything else (nr* names, m numbers, q measures, r pronouns, d adverbs, p, c, u*,
#: e, y, o, x, t time words, f directions, s places like 家里) is dropped
CONTENT_TAGS = frozenset({"n", "nz", "ng", "ns", "nt", "nw", "vn", "v", "vd", "a", "an", "ad", "l", "i", "j"})
_CHINESE = re.compile(r"[\u4e00-\u9fff]{2,8}")
_NUMERAL_START = re.compile(r"^[一二两三四五六七八九十百千万几半每整第零〇]")


@lru_cache(maxsize=1)
def _tagger() -> Any:
    """jieba's POS tokenizer with the town names kept whole (樟木头镇, not 樟木/头镇). Built once, on first use
    (jieba is imported here: loading its dictionary costs about a second, only the statistics need it)."""
    # lazy: jieba loads its dictionary on import (about a second): only when the word list is built
    import logging

    # lazy: jieba loads its dictionary on import (about a second): only when the word list is built
    import jieba
    import jieba.posseg  # lazy: as above

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    for t in TOWNS:
        tok.add_word(t.name, freq=200000, tag="ns")
        tok.add_word(t.short, freq=200000, tag="ns")
    for word in (
        "微心愿",
        "微实事",
        "轮椅",
        "助听器",
        "路灯",
        "减速带",
        "扶手",
        "学习用品",
        "低保户",
        "独居老人",
    ):
        tok.add_word(word, freq=100000, tag="n")
    return jieba.posseg.POSTokenizer(tok)


@dataclass(frozen=True, slots=True)
class Description:
    """A resident's description with the personal fields of its case, which must never become a frequent word."""

    text: str
    beneficiary: str | None = None
    address: str | None = None


def _clean(d: Description) -> str:
    text = mask_text(d.text)
    for private in (d.beneficiary, d.address):
        if private and len(private.strip()) >= 2:
            text = text.replace(private.strip(), " ")
    return text


def _counts(word: str, tag: str, stop_words: frozenset[str], names: set[str]) -> bool:
    if tag not in CONTENT_TAGS or not _CHINESE.fullmatch(word):
        return False
    if word in stop_words or _NUMERAL_START.match(word):
        return False
    return not any(word in name or name in word for name in names)


def top_words(
    texts: Iterable[str | Description], *, n: int = 30, stop_words: frozenset[str] = STOP_WORDS
) -> list[tuple[str, int]]:
    """The `n` most frequent content words of `texts` (rules in the module docstring), most frequent first."""
    items = [t if isinstance(t, Description) else Description(t) for t in texts]
    names = {d.beneficiary.strip() for d in items if d.beneficiary and len(d.beneficiary.strip()) >= 2}
    tagger = _tagger()
    counter: Counter[str] = Counter()
    for d in items:
        for pair in tagger.lcut(_clean(d)):
            word, tag = pair.word.strip(), pair.flag
            if tag.startswith("nr") and len(word) >= 2:
                names.add(word)  # a person's name jieba recognised: never counted, nor any word inside it
            elif _counts(word, tag, stop_words, names):
                counter[word] += 1
    for name in names:  # words counted before the name was seen
        for word in [w for w in counter if w in name or name in w]:
            del counter[word]
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
