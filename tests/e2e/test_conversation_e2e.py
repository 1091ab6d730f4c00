"""The first conversation, end to end: the simulator signs and encrypts like WeChat, real HTTP to the bot, the real
Rasa server understands, the case lands in the database, and `查询进度` lists it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from bot.models import Case, CaseEvent, InboundMessage, Resident

pytestmark = pytest.mark.rasa


async def _count(system, model, *where) -> int:  # type: ignore[no-untyped-def]
    from bot import keys

    async with system.app[keys.SESSIONS]() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).scalar_one()


async def test_wheelchair_wish_becomes_a_case_and_progress_lists_it(system) -> None:  # type: ignore[no-untyped-def]
    user = system.user()
    r = await user.send_text("我爸中风后走不了路，想要一辆轮椅，我们住在厚街镇")
    assert r.status == 200
    assert "同意" in r.text  # privacy notice before the first case
    assert await _count(system, Case) == 0

    r = await user.send_text("同意")
    assert "电话" in r.text  # the town came with the first message; only the optional phone is asked

    r = await user.send_text("13812345678")
    assert "请核对" in r.text
    assert "厚街镇" in r.text and "轮椅" in r.text
    assert "138****5678" in r.text and "13812345678" not in r.text  # masked when echoed

    r = await user.send_text("确认")
    m = re.search(r"MS\d{8}-\d{4}", r.text)
    assert m, r.text
    case_no = m.group(0)

    from bot import keys

    async with system.app[keys.SESSIONS]() as s:
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).scalar_one()
        resident = (await s.exec(select(Resident).where(Resident.openid == user.openid))).scalar_one()
        events = (await s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).scalars().all()
        linked = (
            await s.exec(
                select(func.count()).select_from(InboundMessage).where(InboundMessage.case_id == case.id)
            )
        ).scalar_one()
    assert case.kind == "micro_wish" and case.town == "厚街镇" and case.channel == "wechat"
    assert case.status == "submitted" and case.resident_id == resident.id
    assert case.contact_phone == "13812345678" and case.suggested_category in {"助残", "助医"}
    assert resident.consent_at is not None  # the agreement is recorded
    assert [e.to_status for e in events] == ["submitted"]
    assert linked == 4  # everything the resident said in this draft is on the case

    r = await user.send_text("查询进度")
    assert case_no in r.text and "已提交" in r.text


async def test_missing_town_is_asked_and_short_form_accepted(system) -> None:  # type: ignore[no-untyped-def]
    user = system.user()
    await user.send_text("我们村口的路灯坏了好几天了晚上好黑")
    r = await user.send_text("同意")
    assert "哪个镇街" in r.text  # the town is asked before the optional phone
    r = await user.send_text("塘厦")
    assert "电话" in r.text
    r = await user.send_text("不用")
    assert "请核对" in r.text and "塘厦镇" in r.text and "微实事" in r.text


async def test_duplicate_delivery_has_one_effect(system) -> None:  # type: ignore[no-untyped-def]
    user = system.user()
    first = await user.send_text("你好")
    again = await user.resend()
    assert again.status == 200
    assert again.text in (first.text, None)
    assert await _count(system, InboundMessage, InboundMessage.openid == user.openid) == 1
