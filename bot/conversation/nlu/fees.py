"""Fees a request names: the fee word is the item (the dev sets' headers: [车费], [房租]) when the household pays it or
cannot pay it ("房租交唔起" → 房租, "要交书簿费" → 书簿费, "交电费" → 电费), without whose it is ("屋企电费" → 电费).

Pure and deterministic.
"""

from __future__ import annotations

import re

from bot.conversation.nlu.heads import _NOT_THING, tagged

# a fee the household cannot pay, or pays: the fee word is the item (the dev sets' headers: [车费], [房租])
_FEE = re.compile(
    r"(?:^|(?<=[\s，,。！!？?、]|交|付|缴))(?P<f>[\u4e00-\u9fff]{0,5}?(?:费|房租|租金))"
    r"(?=$|[\s，,。！!？?]|都|又|也|交|付|缴|俾|畀|好贵|太贵|贵|唔够|不够)"
)
_FEE_PAID = re.compile(
    r"^(?:都|又|也)?(?:交|付|缴|俾|畀|负担)(?:唔起|不起|唔到|不到|唔出|不出)|^(?:好贵|太贵|贵|唔够|不够)"
)


def fees(text: str) -> list[str]:
    """Fees the text says are paid or cannot be paid ("房租交唔起" → 房租, "要交书簿费" → 书簿费, "交电费" → 电费)."""
    found: list[str] = []
    for m in _FEE.finditer(text):
        fee = m.group("f")
        first = tagged(fee, hmm=False)[0]
        while len(fee) > len(first.word) + 1 and (
            first.word in ("屋企", "家里", "屋里", "屋企人", "来回", "每次", "每月", "每个月")
            or first.flag.startswith(("s", "f", "r"))
        ):
            fee = fee[len(first.word) :]  # "屋企电费", "每次来回车费": whose or how often, not the fee's name
            first = tagged(fee, hmm=False)[0]
        paid = text[m.start() - 1 : m.start()] in ("交", "付", "缴") or _FEE_PAID.match(text[m.end() :])
        if paid and len(fee) >= 2 and not _NOT_THING.match(fee) and fee not in found:
            found.append(fee)
    return found
