"""Whom a wish is for, read the way the annotation guide marks it (nlu_data/README.md, "Annotation guide").

- A kin word or an age/condition group: 阿妈, 老豆, 孙女, 老公, 老人家, 独居老人, 留守儿童, 残疾人, 盲人 …
- The kin word without 我 ("我老公" → 老公, "给我妈买" → 妈), except where the Rasa tokenizer (jieba, with the
  project's user dictionary) makes one token of them ("我妈瘫在床上" → 我妈): a span always starts and ends on a
  token boundary, as the model's spans do.
- Not the speaker's own status (低保户, 外来工, 单亲妈妈), not people who are not the recipient (a kin word who
  died — "我老婆走咗之后…" —, neighbours, social workers, volunteers), no pronouns.
- One person: the one the help is asked for ("帮/给/为 X …") when the message says so, else the first named.

Pure and deterministic; jieba is loaded on first use (≈ 1 s) with the same user dictionary as the Rasa pipeline.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

_USERDICT = Path(__file__).resolve().parents[3] / "nlu_data" / "jieba" / "jieba_userdict.txt"

#: kin words and age/condition groups that name the recipient of a wish
PERSON_WORDS: frozenset[str] = frozenset(
    """独居老人 空巢老人 孤寡老人 留守儿童 残疾人 伤残人士 残障人士 聋哑人 盲人 精神病人 老人家 老人 老年人 长者
阿婆 阿公 阿伯 阿嫲 阿爷 阿嬷 阿妈 阿爸 阿姐 婆婆 公公 爷爷 奶奶 嫲嫲 外婆 外公 老爸 老妈 老豆 老母 老窦 我爸 我妈
妈妈 爸爸 父亲 母亲 家婆 家公 奶奶 孩子 小孩 小孩子 细路 细路仔 小朋友 儿童 BB 仔女 儿子 女儿 孙子 孙女 孙仔 孙女仔
外孙 外孙女 弟弟 妹妹 哥哥 姐姐 细佬 细妹 家姐 老伴 老公 老婆 丈夫 妻子 太太 爱人 学生""".split()
)
#: one-character kin words, a person only right after 我/个/我个 ("我个仔", "给我妈", "我个孙")
_SHORT_KIN = frozenset("仔女孙妈爸囡")
_SHORT_KIN_BEFORE = frozenset(("我", "个", "我个", "我嘅", "我的", "啲", "我啲"))
# a kin word followed by this is someone who died, or who told the speaker: the help is not for them
_GONE = re.compile(
    r"^(?:都|已经|早)?(?:走咗|走了|去世|过世|过身|死咗|死了|不在了|唔喺度|冇咗|没了)|"
    r"^(?:(?:话|说|讲)(?:我|可以|有得)|叫我|介绍|推荐|教我|告诉我|同我讲|跟我说)"  # who told the speaker about the programme
)
# the recipient is named right after these ("帮我阿妈申请", "给孩子买", "为残疾人申请")
_FOR = re.compile(r"(?:帮|给|俾|畀|为|替)(?:我|我哋|我们|屋企|家里)?(?:个|的|嘅)?$")

# "单亲妈妈", "单亲家庭的妈妈": the speaker's status, not a recipient
_STATUS_BEFORE = re.compile(r"单亲(?:的|嘅)?$")
_PERSON_RE = re.compile(
    "|".join(sorted((re.escape(w) for w in PERSON_WORDS if w not in ("我妈", "我爸")), key=len, reverse=True))
)

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    # jieba loads a dictionary of ~350k words (≈ 1 s): only on the first beneficiary lookup, not on import
    import jieba

    with _lock:
        tokenizer = jieba.Tokenizer()
        jieba.setLogLevel(60)
        tokenizer.initialize()
        if _USERDICT.is_file():
            with _USERDICT.open("rb") as handle:  # jieba leaves a file it opens itself unclosed
                tokenizer.load_userdict(handle)
    return tokenizer


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(word, start, end) for word, start, end in _tokenizer().tokenize(text)]


def _is_person(words: list[str], before: str) -> bool:
    joined = "".join(words)
    if joined in PERSON_WORDS:
        # "我妈"/"我爸" only when they are one token; otherwise the kin word without 我
        return not (len(words) > 1 and words[0] == "我")
    return len(words) == 1 and joined in _SHORT_KIN and before in _SHORT_KIN_BEFORE


def candidates(text: str) -> list[tuple[int, str]]:
    """(position, word) of every person named as a possible recipient, in order, token-aligned, the speaker's
    status, the dead and non-recipients left out."""
    cleaned = unicodedata.normalize("NFKC", text or "")
    tokens = _tokens(cleaned)
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        before = tokens[i - 1][0] if i else ""
        for size in (3, 2, 1):  # the longest token sequence that is a person ("空巢/老人" → 空巢老人)
            words = [t[0] for t in tokens[i : i + size]]
            if len(words) == size and _is_person(words, before):
                start, end = tokens[i][1], tokens[i + size - 1][2]
                if _counts(cleaned, start, end):
                    found.append((start, cleaned[start:end]))
                i += size
                break
        else:
            i += 1
    if not found:  # jieba glued the word to its neighbour ("孙仔读"): the word itself, off token boundaries
        found = [
            (m.start(), m.group())
            for m in _PERSON_RE.finditer(cleaned)
            if _counts(cleaned, m.start(), m.end())
        ]
    return found


def _counts(text: str, start: int, end: int) -> bool:
    """A person word that may be the recipient: not someone who died, not the speaker's status (单亲妈妈)."""
    return not _GONE.match(text[end:].lstrip()) and not _STATUS_BEFORE.search(text[:start])


def find_beneficiary(text: str) -> str | None:
    """Who the help is for ("我妈瘫在床上" → 我妈, "给我妈买个助行器" → 妈), or None."""
    found = candidates(text)
    if not found:
        return None
    cleaned = unicodedata.normalize("NFKC", text or "")
    for start, word in found:
        if _FOR.search(cleaned[max(0, start - 6) : start]):
            return word
    return found[0][1]


def is_recipient(text: str, value: str) -> bool:
    """Whether `value` (e.g. the model's span) is one of the recipients this text names."""
    return any(word == value for _, word in candidates(text))


def token_aligned(text: str, value: str) -> str:
    """`value` widened to the smallest span of whole tokens containing its first mention in `text`, as the
    annotation guide marks a word the tokenizer glues to a neighbour ("灯坏晒" → 灯坏); `value` itself when the text
    does not contain it or it already starts and ends on token boundaries."""
    cleaned = unicodedata.normalize("NFKC", text or "")
    at = cleaned.find(value) if value else -1
    if at < 0:
        return value
    end = at + len(value)
    tokens = _tokens(cleaned)
    start = max((s for _, s, _ in tokens if s <= at), default=at)
    stop = min((e for _, _, e in tokens if e >= end), default=end)
    return cleaned[start:stop].strip() or value
