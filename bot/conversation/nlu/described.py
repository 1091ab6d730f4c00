"""A thing named after a description of it that ends in 的/嘅/之, in a list of things asked for.

"想要轮椅同埋冬天用嘅毛毯": the second thing is 毛毯, past the description 冬天用嘅 (a time, a season, a purpose,
a manner, a degree, a verb phrase). The description never spans a conjunction or a list word: in
"想要米同埋冬天的衣服" the first thing is 米, not a description "米同埋冬天的" of 衣服.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# a conjunction or a list word between two things (同埋, 同, 和, 跟, 及, 以及, 还有, 仲有, 加, a comma …)
_LINK = r"(?:以及|同埋|同|和|跟|及|与|、|加)"
_JOINER = rf"(?:{_LINK}|还有|仲有)"
# a description of the thing after it: a few words without a pause or a joiner, ending in 的/嘅/之
DESCRIPTION = re.compile(rf"(?:(?!{_JOINER})[^\s，,。！!？?的嘅之]){{1,8}}?(?:嘅|的|之)\s*")
# a joiner (or a pause with a list word) right before a description: the list goes on
JOINED = re.compile(
    rf"\s*(?:{_LINK}|[，,]\s*(?:还有|仲有|以及)?|\s(?:还有|仲有))\s*(?={DESCRIPTION.pattern})"
)


def past(text: str, at: int, phrase_at: Callable[[str, int], list[str]]) -> int:
    """Where the thing starts when a description stands at `at` ("冬天穿的棉衣" → at 棉衣, "落雨着的雨衣" → at 雨衣),
    else `at`: no thing after the description, or a thing that another is said of ("轮椅嘅坐垫": 轮椅 as read)."""
    m = DESCRIPTION.match(text, at)
    if m is None or not phrase_at(text, m.end()):
        return at
    own = phrase_at(text, at)
    end = text.find(own[-1], at) + len(own[-1]) if own else -1
    if own and re.match(r"\s*(?:嘅|的|之)\s*", text[end:]) and end + 1 >= len(m.group().rstrip()) + at:
        return at  # the whole description is a thing: what follows is a part of it
    return m.end()
