"""Corrections and cancels inside one message: the town after a correction wins and a negated town never does
("在凤岗 哦不对 是清溪" → 清溪镇, "不是石碣 是石龙" → 石龙镇); a message that holds nothing but cancel phrases is a
cancel ("算了 不申请了"). Pure functions over the message text (used by `dialogue.slots`, which re-exports them)."""

from __future__ import annotations

import re

from bot.conversation.nlu.normalize import find_towns, town_mentions

# A correction inside one message: what comes after it replaces what came before.
CORRECTION = re.compile(
    r"不对|说错|讲错|搞错|讲错咗|错了|唔啱|唔系|唔係|应该是|应该系|其实是|其实系|改成|改为|哦不|呃不|不好意思"
)
NOT_X = re.compile(r"(?:不是|唔系|唔係|并非|而不是)\s?([^，,。；;！!？?\s]{1,8})")

_CANCEL_PHRASE = (
    r"(?:那|我|噉|咁)?(?:还是|都系|都是)?"
    r"(?:算了|算啦|算喇|罢了|取消(?:申请|登记|这个|这次|吧)?|撤回(?:申请)?|"
    r"(?:先|暂时|都|就|我)?(?:不|唔)(?:申请|办|登记|报|弄|搞|要申请|用申请|使申请|搞喇)|"
    r"(?:不|唔)要(?=[了喇啦咯嘞])|冇事了|冇事喇|没事了|作废)"
    r"[吧啦了呀喇咯嘞啰哦啊喎住先。.!！]*"
)
#: the whole message is one or more cancel phrases ("算了 不申请了", "唔申请喇"), nothing else
CANCEL_ONLY = re.compile(rf"^(?:{_CANCEL_PHRASE}[\s,，。、]*)+$")


def is_cancel(text: str) -> bool:
    """An unambiguous cancel of the request in progress: the message holds nothing but cancel phrases."""
    return bool(text and CANCEL_ONLY.match(text.strip()))


# ------------------------------------------------------------------------------------------------- towns
def read_town(text: str) -> str | None:
    """The town a message names, taking corrections inside it into account:
    "在凤岗 哦不对 是清溪" → 清溪镇, "不是石碣 是石龙" → 石龙镇, "住石碣 不是石龙" → 石碣镇."""
    negated: set[str] = set()
    for m in NOT_X.finditer(text):
        towns_here = find_towns(m.group(1))
        if towns_here:
            negated.add(towns_here[0])
    mentions = [t for t in town_mentions(text) if t[1] not in negated]
    if not mentions:
        return None
    last_fix = None
    for m in CORRECTION.finditer(text):
        if m.start() > mentions[0][0]:
            last_fix = m.end()
    if last_fix is not None:
        after = [t for t in mentions if t[0] >= last_fix]
        if after:
            return after[0][1]
    return mentions[0][1]
