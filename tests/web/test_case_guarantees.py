"""Guarantees of the case, deadline and delivery packages that a mutation once slipped past, on real SQLite and
PostgreSQL (``db_url``): reminders for a deadline moved by a pause, the outbox's dedupe key, the conditional claim
UPDATE, and offers ending with the case."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlmodel import col, select

from bot.cases.lifecycle import (
    Actor,
    ClaimConflict,
    ask_resident,
    merge_case,
    record_resident_answer,
    transition,
)
from bot.cases.numbering import create_case
from bot.db import transaction
from bot.deadlines.sweeps import remind_due
from bot.delivery.outbox import enqueue
from bot.models import Case, Offer, Outbox, Resident, Resource, Staff, utcnow
from tests.factories import TOWN, add_case, add_offer, add_rows, add_staff

CN = timezone(timedelta(hours=8))


def cn(y: int, m: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=CN)


# ------------------------------------------------------------------ a paused clock: reminders for the new deadline
async def test_sweep_after_pause_and_resume_reminds_for_the_new_deadline(sessions: Any) -> None:
    async with transaction(sessions) as db:
        worker = Staff(username="w", role="town_staff", town=TOWN, openid="o-w")
        resident = Resident(openid="o-r")
        db.add_all([worker, resident])
        await db.flush()
        # filed Monday 2 November 2026 10:00: community check due Tuesday 3 November 18:00 (hand-counted)
        case = await create_case(
            db,
            kind="micro_wish",
            description="轮椅",
            town=TOWN,
            resident_id=resident.id,
            now=cn(2026, 11, 2, 10),
        )
        assert case.stage_deadline == cn(2026, 11, 3, 18)
    assert await remind_due(sessions=sessions, now=cn(2026, 11, 3, 15)) == 1  # 4 h lead: due from 14:00
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        assert c is not None
        await ask_resident(
            db, case=c, actor=Actor.of_staff(worker), question="轮椅要什么尺寸？", now=cn(2026, 11, 3, 16)
        )
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        assert c is not None
        # the resident answers two days later: the deadline moves by the 48 paused hours
        await record_resident_answer(db, case=c, text="普通尺寸", now=cn(2026, 11, 5, 16))
        assert c.stage_deadline == cn(2026, 11, 5, 18)
    assert await remind_due(sessions=sessions, now=cn(2026, 11, 5, 17)) == 1
    async with sessions() as db:
        rows = (
            await db.exec(
                select(Outbox)
                .where(Outbox.kind == "reminder", Outbox.openid == "o-w")
                .order_by(col(Outbox.id))
            )
        ).all()
    assert [("11月03日18:00" in r.text, "11月05日18:00" in r.text) for r in rows] == [
        (True, False),
        (False, True),
    ]


# ------------------------------------------------------------------ the outbox dedupe key
async def test_the_same_cause_queued_twice_is_one_message(sessions: Any) -> None:
    async with transaction(sessions) as db:
        first = await enqueue(
            db, openid="o-x", kind="progress", text="已受理", dedupe_key="case:1:ev:7", now=utcnow()
        )
    async with transaction(sessions) as db:  # the retried request, or a second worker, queues it again
        again = await enqueue(
            db, openid="o-x", kind="progress", text="已受理", dedupe_key="case:1:ev:7", now=utcnow()
        )
        other = await enqueue(
            db, openid="o-x", kind="progress", text="已派单", dedupe_key="case:1:ev:8", now=utcnow()
        )
    assert (first, again, other) == (True, False, True)
    async with sessions() as db:
        rows = (await db.exec(select(Outbox).order_by(col(Outbox.id)))).all()
    assert [(r.text, r.dedupe_key) for r in rows] == [("已受理", "case:1:ev:7"), ("已派单", "case:1:ev:8")]


# ------------------------------------------------------------------ the claim race reaches the conditional UPDATE
async def test_two_claims_on_stale_reads_one_wins_at_the_update(sessions: Any) -> None:
    """Both claimers read the case while it is still unclaimed and call ``transition`` directly (no pre-check in
    ``claim``): only the conditional UPDATE can refuse the second one."""
    a = await add_staff(sessions, "a", "town_staff")
    b = await add_staff(sessions, "b", "town_staff")
    case = await add_case(sessions, status="accepted")
    now = cn(2026, 11, 2, 10)

    async def claim_with(staff: Staff, stale: Case) -> str:
        try:
            async with transaction(sessions) as db:
                row = await db.merge(stale, load=False)
                await transition(
                    db, case=row, action="claim", actor=Actor.of_staff(staff), note=None, now=now
                )
            return "won"
        except ClaimConflict:
            return "lost"

    async with sessions() as db:
        stale_a = await db.get(Case, case.id)
    async with sessions() as db:
        stale_b = await db.get(Case, case.id)
    assert stale_a is not None and stale_b is not None
    assert stale_a.status == stale_b.status == "accepted" and stale_b.claimed_by_id is None
    results = await asyncio.gather(claim_with(a, stale_a), claim_with(b, stale_b))
    assert sorted(results) == ["lost", "won"]
    async with sessions() as db:
        final = await db.get(Case, case.id)
    assert final is not None and final.status == "claimed"
    assert final.claimed_by_id == (a.id if results[0] == "won" else b.id)


# ------------------------------------------------------------------ offers end with the case (volunteers lose access)
@pytest.mark.parametrize(
    ("start", "action", "offered_to", "accepted_to"),
    [
        ("submitted", "reject", "withdrawn", "withdrawn"),
        ("matching", "cancel", "withdrawn", "withdrawn"),
        ("matching", "merge", "withdrawn", "withdrawn"),
        ("in_progress", "complete", "withdrawn", "done"),
        ("completed", "close", "withdrawn", "done"),
    ],
)
async def test_offers_end_on_every_terminal_transition(
    sessions: Any, start: str, action: str, offered_to: str, accepted_to: str
) -> None:
    boss = await add_staff(sessions, "boss", "town_supervisor")
    case = await add_case(sessions, status=start, owner=boss.id)
    into = await add_case(sessions, status="accepted")
    r1, r2, r3 = await add_rows(
        sessions,
        *(Resource(key=f"k{i}", kind="individual", name=f"志愿者{i}", home_town=TOWN) for i in range(3)),
    )
    waiting = await add_offer(sessions, case_id=case.id, resource_id=r1.id, status="offered")
    helping = await add_offer(sessions, case_id=case.id, resource_id=r2.id, status="accepted")
    declined = await add_offer(sessions, case_id=case.id, resource_id=r3.id, status="declined")
    elsewhere = await add_offer(sessions, case_id=into.id, resource_id=r1.id, status="offered")
    now = cn(2026, 11, 2, 10)
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        assert c is not None
        actor = Actor.of_staff(boss)
        if action == "merge":
            target = await db.get(Case, into.id)
            assert target is not None
            await merge_case(db, case=c, into=target, actor=actor, note="重复", now=now)
        else:
            await transition(db, case=c, action=action, actor=actor, note="理由", now=now)
    async with sessions() as db:
        status = {o.id: o.status for o in (await db.exec(select(Offer))).all()}
    assert status[waiting.id] == offered_to
    assert status[helping.id] == accepted_to
    assert status[declined.id] == "declined"  # an answered offer keeps its answer
    assert status[elsewhere.id] == "offered"  # another case's offers are untouched
