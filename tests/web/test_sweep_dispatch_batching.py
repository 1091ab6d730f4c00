"""The sweep's bulk insert (one unnest statement on PostgreSQL) and the dispatcher's batched reads and grouped
commits, on both databases: same rows, same dedupe, same marks, fewer statements and transactions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import select

from benchmarks.sweep import seed
from bot import db
from bot.deadlines.sweeps import queue_many, remind_due
from bot.delivery.dispatcher import DeliveryConfig, _GroupCommit, dispatch_due
from bot.delivery.outbox import enqueue
from bot.models import Case, Outbox, Resident
from bot.states import ActorType, MessageKind, OutboxStatus

NOW = datetime(2025, 6, 10, 2, tzinfo=UTC)


def _msg(key: str, **kw: Any) -> dict[str, Any]:
    return {
        "openid": f"o-{key}",
        "recipient_type": ActorType.STAFF,
        "kind": MessageKind.REMINDER,
        "text": f"【即将到期】诉求{key}，请及时处理。",
        "template": {"case_no": key, "status": "06月10日12:00到期"},
        "link": f"/staff/cases/{key}",
        "dedupe_key": f"remind:{key}",
        "next_attempt_at": NOW + timedelta(minutes=5),
        **kw,
    }


async def test_queue_many_inserts_each_key_once_with_its_values(sessions: Any) -> None:
    async with db.transaction(sessions) as s:
        first = await queue_many(s, [_msg("A"), _msg("B"), _msg("A")], now=NOW)  # a key twice in one call
    async with db.transaction(sessions) as s:
        again = await queue_many(s, [_msg("B"), _msg("C")], now=NOW)
    assert (first, again) == (2, 1)
    async with sessions() as s:
        rows = list((await s.exec(select(Outbox).order_by(Outbox.id))).all())
    assert [r.dedupe_key for r in rows] == ["remind:A", "remind:B", "remind:C"]
    a = rows[0]
    assert a.template == {"case_no": "A", "status": "06月10日12:00到期"}  # JSON kept, not a string
    assert a.next_attempt_at == NOW + timedelta(minutes=5) and a.created_at == NOW
    assert a.next_attempt_at.tzinfo is not None
    assert (a.status, a.attempts, a.recipient_type, a.phone) == (OutboxStatus.PENDING, 0, "staff", None)
    assert a.text == "【即将到期】诉求A，请及时处理。" and a.link == "/staff/cases/A"


async def test_queue_many_rows_with_different_keys_still_go_in(sessions: Any) -> None:
    async with db.transaction(sessions) as s:
        n = await queue_many(s, [_msg("D"), _msg("E", phone="13800138000")], now=NOW)
    assert n == 2
    async with sessions() as s:
        phones = (await s.exec(select(Outbox.dedupe_key, Outbox.phone).order_by(Outbox.id))).all()
    assert [tuple(p) for p in phones] == [("remind:D", None), ("remind:E", "13800138000")]


async def test_reminder_sweep_marks_and_queues_once_on_both_databases(sessions: Any) -> None:
    due = await seed(sessions, cases=400, due_share=0.05, now=NOW)
    assert due > 0
    reminded = await remind_due(sessions=sessions, now=NOW, batch=5000)
    again = await remind_due(sessions=sessions, now=NOW, batch=5000)
    async with sessions() as s:
        marked = (
            await s.exec(sa.select(sa.func.count()).select_from(Case).where(Case.reminded_at == NOW))  # type: ignore[call-overload]
        ).scalar_one()
        keys = list((await s.exec(select(Outbox.dedupe_key))).all())
    assert (reminded, again, marked) == (due, 0, due)
    assert len(keys) == len(set(keys)) == 3 * due  # two town staff and the supervisor per unclaimed case


class _Api:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.sent.append(("custom", openid, text))
        return {}

    async def send_template(self, openid: str, template_id: str, data: Any, url: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.sent.append(("template", openid, data["thing2"]))
        return {}


async def test_dispatch_reads_residents_once_and_commits_in_groups(sessions: Any) -> None:
    engine = sessions.kw["bind"]
    async with db.transaction(sessions) as s:
        for i in range(40):
            s.add(Resident(openid=f"o-{i}", last_interaction_at=NOW - timedelta(hours=1)))
        for i in range(40):
            await enqueue(s, openid=f"o-{i}", kind="progress", text=f"第一条 {i}", now=NOW)
        for i in range(10):  # a second message for ten of them: after their first, in order
            await enqueue(s, openid=f"o-{i}", kind="progress", text=f"第二条 {i}", now=NOW)
    statements: list[str] = []
    begins: list[int] = []

    def count(_c: Any, _cur: Any, stmt: str, *_: Any) -> None:
        statements.append(stmt)

    def begin(_c: Any) -> None:
        begins.append(1)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    event.listen(engine.sync_engine, "begin", begin)
    api = _Api()
    try:
        stats = await dispatch_due(
            sessions=sessions, api=api, now=NOW, concurrency=8, batch=100, config=DeliveryConfig()
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        event.remove(engine.sync_engine, "begin", begin)
    assert stats.sent == 50 and stats.via_custom == 50
    resident_reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "resident" in s]
    assert len(resident_reads) == 1  # the whole batch's residents in one query (was one per message)
    assert len(begins) < 1 + 50  # the claim plus grouped outcome transactions (was 1 + 2 per message)
    for i in range(10):
        mine = [text for _, openid, text in api.sent if openid == f"o-{i}"]
        assert mine == [f"第一条 {i}", f"第二条 {i}"]
    async with sessions() as s:
        rows = list((await s.exec(select(Outbox))).all())
        counts = dict((await s.exec(select(Resident.openid, Resident.cs_sent_since_interaction))).all())  # type: ignore[arg-type]
    assert {r.status for r in rows} == {OutboxStatus.SENT}
    assert counts["o-0"] == 2 and counts["o-39"] == 1  # every custom message counted against the window


async def test_a_failing_write_fails_only_its_own_sender(sessions: Any) -> None:
    async with db.transaction(sessions) as s:
        for i in range(3):
            s.add(Resident(openid=f"o-w{i}"))
    writes = _GroupCommit(sessions)

    def bump(openid: str) -> Any:
        async def work(session: Any) -> str:
            await session.exec(
                sa.update(Resident).where(Resident.openid == openid).values(cs_sent_since_interaction=7)  # type: ignore[arg-type]
            )
            return openid

        return work

    async def broken(session: Any) -> None:
        await session.exec(sa.text("UPDATE no_such_table SET x = 1"))

    results = await asyncio.gather(
        writes.write(bump("o-w0")),
        writes.write(broken),
        writes.write(bump("o-w1")),
        writes.write(bump("o-w2")),
        return_exceptions=True,
    )
    await writes.close()
    assert results[0] == "o-w0" and results[2:] == ["o-w1", "o-w2"]
    assert isinstance(results[1], Exception)
    async with sessions() as s:
        counts = dict((await s.exec(select(Resident.openid, Resident.cs_sent_since_interaction))).all())  # type: ignore[arg-type]
    assert counts == {"o-w0": 7, "o-w1": 7, "o-w2": 7}
    assert writes.transactions >= 2  # the grouped attempt, then one by one


@pytest.fixture(autouse=True)
def _quiet_sweep_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING")
