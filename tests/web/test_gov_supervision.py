"""督办 through the real app over HTTP: a city supervisor presses a case (timeline, the town's staff and the case's
owner told, a deadline of its own in working days); the minute sweeps escalate it once when unanswered; the town's
answer is recorded and the supervisor told; a town worker cannot press, another town cannot answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot import keys
from bot.cases.sweeps import run_sweeps
from bot.db import transaction
from bot.deadlines.workdays import add_working_days
from bot.models import CaseEvent, Outbox, Staff, Supervision
from tests.factories import NOW, OTHER, add_case, add_staff
from tests.helpers import build_app, csrf, sign_in


@pytest.fixture
async def client(db_url, aiohttp_client):
    """The whole app on a fresh migrated database: SQLite, and PostgreSQL when it runs."""
    return await aiohttp_client(build_app(db_url))


async def _with_openid(sessions, *names: str) -> None:
    async with transaction(sessions) as db:
        for name in names:
            staff = (await db.exec(select(Staff).where(Staff.username == name))).one()
            staff.openid = f"o-{name}"


async def _staff_messages(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as db:
        rows = (
            await db.exec(select(Outbox).where(Outbox.recipient_type == "staff").order_by(col(Outbox.id)))
        ).all()
        return [(r.openid, r.kind, r.text) for r in rows]


async def _press(client, case_no: str, request: str, days: str = "3") -> str:
    token = await csrf(client, f"/staff/cases/{case_no}")
    resp = await client.post(
        f"/staff/cases/{case_no}/supervise",
        data={"op": "press", "request": request, "days": days, "csrf_token": token},
    )
    assert resp.status == 200
    return await resp.text()


async def test_press_escalate_and_answer(client):
    sessions = client.app[keys.SESSIONS]
    owner = await add_staff(sessions, "hj-owner", "town_staff")
    await add_staff(sessions, "hj-lead", "town_supervisor")
    await add_staff(sessions, "hm-staff", "town_staff", town=OTHER)
    await add_staff(sessions, "city", "city_supervisor", town=None)
    await _with_openid(sessions, "hj-owner", "hj-lead", "hm-staff", "city")
    case = await add_case(sessions, status="claimed", owner=owner.id, deadline=NOW - timedelta(days=2))

    assert (await sign_in(client, "hj-owner")).status == 302  # a town worker cannot press
    page = await _press(client, case.case_no, "请说明超时原因")
    assert "只有市级督办可以督办" in page

    assert (await sign_in(client, "city")).status == 302
    page = await _press(client, case.case_no, "请说明超时原因，3个工作日内办结")
    assert "已督办" in page
    async with sessions() as db:
        row = (await db.exec(select(Supervision).where(Supervision.case_id == case.id))).one()
        events = (await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    assert row.due_at == add_working_days(NOW, 3)
    assert any(e.kind == "supervision" and "请说明超时原因" in e.note for e in events)
    told = await _staff_messages(sessions)
    assert {o for o, _, t in told if "【督办】" in t} == {"o-hj-owner", "o-hj-lead"}  # not the other town

    # not due yet: nothing escalates
    await run_sweeps(sessions=sessions, now=row.due_at - timedelta(minutes=1))
    async with sessions() as db:
        assert (await db.get(Supervision, row.id)).escalated_at is None
    # past the deadline: escalated once to the town's supervisor and the city, however often the sweep runs
    late = row.due_at + timedelta(minutes=1)
    for _ in range(2):
        await run_sweeps(sessions=sessions, now=late)
    async with sessions() as db:
        assert (await db.get(Supervision, row.id)).escalated_at == late
    escalations = [(o, k) for o, k, t in await _staff_messages(sessions) if "【督办逾期】" in t]
    assert sorted(escalations) == [("o-city", "escalation"), ("o-hj-lead", "escalation")]
    page = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    assert "逾期已上报" in page

    # another town cannot answer; the town can, once
    assert (await sign_in(client, "hm-staff")).status == 302
    assert (await client.get(f"/staff/cases/{case.case_no}")).status == 404
    assert (await sign_in(client, "hj-owner")).status == 302
    token = await csrf(client, f"/staff/cases/{case.case_no}")
    form = {
        "op": "answer",
        "supervision_id": str(row.id),
        "answer": "轮椅已到货，明天送到",
        "csrf_token": token,
    }
    page = await (await client.post(f"/staff/cases/{case.case_no}/supervise", data=form)).text()
    assert "督办答复已记录" in page and "轮椅已到货，明天送到" in page
    page = await (await client.post(f"/staff/cases/{case.case_no}/supervise", data=form)).text()
    assert "已经答复过了" in page
    async with sessions() as db:
        done = await db.get(Supervision, row.id)
        events = (await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    assert done.answer == "轮椅已到货，明天送到" and done.answered_by_id == owner.id
    steps = [e.data.get("step") for e in events if e.kind == "supervision"]
    assert steps == ["pressed", "escalated", "answered"]
    assert any(o == "o-city" and "【督办答复】" in t for o, _, t in await _staff_messages(sessions))
