"""The 权责清单 and 督办 of a whole town through the real app (SQLite and PostgreSQL).

权责清单: seeded, edited by an admin only (hostile values refused in Chinese), and used when a micro-project case
is dispatched: the unit recorded on the case and its deadline taken from the list (expected deadline written by
hand from the Chinese calendar: Monday 2 March 2026, 10:00 in Dongguan, plus 3 working days is Thursday 5 March,
18:00 = 10:00 UTC). 督办 of a town: the press recorded, the town's staff and supervisor told, its own deadline,
escalated once by the sweep when late, and the answer recorded and told to the one who pressed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot import keys
from bot.cases.supervision_town import escalate_due
from bot.db import transaction
from bot.models import Case, CaseEvent, Outbox, Responsibility, Staff, TownSupervision
from tests.factories import NOW, OTHER, TOWN, add_case, add_staff
from tests.helpers import build_app, csrf, sign_in


@pytest.fixture
async def client(db_url, aiohttp_client):
    return await aiohttp_client(build_app(db_url))


def flash_of(page: str) -> str:
    m = re.search(r'<div class="flash[^"]*" role="status">([^<]*)</div>', page)
    return m.group(1) if m else ""


async def _post(client, page: str, action: str, data: dict[str, str]) -> str:
    token = await csrf(client, page)
    resp = await client.post(action, data={**data, "csrf_token": token})
    assert resp.status == 200, await resp.text()
    return flash_of(await resp.text())


async def _bind(sessions, username: str, openid: str) -> None:
    async with transaction(sessions) as db:
        row = (await db.exec(select(Staff).where(Staff.username == username))).one()
        row.openid = openid


async def test_duty_list_is_edited_by_admins_and_used_on_dispatch(client):
    sessions = client.app[keys.SESSIONS]
    worker = await add_staff(sessions, "hj-staff", "town_staff")
    await add_staff(sessions, "admin", "admin", town=None)
    async with sessions() as db:
        rows = (await db.exec(select(Responsibility))).all()
    assert len(rows) >= 14 and {r.category for r in rows} >= {"照明", "道路交通", "助残"}
    lighting = next(r for r in rows if r.kind == "micro_project" and r.category == "照明")

    # a town worker reads the list but cannot change it
    assert (await sign_in(client, "hj-staff")).status == 302
    page = await (await client.get("/staff/duties")).text()
    assert lighting.unit in page and "duty-add" not in page
    token = await csrf(client, "/staff/duties")
    resp = await client.post(
        "/staff/duties", data={"id": str(lighting.id), "unit": "x", "days": "3", "csrf_token": token}
    )
    assert resp.status == 403

    assert (await sign_in(client, "admin")).status == 302
    for days, said in (("0", "办理时限"), ("99", "办理时限"), ("３", "办理时限"), ("abc", "办理时限")):
        msg = await _post(
            client, "/staff/duties", "/staff/duties", {"id": str(lighting.id), "unit": "路灯所", "days": days}
        )
        assert said in msg, (days, msg)
    msg = await _post(
        client,
        "/staff/duties",
        "/staff/duties",
        {"id": str(lighting.id), "unit": "厚街镇城管分局路灯所", "days": "3"},
    )
    assert msg == "已保存「照明」：厚街镇城管分局路灯所，3个工作日"
    msg = await _post(
        client,
        "/staff/duties",
        "/staff/duties",
        {"kind": "micro_project", "category": "照明", "unit": "重复", "days": "3"},
    )
    assert msg == "这个类别已在清单里，请直接修改"

    # dispatching a 照明 case: the unit and the deadline from the list
    c = await add_case(sessions, kind="micro_project", status="claimed", owner=worker.id, desc="路灯坏了")
    plain = await add_case(sessions, kind="micro_project", status="claimed", owner=worker.id, desc="什么都有")
    async with transaction(sessions) as db:
        (await db.get(Case, c.id)).category = "照明"
        (await db.get(Case, plain.id)).category = "未列入清单的类别"
    assert (await sign_in(client, "hj-staff")).status == 302
    for case in (c, plain):
        token = await csrf(client, f"/staff/cases/{case.case_no}")
        resp = await client.post(
            f"/staff/cases/{case.case_no}/act",
            data={"action": "dispatch", "note": "派单", "csrf_token": token},
        )
        assert resp.status == 200
    async with sessions() as db:
        done = await db.get(Case, c.id)
        other = await db.get(Case, plain.id)
        notes = [e.note for e in (await db.exec(select(CaseEvent).where(CaseEvent.case_id == c.id))).all()]
    assert done.status == "dispatched" and done.unit == "厚街镇城管分局路灯所"
    assert done.stage_deadline == datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    assert "按权责清单派给厚街镇城管分局路灯所，3个工作日内办理" in notes
    assert other.status == "dispatched" and other.unit is None
    assert other.stage_deadline is not None and other.stage_deadline != done.stage_deadline  # the SLA table's
    page = await (await client.get(f"/staff/cases/{c.case_no}")).text()
    assert "责任单位（权责清单）：<b>厚街镇城管分局路灯所</b>" in page


async def test_town_supervision_recorded_told_escalated_and_answered(client):
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "hj-staff", "town_staff")
    await add_staff(sessions, "hj-lead", "town_supervisor")
    await add_staff(sessions, "hm-staff", "town_staff", town=OTHER)
    await add_staff(sessions, "city", "city_supervisor", town=None)
    for name in ("hj-staff", "hj-lead", "hm-staff", "city"):
        await _bind(sessions, name, f"o-{name}")

    # only the city presses
    assert (await sign_in(client, "hj-lead")).status == 302
    token = await csrf(client, "/staff/town-supervision")
    resp = await client.post(
        "/staff/town-supervision", data={"op": "press", "town": TOWN, "request": "x", "csrf_token": token}
    )
    assert flash_of(await resp.text()) == "只有市级督办可以督办镇街"

    assert (await sign_in(client, "city")).status == 302
    msg = await _post(
        client,
        "/staff/town-supervision",
        "/staff/town-supervision",
        {"op": "press", "town": TOWN, "request": "本月逾期微心愿较多，请说明原因和整改措施", "days": "2"},
    )
    assert msg.startswith(f"已督办{TOWN}，须在 03-04 18:00 前答复")  # Monday + 2 working days, 18:00
    async with sessions() as db:
        row = (await db.exec(select(TownSupervision))).one()
        told = {o.openid: o.text for o in (await db.exec(select(Outbox))).all()}
    assert row.due_at == datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    assert set(told) == {"o-hj-staff", "o-hj-lead"}  # the town's staff and supervisor; not the other town
    assert "本月逾期微心愿较多" in told["o-hj-lead"]

    # the other town neither sees nor answers it
    assert (await sign_in(client, "hm-staff")).status == 302
    page = await (await client.get("/staff/town-supervision")).text()
    assert "本月逾期微心愿较多" not in page

    # late: the sweep escalates once, to the town's supervisor and the city
    async with transaction(sessions) as db:
        assert await escalate_due(db, now=NOW + timedelta(days=1)) == 0
    async with transaction(sessions) as db:
        assert await escalate_due(db, now=row.due_at + timedelta(minutes=1)) == 1
    async with transaction(sessions) as db:
        assert await escalate_due(db, now=row.due_at + timedelta(hours=2)) == 0
    async with sessions() as db:
        late = [
            o.openid
            for o in (
                await db.exec(select(Outbox).where(Outbox.kind == "escalation").order_by(col(Outbox.id)))
            )
        ]
    assert sorted(late) == ["o-city", "o-hj-lead"]

    # the town answers; the answer is recorded and the one who pressed is told; a second answer is refused
    assert (await sign_in(client, "hj-staff")).status == 302
    msg = await _post(
        client,
        "/staff/town-supervision",
        "/staff/town-supervision",
        {"op": "answer", "supervision_id": str(row.id), "answer": "已逐件清理，下周前全部办结"},
    )
    assert msg == "督办答复已记录"
    msg = await _post(
        client,
        "/staff/town-supervision",
        "/staff/town-supervision",
        {"op": "answer", "supervision_id": str(row.id), "answer": "再答"},
    )
    assert msg == "这条督办已经答复过了"
    async with sessions() as db:
        row = await db.get(TownSupervision, row.id)
        to_city = (
            await db.exec(select(Outbox).where(Outbox.openid == "o-city", Outbox.kind == "alert"))
        ).all()
    assert row.answer == "已逐件清理，下周前全部办结" and row.answered_at is not None
    assert any("已逐件清理" in o.text for o in to_city)
