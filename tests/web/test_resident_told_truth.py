"""What the resident is told must be true and in order (issue 11), through the real app: chat over the signed
webhook, staff steps through the lifecycle, the outbox sent by the real dispatcher to the WeChat simulator."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot import keys
from bot.cases.lifecycle import Actor, transition
from bot.db import transaction
from bot.models import Case, Offer, Resource, Staff, utcnow
from bot.ops.scheduler import dispatch_now
from tests.helpers import System

CASE_NO = re.compile(r"MS\d{8}-\d{4}")


async def _wish(system: System) -> tuple[Any, int]:
    user = system.user()
    await user.send_text("我妈走不了路，想要一辆轮椅，住厚街")
    await user.send_text("同意")
    await user.send_text("不用")
    r = await user.send_text("确认")
    case_no = CASE_NO.search(r.text).group(0)  # type: ignore[union-attr]
    async with system.app[keys.SESSIONS]() as s:
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).scalar_one()
    assert case.id is not None
    return user, case.id


async def _staff_steps(system: System, case_id: int, *steps: tuple[str, str | None]) -> None:
    async with transaction(system.app[keys.SESSIONS]) as s:
        staff = (await s.exec(select(Staff).where(Staff.username == "hj-truth"))).scalars().first()
        if staff is None:
            staff = Staff(username="hj-truth", role="town_staff", town="厚街镇", password_hash="x")
            s.add(staff)
            await s.flush()
        case = await s.get(Case, case_id)
        assert case is not None
        for action, note in steps:
            await transition(
                s, case=case, action=action, actor=Actor.of_staff(staff), note=note, now=utcnow()
            )


async def _received(system: System, openid: str) -> list[str]:
    await dispatch_now(system.app)
    return [m.display() for m in await system.sent_to(openid)]


async def test_work_started_by_the_town_does_not_claim_a_donor(keyword_system: System) -> None:
    user, case_id = await _wish(keyword_system)
    await _staff_steps(
        keyword_system, case_id, ("verify", None), ("accept", None), ("claim", None), ("match", None)
    )
    async with transaction(keyword_system.app[keys.SESSIONS]) as s:  # an invitation nobody answered yet
        res = Resource(
            key=f"r-{case_id}", name="爱心车行", kind="enterprise", home_town="厚街镇", categories=["助残"]
        )
        s.add(res)
        await s.flush()
        s.add(Offer(case_id=case_id, resource_id=res.id, status="offered", deadline=utcnow()))
    await _staff_steps(keyword_system, case_id, ("start", None))
    started = [t for t in await _received(keyword_system, user.openid) if "正在办理" in t]
    assert started and "爱心人士" not in started[-1] and "镇街工作人员" in started[-1], started


async def test_work_started_after_a_donor_said_yes_says_so(keyword_system: System) -> None:
    user, case_id = await _wish(keyword_system)
    await _staff_steps(
        keyword_system, case_id, ("verify", None), ("accept", None), ("claim", None), ("match", None)
    )
    async with transaction(keyword_system.app[keys.SESSIONS]) as s:
        res = Resource(
            key=f"r-{case_id}", name="爱心车行", kind="enterprise", home_town="厚街镇", categories=["助残"]
        )
        s.add(res)
        await s.flush()
        s.add(Offer(case_id=case_id, resource_id=res.id, status="accepted", deadline=utcnow()))
    await _staff_steps(keyword_system, case_id, ("start", None))
    started = [t for t in await _received(keyword_system, user.openid) if "正在办理" in t]
    assert started and "已有爱心人士认领" in started[-1], started


async def test_completion_arrives_before_the_survey(keyword_system: System) -> None:
    user, case_id = await _wish(keyword_system)
    await _staff_steps(
        keyword_system,
        case_id,
        ("verify", None),
        ("accept", None),
        ("claim", None),
        ("match", None),
        ("start", None),
        ("complete", "轮椅已送到家"),
    )
    received = await _received(keyword_system, user.openid)
    done = [i for i, t in enumerate(received) if "已办结" in t]
    survey = [i for i, t in enumerate(received) if re.search(r"评价|满意", t)]
    assert done and survey and done[0] < survey[0], (
        received
    )  # (the window's quota spent: templates, same order)


async def test_a_resident_who_follows_again_after_43004_hears_again(keyword_system: System) -> None:
    user, case_id = await _wish(keyword_system)
    await keyword_system.http.post(
        f"{keyword_system.sim_url}/_sim/subscription", json={"openid": user.openid, "subscribed": False}
    )
    await _staff_steps(keyword_system, case_id, ("verify", None))
    assert await _received(keyword_system, user.openid) == []  # 43004: unreachable
    async with keyword_system.app[keys.SESSIONS]() as s:
        from bot.models import Resident

        resident = (await s.exec(select(Resident).where(Resident.openid == user.openid))).scalar_one()
        assert resident.subscribed is False

    await keyword_system.http.post(
        f"{keyword_system.sim_url}/_sim/subscription", json={"openid": user.openid, "subscribed": True}
    )
    r = await user.send_event("subscribe")
    assert "欢迎" in r.text
    await _staff_steps(keyword_system, case_id, ("accept", None))
    received = await _received(keyword_system, user.openid)
    assert any("已受理" in t for t in received), received
