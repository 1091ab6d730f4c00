"""A case staff recorded for a 12345-hotline caller: the caller binds it in WeChat with the printed short code."""

from __future__ import annotations

from sqlalchemy import select

from bot import keys
from bot.cases.lifecycle import Actor, StaffCaseInput, create_staff_case
from bot.db import transaction
from bot.models import Case, Resident, Staff, utcnow
from tests.helpers import System


async def test_hotline_case_bound_with_its_code_then_listed(keyword_system: System) -> None:
    async with transaction(keyword_system.app[keys.SESSIONS]) as db:
        staff = Staff(username="hj1", role="town_staff", town="厚街镇", password_hash="x")
        db.add(staff)
        await db.flush()
        case = await create_staff_case(
            db,
            actor=Actor.of_staff(staff),
            data=StaffCaseInput(
                kind="micro_project", description="村口路灯不亮", town="厚街镇", channel="hotline_12345"
            ),
            now=utcnow(),
        )
        code, case_no = case.bind_code, case.case_no
    assert code and len(code) == 6

    stranger = keyword_system.user()
    r = await stranger.send_text("绑定 ZZZZZZ")
    assert "不正确" in r.text

    user = keyword_system.user()
    r = await user.send_text(f"绑定 {code}")
    assert "绑定成功" in r.text and case_no in r.text
    r = await user.send_text("查询进度")
    assert case_no in r.text
    r = await stranger.send_text(f"绑定 {code}")  # one-time
    assert "不正确" in r.text
    async with keyword_system.app[keys.SESSIONS]() as s:
        bound = (await s.exec(select(Case).where(Case.case_no == case_no))).scalar_one()
        owner = (await s.exec(select(Resident).where(Resident.openid == user.openid))).scalar_one()
    assert bound.resident_id == owner.id and bound.bind_code is None and bound.channel == "hotline_12345"
