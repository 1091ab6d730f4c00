"""The frequent words of residents' descriptions (高频词), for the demand analysis: pure text work, no database."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from reference.towns import TOWNS

STOP_WORDS = frozenset(
    """
    我们 你们 他们 她们 自己 这个 那个 这些 那些 这里 那里 这边 那边 什么 怎么 怎样 为什么 因为 所以 但是 而且
    如果 就是 还是 或者 可以 可能 需要 希望 想要 想要 一下 一些 一个 一点 一直 已经 现在 时候 没有 不是 还有
    问题 情况 帮忙 帮助 麻烦 谢谢 你好 您好 请问 家里 有个 那么 这么 非常 比较 特别 真的 好像 觉得 知道 不能
    不会 不要 我们家 个人 目前 今天 明天 昨天 之前 以后 之后 然后 电话 联系 地址 姓名 名字 社区 村里 镇上 东莞
    """.split()
)
_CJK_OR_WORD = re.compile(r"[\u4e00-\u9fff]")


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    """jieba with the town names kept whole (樟木头镇, not 樟木/头镇). Built once, on first use."""
    import jieba

    tok = jieba.Tokenizer()
    for t in TOWNS:
        tok.add_word(t.name, freq=200000)
        tok.add_word(t.short, freq=200000)
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
        tok.add_word(word, freq=100000)
    return tok


def top_words(
    texts: Iterable[str], *, n: int = 30, stop_words: frozenset[str] = STOP_WORDS
) -> list[tuple[str, int]]:
    """The `n` most frequent words (two characters or more, Chinese, not stop words, no numbers) in `texts`."""
    tok = _tokenizer()
    counter: Counter[str] = Counter()
    for text in texts:
        for word in tok.lcut(text or ""):
            word = word.strip()
            if len(word) < 2 or word in stop_words or not _CJK_OR_WORD.search(word):
                continue
            counter[word] += 1
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
