"""Stage deadlines through the real lifecycle, and the reminder → escalation → city ladder, each exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot import db
from bot.cases.lifecycle import Actor, transition
from bot.cases.numbering import create_case
from bot.cases.sweeps import run_sweeps
from bot.deadlines import sla, sweeps
from bot.deadlines.workdays import CHINA
from bot.models import Case, Offer, Outbox, Resident, Resource, SlaPolicy, Staff
from tests.helpers import migrated_sqlite


def _cn(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=CHINA)


@pytest.fixture
async def _d_sessions(tmp_path: Any) -> Any:
    url = await migrated_sqlite(tmp_path / "sla.sqlite3")
    engine = db.make_engine(url)
    yield db.make_sessions(engine)
    await engine.dispose()


@pytest.fixture
async def _d_people(_d_sessions: Any) -> dict[str, Any]:
    async with db.transaction(_d_sessions) as s:
        people = {
            "worker": Staff(username="w", role="town_staff", town="厚街镇", openid="o-worker"),
            "worker2": Staff(username="w2", role="town_staff", town="厚街镇", openid="o-worker2"),
            "boss": Staff(username="b", role="town_supervisor", town="厚街镇", openid="o-boss"),
            "other_boss": Staff(username="ob", role="town_supervisor", town="虎门镇", openid="o-other"),
            "city": Staff(username="c", role="city_supervisor", openid="o-city"),
            "resident": Resident(openid="o-res", last_interaction_at=None),
        }
        for p in people.values():
            s.add(p)
    return people


async def _new_case(sessions: Any, people: dict[str, Any], now: datetime, kind: str = "micro_wish") -> Case:
    async with db.transaction(sessions) as s:
        case = await create_case(
            s, kind=kind, description="轮椅", town="厚街镇", resident_id=people["resident"].id, now=now
        )
        await sla.restart_clock(s, case=case, from_status=None, to_status="submitted", now=now)
    return case


async def _act(
    sessions: Any, case: Case, action: str, actor: Actor, now: datetime, note: str | None = None
) -> Case:
    async with db.transaction(sessions) as s:
        c = await s.get(Case, case.id)
        assert c is not None
        await transition(s, case=c, action=action, actor=actor, note=note, now=now)
    return c


async def _outbox(sessions: Any, kind: str | None = None) -> list[Outbox]:
    async with sessions() as s:
        q = select(Outbox).order_by(Outbox.id)
        if kind:
            q = q.where(Outbox.kind == kind)
        return list((await s.exec(q)).all())


async def test_stage_deadlines_follow_the_policy_through_the_lifecycle(
    _d_sessions: Any, _d_people: Any
) -> None:
    worker = Actor.of_staff(_d_people["worker"])
    case = await _new_case(_d_sessions, _d_people, _cn(2025, 9, 26, 15))  # Friday before Golden Week
    assert case.stage_deadline == _cn(2025, 9, 28, 18)  # 1 working day: the make-up Sunday
    case = await _act(_d_sessions, case, "verify", worker, _cn(2025, 9, 30, 9))
    assert case.stage_deadline == _cn(2025, 10, 11, 18)  # 3 working days over the holiday
    case = await _act(_d_sessions, case, "accept", worker, _cn(2025, 10, 9, 9))
    case = await _act(_d_sessions, case, "claim", worker, _cn(2025, 10, 9, 10))
    # 7 working days after Thursday 9 October: 10, the make-up Saturday 11, 13–17 (hand-counted)
    assert case.stage_deadline == _cn(2025, 10, 17, 18)
    case = await _act(_d_sessions, case, "match", worker, _cn(2025, 10, 10, 10))
    completion = case.stage_deadline
    # 15 working days after Friday 10 October: 11, 13–17, 20–24, 27–30 (hand-counted)
    assert completion == _cn(2025, 10, 30, 18)
    case = await _act(_d_sessions, case, "start", worker, _cn(2025, 10, 15, 10))
    assert case.stage_deadline == completion  # the completion clock keeps running
    case = await _act(_d_sessions, case, "complete", worker, _cn(2025, 10, 16, 10), note="轮椅已送到")
    assert case.stage_deadline is None


async def test_admin_edited_policy_wins(_d_sessions: Any, _d_people: Any) -> None:
    async with db.transaction(_d_sessions) as s:
        assert await sla.seed_policies(s) == len(sla.DEFAULT_POLICIES)
    async with db.transaction(_d_sessions) as s:
        assert await sla.seed_policies(s) == 0
        row = (
            await s.exec(select(SlaPolicy).where(SlaPolicy.kind == "any", SlaPolicy.stage == "submitted"))
        ).one()
        row.amount = 2
        s.add(row)
        s.add(SlaPolicy(kind="micro_project", stage="submitted", amount=5, unit="working_days"))
    wish = await _new_case(_d_sessions, _d_people, _cn(2025, 6, 9))
    project = await _new_case(_d_sessions, _d_people, _cn(2025, 6, 9), kind="micro_project")
    assert wish.stage_deadline == _cn(2025, 6, 11, 18)
    assert project.stage_deadline == _cn(2025, 6, 16, 18)


async def test_pause_shifts_the_deadline(_d_sessions: Any, _d_people: Any) -> None:
    case = await _new_case(_d_sessions, _d_people, _cn(2025, 6, 9, 9))
    assert case.stage_deadline == _cn(2025, 6, 10, 18)
    async with db.transaction(_d_sessions) as s:
        c = await s.get(Case, case.id)
        await sla.pause_clock(s, case=c, now=_cn(2025, 6, 9, 12))
    # paused: no reminder even long after the deadline
    assert await sweeps.remind_due(sessions=_d_sessions, now=_cn(2025, 6, 11, 12)) == 0
    async with db.transaction(_d_sessions) as s:
        c = await s.get(Case, case.id)
        await sla.resume_clock(s, case=c, now=_cn(2025, 6, 11, 12))
    assert c.stage_deadline == _cn(2025, 6, 12, 18) and not c.awaiting_resident


async def test_remind_escalate_city_each_exactly_once(_d_sessions: Any, _d_people: Any) -> None:
    worker = Actor.of_staff(_d_people["worker"])
    case = await _new_case(_d_sessions, _d_people, _cn(2025, 6, 9, 9))
    case = await _act(
        _d_sessions, case, "verify", worker, _cn(2025, 6, 9, 10)
    )  # due Thu 06-12 18:00 (lead 8 h)
    assert case.stage_deadline == _cn(2025, 6, 12, 18)

    async def sweep(now: datetime) -> None:
        for _ in range(3):  # repeated sweeps change nothing
            await run_sweeps(sessions=_d_sessions, now=now)

    await sweep(_cn(2025, 6, 12, 9, 59))
    assert await _outbox(_d_sessions, "reminder") == []
    await sweep(_cn(2025, 6, 12, 10, 1))
    reminders = await _outbox(_d_sessions, "reminder")
    # unclaimed: the town's staff and supervisor, nobody from another town
    assert sorted(r.openid for r in reminders) == ["o-boss", "o-worker", "o-worker2"]
    assert "MS" in reminders[0].text and "06月12日18:00" in reminders[0].text
    assert reminders[0].link == f"/staff/cases/{case.case_no}"
    assert await _outbox(_d_sessions, "escalation") == []

    await sweep(_cn(2025, 6, 12, 18, 1))
    esc = await _outbox(_d_sessions, "escalation")
    assert [r.openid for r in esc] == ["o-boss"]
    nudges = [r for r in await _outbox(_d_sessions, "progress") if "仍在办理中" in r.text]
    assert [n.openid for n in nudges] == ["o-res"]

    # city: two working days after the deadline (Fri 13th, Mon 16th at 18:00)
    await sweep(_cn(2025, 6, 16, 17, 59))
    assert [r.openid for r in await _outbox(_d_sessions, "escalation")] == ["o-boss"]
    await sweep(_cn(2025, 6, 16, 18, 1))
    esc = await _outbox(_d_sessions, "escalation")
    assert [r.openid for r in esc] == ["o-boss", "o-city"]
    await sweep(_cn(2025, 6, 30))
    assert len(await _outbox(_d_sessions, "reminder")) == 3
    assert len(await _outbox(_d_sessions, "escalation")) == 2

    # a new stage gets its own ladder; claimed: only the claimer is reminded
    case = await _act(_d_sessions, case, "accept", worker, _cn(2025, 6, 30, 10))
    case = await _act(_d_sessions, case, "claim", Actor.of_staff(_d_people["worker2"]), _cn(2025, 6, 30, 11))
    assert case.reminded_at is None and case.escalated_at is None
    await sweep(case.stage_deadline - timedelta(hours=1))  # type: ignore[operator]
    new = [r for r in await _outbox(_d_sessions, "reminder") if "对接" in r.text]
    assert [r.openid for r in new] == ["o-worker2"]


async def test_offer_timeout_calls_the_hook_once(_d_sessions: Any, _d_people: Any) -> None:
    case = await _new_case(_d_sessions, _d_people, _cn(2025, 6, 9))
    now = _cn(2025, 6, 10, 10)
    async with db.transaction(_d_sessions) as s:
        res = Resource(key="r1", kind="enterprise", name="爱心粮油", home_town="厚街镇", openid="o-donor")
        s.add(res)
        await s.flush()
        s.add(Offer(case_id=case.id, resource_id=res.id, deadline=now + timedelta(hours=3)))  # type: ignore[arg-type]
        s.add(
            Offer(case_id=case.id, resource_id=res.id, status="accepted", deadline=now - timedelta(hours=1))
        )  # type: ignore[arg-type]
    calls: list[int] = []

    async def hook(session: Any, offer: Offer, at: datetime) -> None:
        assert offer.status == "timeout" and at == now + timedelta(hours=4)
        calls.append(offer.id)  # type: ignore[arg-type]

    await run_sweeps(sessions=_d_sessions, now=now, offer_timeout_hook=hook)
    assert [o.openid for o in await _outbox(_d_sessions, "offer")] == [
        "o-donor"
    ]  # reminder within the 4 h lead
    assert calls == []
    for _ in range(2):
        await run_sweeps(sessions=_d_sessions, now=now + timedelta(hours=4), offer_timeout_hook=hook)
    assert len(calls) == 1
    async with _d_sessions() as s:
        statuses = sorted(o.status for o in (await s.exec(select(Offer))).all())
        assert statuses == ["accepted", "timeout"]
        assert (await s.get(Resource, res.id)).timeouts == 1  # type: ignore[union-attr]
    assert len(await _outbox(_d_sessions, "offer")) == 1


async def test_daily_digest_once_per_day(_d_sessions: Any, _d_people: Any) -> None:
    worker = Actor.of_staff(_d_people["worker"])
    c1 = await _new_case(_d_sessions, _d_people, _cn(2025, 6, 9, 9))  # due 06-10 18:00
    c2 = await _new_case(_d_sessions, _d_people, _cn(2025, 6, 10, 9))  # due 06-11 18:00
    await _act(_d_sessions, c1, "verify", worker, _cn(2025, 6, 9, 9))  # due 06-12 18:00
    now = _cn(2025, 6, 12, 8, 30)
    assert await sweeps.staff_digest(sessions=_d_sessions, now=now) == 4  # 3 in 厚街 + the city
    assert await sweeps.staff_digest(sessions=_d_sessions, now=now + timedelta(hours=1)) == 0
    digests = {d.openid: d.text for d in await _outbox(_d_sessions, "digest")}
    assert "o-other" not in digests
    assert "已超时 1 件，24小时内到期 1 件" in digests["o-worker"]
    assert digests["o-city"].startswith("【每日待办】全市")
    assert c2.stage_deadline == _cn(2025, 6, 11, 18)
    assert await sweeps.staff_digest(sessions=_d_sessions, now=now + timedelta(days=1)) == 4
