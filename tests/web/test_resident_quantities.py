"""The quantity a case records when a request names several things, through the real app (keyword interpreter):
one quantity only when the resident's words count every thing alike; otherwise none, the words kept."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot import keys
from bot.models import Case
from tests.helpers import System

CASE_NO = re.compile(r"MS\d{8}-\d{4,6}")


async def _summary(user: Any, first: str) -> str:
    r = await user.send_text(first)
    assert "同意" in r.text, r.text
    await user.send_text("同意")
    r = await user.send_text("不用")
    assert "请核对" in r.text, r.text
    return str(r.text)


async def _case(system: System, user: Any) -> Case:
    r = await user.send_text("确认")
    case_no = CASE_NO.search(r.text).group(0)  # type: ignore[union-attr]
    async with system.app[keys.SESSIONS]() as s:
        [case] = list((await s.exec(select(Case).where(Case.case_no == case_no))).scalars())
    return case


async def test_things_counted_differently_record_no_quantity(keyword_system: System) -> None:
    user = keyword_system.user()
    text = await _summary(user, "屋企冇嘢食 想要三包米同埋一桶油 住石碣")
    line = next(v for v in text.split("\n") if v.startswith("需要："))
    assert "米" in line and "油" in line and "×" not in line, text
    case = await _case(keyword_system, user)
    assert case.quantity is None and "三包米同埋一桶油" in case.description


async def test_only_one_of_several_things_counted_records_no_quantity(keyword_system: System) -> None:
    user = keyword_system.user()
    text = await _summary(user, "阿妈行唔到 想要部轮椅同埋冬天着嘅棉衣三件 住横沥")
    line = next(v for v in text.split("\n") if v.startswith("需要："))
    assert "轮椅" in line and "棉衣" in line and "×" not in line, text


async def test_things_counted_alike_record_the_count(keyword_system: System) -> None:
    user = keyword_system.user()
    text = await _summary(user, "想要两张棉被同两个枕头 住企石")
    assert "需要：棉被、枕头 × 2" in text, text


async def test_one_thing_keeps_its_quantity(keyword_system: System) -> None:
    user = keyword_system.user()
    text = await _summary(user, "想要三包米 住企石")
    assert "需要：米 × 3" in text, text


async def test_a_corrected_count_of_one_thing_is_recorded(keyword_system: System) -> None:
    user = keyword_system.user()
    await _summary(user, "想要三包米 住企石")
    r = await user.send_text("不对，要五包")
    assert "需要：米 × 5" in r.text, r.text


async def test_a_corrected_count_that_names_no_thing_of_several_records_none(keyword_system: System) -> None:
    user = keyword_system.user()
    await _summary(user, "想要两张棉被同两个枕头 住企石")
    r = await user.send_text("不对，要三个")
    assert "× 3" not in r.text, r.text  # which thing it counts is not said: not recorded for both


async def test_a_corrected_count_of_each_thing_alike_is_recorded(keyword_system: System) -> None:
    user = keyword_system.user()
    await _summary(user, "想要三包米同埋一桶油 住石碣")
    r = await user.send_text("不对，要两包米同两桶油")
    assert "× 2" in next(v for v in r.text.split("\n") if v.startswith("需要：")), r.text


async def test_a_phone_given_when_the_town_is_asked_is_taken_and_the_town_asked_again(
    keyword_system: System,
) -> None:
    """The answer to "which town?" that carries something else (a phone number): the bot says it took it and asks
    for the town again — not "没认出这个镇街" as if nothing had been understood; the phone is in the summary."""
    user = keyword_system.user()
    r = await user.send_text("想要部轮椅")
    assert "同意" in r.text, r.text
    r = await user.send_text("同意")
    assert "镇街" in r.text, r.text  # the town is asked before the phone
    r = await user.send_text("13912345678")
    assert "记下了" in r.text and "镇街" in r.text and "没认出" not in r.text, r.text
    r = await user.send_text("一些听不懂的话")
    assert "没认出" in r.text, r.text
    r = await user.send_text("住大岭山")
    assert "请核对" in r.text and "139****5678" in r.text, r.text
