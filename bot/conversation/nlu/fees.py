"""Fees a request names: the fee word is the item (the dev sets' headers: [车费], [房租]) when the household pays it or
cannot pay it ("房租交唔起" → 房租, "要交书簿费" → 书簿费, "交电费" → 电费), without whose it is ("屋企电费" → 电费).

Pure and deterministic.
"""

from __future__ import annotations

import re

from bot.conversation.nlu.heads import _NOT_THING, tagged

# a fee the household cannot pay, or pays: the fee word is the item (the dev sets' headers: [车费], [房租]); a deposit
# is a fee (押金, 按金); fees listed with 同/和/、 are each one
_FEE = re.compile(
    r"(?:^|(?<=[\s，,。！!？?、]|交|付|缴|同|和|嘅|的))(?P<f>[\u4e00-\u9fff]{0,5}?(?:费|房租|租金|押金|按金))"
    r"(?=$|[\s，,。！!？?、]|都|又|也|交|付|缴|俾|畀|好贵|太贵|贵|唔够|不够|负担|欠|同|和|要?[\d一二两三四五六七八九十几每])"
)
_AMOUNT = r"(?:要|都要|每日|一日|每月|一个月|每次)?[\d一二两三四五六七八九十几百千万]+(?:蚊|块|元|百|千|万)?"
_FEE_PAID = re.compile(
    r"^(?:都|又|也)?(?:交|付|缴|俾|畀|负担)(?:唔起|不起|唔到|不到|唔出|不出)|^(?:好贵|太贵|贵|唔够|不够)|"
    r"^(?:都|又|也)?欠(?:咗|了)|^" + _AMOUNT + r"(?:蚊|块|元|百|千|万|几)"
)
_LIST = re.compile(r"^(?:同|和|、)[\u4e00-\u9fff]{1,5}?(?:费|房租|租金|押金|按金)")
# whose it is, glued before the fee ("孙仔嘅书杂费" → 书杂费)
_HOW_OFTEN = re.compile(r"^(?:每个?月|每日|每天|每次|每年|每个?礼拜|每个?星期)(?=[\u4e00-\u9fff]{2})")
_WHOSE = re.compile(r"^[\u4e00-\u9fff]{1,4}?(?:嘅|的)(?=[\u4e00-\u9fff]{2})")


def fees(text: str) -> list[str]:
    """Fees the text says are paid or cannot be paid ("房租交唔起" → 房租, "要交书簿费" → 书簿费, "交电费" → 电费)."""
    found: list[str] = []
    for m in _FEE.finditer(text):
        fee = _HOW_OFTEN.sub("", _WHOSE.sub("", m.group("f")))  # "孙仔嘅书杂费", "每个月药费": the fee's name
        first = tagged(fee, hmm=False)[0]
        while len(fee) > len(first.word) + 1 and (
            first.word in ("屋企", "家里", "屋里", "屋企人", "来回", "每次", "每月", "每个月")
            or first.flag.startswith(("s", "f", "r"))
        ):
            fee = fee[len(first.word) :]  # "屋企电费", "每次来回车费": whose or how often, not the fee's name
            first = tagged(fee, hmm=False)[0]
        inner = re.search(r"(?:交(?!通)|缴|付)(?=[\u4e00-\u9fff]{2,4}$)", fee)
        if inner:  # "想帮佢交话费": the fee paid, not who pays it
            fee, paid_inside = fee[inner.end() :], True
        else:
            paid_inside = False
        after = text[m.end() :]
        listed = _LIST.match(after)  # "房租同水电费都交唔起": both are unpaid
        paid = (
            paid_inside
            or text[m.start() - 1 : m.start()] in ("交", "付", "缴")
            or _FEE_PAID.match(after)
            or (listed is not None and _FEE_PAID.match(after[listed.end() :]) is not None)
        )
        if paid and len(fee) >= 2 and not _NOT_THING.match(fee) and fee not in found:
            found.append(fee)
    return found
