"""The quantity a case records for a request that names several things.

A case has one quantity. When a request names several things, a quantity is recorded only when the resident's
words count every one of them, and alike ("两张被同两个枕头" → 2). Otherwise none is recorded — the counts differ
("两包米同一桶油"), or only some things are counted ("护理床同埋保暖内衣两套"), or a number names no thing — and the
description keeps the resident's words. A single thing keeps the quantity as read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.conversation.nlu.normalize import parse_quantity

_NUMBER = r"(?:\d+|[零一二两三四五六七八九十百几]+)"
_UNIT = r"(?:公斤|[台个袋斤件张箱桶套辆副本瓶盏条包床双部把只支块份盒罐对根座顶架捆提册枚樽粒])"
# a count right before the thing, perhaps with a description between ("两张", "两套冬天用嘅")
_BEFORE = re.compile(rf"{_NUMBER}\s*{_UNIT}\s*(?:[^\s，,。、同和跟及]{{1,8}}?(?:嘅|的|之))?\s*$")
# a count right after the thing, ending the phrase ("保暖内衣两套，", "…两套 同埋…")
_AFTER = re.compile(rf"\s*{_NUMBER}\s*{_UNIT}(?=[\s，,。！!？?、]|$|同|和|跟|及|仲有|还有)")


def shared(text: str, items: Sequence[str], quantity: int | None) -> int | None:
    """The quantity to record for `items` asked for in `text` (the resident's words so far), by the rule above;
    `quantity` is the one read from the words (kept for a single thing)."""
    if len(items) <= 1:
        return quantity
    counts = {_count(text, item) for item in items}
    if len(counts) != 1:
        return None
    return counts.pop()


def _count(text: str, item: str) -> int | None:
    """How many of `item` the words ask for where they name it last (a later answer counts), else None."""
    at = text.rfind(item)
    if at < 0:
        return None
    said = _BEFORE.search(text[:at]) or _AFTER.match(text, at + len(item))
    return parse_quantity(said.group()) if said else None
