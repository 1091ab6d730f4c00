"""The webhook's units of work on PostgreSQL on held connections (bot/lanes.py): past SQLAlchemy's session while the
statements are the ones marked ``on_driver``, the real session made on the same connection and transaction when an
ORM operation needs it; the resident's lock held to the commit; rolled back on error; a connection that failed given
back to the pool and replaced; with every held connection in use, one borrowed from the pool for the unit; at shutdown
nothing held."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

import bot.lanes
from bot import keys
from bot.cases.actors import Actor
from bot.cases.chain import GENESIS, link_hash, verify_chains
from bot.cases.numbering import create_case
from bot.cases.timeline import record_event
from bot.conversation.dbwatch import unavailable
from bot.conversation.dialogue import texts
from bot.conversation.record import _INSERT_RECORD, _KNOWN_RESIDENT, _loaded
from bot.db import make_engine, make_sessions, release, transaction
from bot.driver import DriverSession, at_commit
from bot.lanes import Lanes, LeanSession, limit_for
from bot.models import Case, CaseEvent, InboundMessage, Resident
from tests.helpers import asyncpg_dsn, keyword_bot, new_resident, text_delivery
from webhooks import WEBHOOK_HANDLER

pytestmark = pytest.mark.postgres


def _record(openid: str, rid: int, key: str) -> dict[str, Any]:
    return {
        "delivery_key": key,
        "openid": openid,
        "msg_type": "text",
        "event": None,
        "text": "你好",
        "media": {},
        "reply_mode": "pending",
        "received_at": datetime.now(UTC),
        "resident_id": rid,
    }


async def _known(session: Any, openid: str) -> Resident:
    row = (await session.exec(_KNOWN_RESIDENT, params={"openid": openid})).first()
    assert row is not None
    return _loaded(session, row)


async def _recorded(session: Any, openid: str, rid: int, key: str, *, phone: str) -> Resident:
    """A message's first steps in a unit: the resident read (kept as loaded), given ``phone``, the record inserted."""
    resident = await _known(session, openid)
    resident.phone = phone
    await session.exec(_INSERT_RECORD, params=_record(openid, rid, key))
    return resident


async def _count(sessions: Any, key: str) -> int:
    async with sessions() as session:
        found = await session.exec(
            select(InboundMessage.id).where(InboundMessage.delivery_key == key)  # type: ignore[arg-type]
        )
        return len(found.all())


#: an engine, its sessions and the connections they hold
Held = tuple[Any, Any, Lanes]


@asynccontextmanager
async def _held(url: str, **pool: Any) -> AsyncIterator[Held]:
    """An engine of ``url``, its sessions and their ``Lanes``; at the end every held connection is back in the
    pool (``release``) and none is left checked out."""
    engine = make_engine(url, **pool)
    sessions = make_sessions(engine)
    lanes = sessions.lanes  # type: ignore[attr-defined]
    assert isinstance(lanes, Lanes)
    try:
        yield engine, sessions, lanes
    finally:
        await release(sessions)
        assert engine.sync_engine.pool.checkedout() == 0  # nothing held after the release
        await engine.dispose()


@pytest.fixture
async def held(pg: str) -> AsyncIterator[Held]:
    async with _held(pg) as made:
        yield made


async def test_a_unit_on_a_lane_writes_without_the_session_and_holds_the_connection(held: Held) -> None:
    engine, sessions, lanes = held
    rid = await new_resident(sessions, "oLane-1")
    then = datetime.now(UTC) - timedelta(hours=1)
    async with transaction(sessions, lock="resident:oLane-1") as session:
        assert isinstance(session, LeanSession)
        resident = await _known(session, "oLane-1")
        await session.exec(_INSERT_RECORD, params=_record("oLane-1", rid, "k-lane-1"))
        resident.phone = "13800000001"  # goes with the COMMIT
        resident.last_interaction_at = then
        assert session._real is None  # no ORM session was needed
    assert await _count(sessions, "k-lane-1") == 1
    async with sessions() as check:
        row = await check.get(Resident, rid)
        assert row is not None and row.phone == "13800000001"
        assert (
            row.last_interaction_at is not None
            and abs((row.last_interaction_at.replace(tzinfo=UTC) - then).total_seconds()) < 1e-3
        )
    # the connection stays held for the next unit; the pool counts it as checked out
    assert lanes.held == 1 and len(lanes.free) == 1
    assert engine.sync_engine.pool.checkedout() == 1
    async with transaction(sessions, lock="resident:oLane-1") as session:
        assert isinstance(session, LeanSession)
    assert lanes.held == 1  # the same one again


async def test_an_orm_operation_makes_the_session_in_the_same_transaction(held: Held) -> None:
    engine, sessions, lanes = held
    rid = await new_resident(sessions, "oLane-2")
    async with transaction(sessions, lock="resident:oLane-2") as session:
        resident = await _recorded(session, "oLane-2", rid, "k-lane-2", phone="13800000002")
        # an unmarked statement: the real session, on the same connection, sees the uncommitted record
        seen = (
            await session.exec(
                select(InboundMessage.id).where(InboundMessage.delivery_key == "k-lane-2")  # type: ignore[arg-type]
            )
        ).all()
        assert len(seen) == 1
        assert isinstance(session._real, DriverSession)
        # the resident kept so far is the session's own row (its change flushed by the session)
        assert await session.get(Resident, rid) is resident
        assert (
            await session.exec(select(Resident.phone).where(Resident.id == rid))  # type: ignore[arg-type]
        ).scalar_one() == "13800000002"
    async with sessions() as check:
        row = await check.get(Resident, rid)
        assert row is not None and row.phone == "13800000002"
    assert await _count(sessions, "k-lane-2") == 1
    assert lanes.held == 1 and len(lanes.free) == 1


async def test_a_change_to_a_kept_row_is_seen_by_a_later_statement_of_its_table(held: Held) -> None:
    """As the session's autoflush would: a statement reading the resident's table after the resident changed sees
    the change (the unit goes on through the real session); statements of other tables leave it for the COMMIT."""
    engine, sessions, lanes = held
    rid = await new_resident(sessions, "oLane-3")
    async with transaction(sessions, lock="resident:oLane-3") as session:
        await _recorded(session, "oLane-3", rid, "k-lane-3", phone="13800000003")
        assert session._real is None  # another table: the change waits for the COMMIT
        again = (await session.exec(_KNOWN_RESIDENT, params={"openid": "oLane-3"})).first()
        assert again is not None and "13800000003" in tuple(again)
        assert session._real is not None


async def test_an_error_rolls_the_unit_back_and_the_lane_serves_the_next(held: Held) -> None:
    engine, sessions, lanes = held
    rid = await new_resident(sessions, "oLane-4")
    with pytest.raises(RuntimeError):
        async with transaction(sessions, lock="resident:oLane-4") as session:
            await _recorded(session, "oLane-4", rid, "k-lane-4", phone="13800000004")
            raise RuntimeError("the dialogue failed")
    assert await _count(sessions, "k-lane-4") == 0
    async with sessions() as check:
        row = await check.get(Resident, rid)
        assert row is not None and row.phone is None
    # a duplicate key: SQLAlchemy's IntegrityError (the webhook answers it as a retry), nothing kept
    async with transaction(sessions, lock="resident:oLane-4") as session:
        await session.exec(_INSERT_RECORD, params=_record("oLane-4", rid, "k-lane-4b"))
    with pytest.raises(IntegrityError):
        async with transaction(sessions, lock="resident:oLane-4") as session:
            await session.exec(_INSERT_RECORD, params=_record("oLane-4", rid, "k-lane-4c"))
            await session.exec(_INSERT_RECORD, params=_record("oLane-4", rid, "k-lane-4b"))
    assert await _count(sessions, "k-lane-4c") == 0
    # a write left for the COMMIT that fails: the commit fails, nothing of the unit stays
    with pytest.raises(IntegrityError):
        async with transaction(sessions, lock="resident:oLane-4") as session:
            await session.exec(_INSERT_RECORD, params=_record("oLane-4", rid, "k-lane-4d"))
            assert at_commit(session, f"UPDATE resident SET openid = NULL WHERE id = {rid}")
    assert await _count(sessions, "k-lane-4d") == 0
    assert lanes.held == 1 and len(lanes.free) == 1  # the same connection, usable
    async with transaction(sessions, lock="resident:oLane-4") as session:
        await session.exec(_INSERT_RECORD, params=_record("oLane-4", rid, "k-lane-4e"))
    assert await _count(sessions, "k-lane-4e") == 1


async def test_the_lock_orders_two_units_of_one_resident(held: Held) -> None:
    """The second unit of a resident waits for the first's commit and reads what it wrote (its read comes after the
    lock, so it sees the first's commit); another resident's unit does not wait."""
    engine, sessions, lanes = held
    await new_resident(sessions, "oLane-5")
    await new_resident(sessions, "oLane-6")
    first_in = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with transaction(sessions, lock="resident:oLane-5") as session:
            resident = await _known(session, "oLane-5")
            resident.phone = "13800000005"
            first_in.set()
            await asyncio.sleep(0.3)
            order.append("first commits")

    async def second() -> str | None:
        await first_in.wait()
        async with transaction(sessions, lock="resident:oLane-5") as session:
            order.append("second reads")
            return (await _known(session, "oLane-5")).phone

    async def other() -> None:
        await first_in.wait()
        async with transaction(sessions, lock="resident:oLane-6") as session:
            await _known(session, "oLane-6")
            order.append("other resident")

    _, phone, _ = await asyncio.gather(first(), second(), other())
    assert phone == "13800000005"
    assert order == ["other resident", "first commits", "second reads"]


async def test_with_every_lane_in_use_a_unit_borrows_a_pool_connection_and_still_the_lock(pg: str) -> None:
    """Past the held connections a unit runs the same lean way on a connection of the pool, checked out for it alone
    and back in the pool when it ends (no session: its checkout is a fraction of a session's cost)."""
    async with _held(pg, pool_size=2, max_overflow=2) as (engine, sessions, lanes):
        taken = [await lanes.take(), await lanes.take()]
        assert all(taken) and await lanes.take() is None
        pool = engine.sync_engine.pool
        async with transaction(sessions, lock="resident:oLane-7") as session:
            assert isinstance(session, LeanSession) and session._real is None
            assert pool.checkedout() == 3 and lanes.held == 2
            session.real  # noqa: B018 - the session, made to read the locks on this unit's connection
            held = (
                await session.exec(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND pid = pg_backend_pid()"
                    )
                )
            ).scalar_one()
            assert held == 1
        assert pool.checkedout() == 2 and lanes.held == 2 and lanes.free == []
        rid = await new_resident(sessions, "oLane-7")
        async with transaction(
            sessions, lock="resident:oLane-7"
        ) as session:  # borrowed again, writes at COMMIT
            assert isinstance(session, LeanSession)
            await session.exec(_INSERT_RECORD, params=_record("oLane-7", rid, "msg:oLane-7:1"))
        assert await _count(sessions, "msg:oLane-7:1") == 1
        assert pool.checkedout() == 2
        for lane in taken:
            assert lane is not None
            lanes.give_back(lane)


async def test_a_connection_the_server_dropped_is_given_back_and_replaced(pg: str, held: Held) -> None:
    engine, sessions, lanes = held
    rid = await new_resident(sessions, "oLane-8")

    async def unit(n: int) -> None:
        async with transaction(sessions, lock=f"resident:oLane-8-{n}") as session:
            await asyncio.sleep(0.05)  # three at once: three connections held
            await _known(session, "oLane-8")

    await asyncio.gather(*(unit(n) for n in range(3)))
    assert lanes.held == 3 and len(lanes.free) == 3
    admin = await asyncpg.connect(asyncpg_dsn(pg))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
            "AND pid <> pg_backend_pid()",
            pg.rsplit("/", 1)[1],
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.1)
    # used again at once (not idle: no ping): the unit fails as "the database is away" (the webhook journals
    # the delivery), and neither the dead connection nor the other held ones (the same server's) are kept
    with pytest.raises(Exception) as failed:
        async with transaction(sessions, lock="resident:oLane-8") as session:
            await _known(session, "oLane-8")
    assert unavailable(failed.value), repr(failed.value)
    assert lanes.held == 0 and not lanes.free
    async with transaction(sessions, lock="resident:oLane-8") as session:
        assert isinstance(session, LeanSession)
        await session.exec(_INSERT_RECORD, params=_record("oLane-8", rid, "k-lane-8"))
    assert await _count(sessions, "k-lane-8") == 1
    assert lanes.held == 1


async def test_a_unit_cancelled_in_a_statement_leaves_no_connection_behind(held: Held) -> None:
    """The database watch cancels a unit past its budget: the held connection is rolled back (or given back to the
    pool when it cannot be), and the next unit works."""
    engine, sessions, lanes = held
    rid = await new_resident(sessions, "oLane-9")

    async def slow() -> None:
        async with transaction(sessions, lock="resident:oLane-9") as session:
            await session.exec(_INSERT_RECORD, params=_record("oLane-9", rid, "k-lane-9"))
            await session.exec(text("SELECT pg_sleep(5)"))

    task = asyncio.ensure_future(slow())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _count(sessions, "k-lane-9") == 0
    assert engine.sync_engine.pool.checkedout() == lanes.held
    async with transaction(sessions, lock="resident:oLane-9") as session:
        await session.exec(_INSERT_RECORD, params=_record("oLane-9", rid, "k-lane-9b"))
    assert await _count(sessions, "k-lane-9b") == 1


async def test_a_session_made_only_for_a_listener_fires_it_after_the_commit(held: Held) -> None:
    """A media download waits for the unit's commit (``after_commit`` of the session): made on a lane only to
    listen, the session's commit is the unit's COMMIT, so the listener runs when the record is committed."""
    _, sessions, lanes = held
    rid = await new_resident(sessions, "oLane-10")
    seen: list[bool] = []
    async with transaction(sessions, lock="resident:oLane-10") as session:
        await session.exec(_INSERT_RECORD, params=_record("oLane-10", rid, "k-lane-10"))
        lane = session._lane
        event.listen(
            session.sync_session,
            "after_commit",
            lambda _s: seen.append(lane.driver.is_in_transaction()),
            once=True,
        )
    assert seen == [False]  # fired once, with the server's transaction already committed
    assert await _count(sessions, "k-lane-10") == 1
    assert lanes.held == 1 and len(lanes.free) == 1


def test_the_webhook_never_holds_the_last_connection_the_pool_can_open() -> None:
    assert limit_for(4, 4) == 4  # the defaults: the pool's size; its overflow stays for everyone else
    assert limit_for(4, 0) == 3
    assert limit_for(2, 1) == 2
    assert limit_for(1, 0) == 0  # one connection in all: no lane, every unit borrows it for itself
    assert limit_for(3, -1) == 3  # an unbounded overflow


async def test_a_held_connection_leaves_the_pool_one_for_the_rest_of_the_process(pg: str) -> None:
    """A pool of 2 and no overflow: after two units at once the webhook holds one connection, and a staff page's
    session gets the other at once (with both held, it would wait out the pool's timeout)."""
    async with _held(pg, pool_size=2, max_overflow=0, pool_timeout=1) as (_, sessions, lanes):
        rid = await new_resident(sessions, "oLane-11")
        assert lanes.limit == 1

        async def unit(n: int) -> None:
            async with transaction(sessions, lock=f"resident:oLane-11-{n}") as session:
                await asyncio.sleep(0.05)  # two at once: the second borrows the pool's other connection
                await session.exec(_INSERT_RECORD, params=_record("oLane-11", rid, f"k-lane-11-{n}"))

        await asyncio.gather(unit(0), unit(1))
        assert lanes.held == 1
        async with sessions() as page:
            assert (await page.exec(text("SELECT 1"))).scalar_one() == 1
        assert await _count(sessions, "k-lane-11-0") == 1 and await _count(sessions, "k-lane-11-1") == 1


async def test_lanes_left_unused_go_back_to_the_pool(held: Held, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, sessions, lanes = held
    await new_resident(sessions, "oLane-12")

    async def unit(n: int) -> None:
        async with transaction(sessions, lock=f"resident:oLane-12-{n}") as session:
            await asyncio.sleep(0.05)  # three at once: three connections held
            await _known(session, "oLane-12")

    await asyncio.gather(*(unit(n) for n in range(3)))
    assert lanes.held == 3 and engine.sync_engine.pool.checkedout() == 3
    monkeypatch.setattr(bot.lanes, "PING_AFTER_IDLE", 0.2)
    await asyncio.sleep(0.3)
    await unit(3)  # the burst is over: one lane serves, the other two go back when it ends
    assert lanes.held == 1 and engine.sync_engine.pool.checkedout() == 1


async def test_the_webhooks_common_messages_never_make_the_session(
    pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the app's webhook handler: a new resident's greeting, a known one's, a menu digit, a wish in words,
    the answers to the bot's questions, filing the case (its INSERT on the driver, its first timeline event with the
    COMMIT), a progress query (the list of one's cases, and one case by its number) stay past the ORM session (what
    the held connections are for). The case filed that way is whole: its deadline, its chained first event, the
    resident's messages joined to it."""
    made: list[str] = []
    real = LeanSession.real

    def counted(self: LeanSession) -> Any:
        if self._real is None:
            made.append("session")
        return real.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(LeanSession, "real", property(counted))
    runner = await keyword_bot(pg, tmp_path, migrate=False)
    try:
        handler = runner.app[WEBHOOK_HANDLER]
        sessions_by_message: dict[str, list[str]] = {}
        replies: dict[str, str] = {}

        async def send(n: int, words: str) -> None:
            made.clear()
            reply = await handler.handle(text_delivery(f"msg:oLean-1:{n}", "oLean-1", words))
            assert reply
            sessions_by_message[words], replies[words] = list(made), str(reply)

        script = [
            "你好",
            "你好",
            "1",
            "查询进度",
            "我想要一辆轮椅，我们住在厚街镇",
            "同意",
            "不用",
            "确认",
            "查询进度",
        ]
        for n, words in enumerate(script[:4]):
            await send(n, words)
        assert replies["查询进度"] == texts.NO_CASES  # no case yet: the list came back empty
        for n, words in enumerate(script[4:], 4):
            await send(n, words)
        case_no = re.search(r"MS\d{8}-\d{4}", replies["确认"])
        assert case_no, replies["确认"]
        assert case_no.group(0) in replies["查询进度"] and "轮椅" in replies["查询进度"]
        await send(len(script), f"查询{case_no.group(0)}")
        assert "厚街镇" in replies[f"查询{case_no.group(0)}"]
        assert sessions_by_message == {words: [] for words in sessions_by_message}
        assert runner.app[keys.SESSIONS].lanes.held >= 1
        async with runner.app[keys.SESSIONS]() as session:
            case = (await session.exec(select(Case).where(Case.case_no == case_no.group(0)))).scalars().one()
            assert (case.status, case.town, case.item) == ("submitted", "厚街镇", "轮椅")
            assert case.stage_deadline is not None and case.stage_deadline > case.created_at
            events = (
                (await session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).scalars().all()
            )
            assert [(e.kind, e.to_status, e.note) for e in events] == [
                ("transition", "submitted", "通过微信公众号提交")
            ]
            assert events[0].chain_hash == link_hash(GENESIS, events[0])
            linked = (
                (await session.exec(select(InboundMessage.text).where(InboundMessage.case_id == case.id)))
                .scalars()
                .all()
            )
            assert "我想要一辆轮椅，我们住在厚街镇" in linked
            assert (await verify_chains(session)).broken == []
    finally:
        await runner.cleanup()


async def test_new_rows_keep_their_order_when_one_needs_the_orm(held: Held) -> None:
    """A unit files a case on the driver and records events of it and of an older case whose chain head it must
    read (that event needs the ORM's flush): the new case's first event, meant for the COMMIT, is inserted before
    the ORM's rows, so every case's events stay in the order of their ids and every chain verifies."""
    _engine, sessions, _lanes = held
    now = datetime.now(UTC)
    actor = Actor("resident", None, "居民")
    async with sessions() as session, session.begin():
        older = await create_case(
            session, kind="micro_wish", description="旧的", town="虎门镇", resident_id=None, now=now
        )
    async with transaction(sessions, lock="resident:order") as session:
        assert isinstance(session, LeanSession)
        case = await create_case(
            session, kind="micro_wish", description="新的", town="虎门镇", resident_id=None, now=now
        )
        assert session._real is None and case.id is not None  # inserted on the driver
        record_event(session, case=older, kind="note", actor=actor, at=now, note="旧案补充")
        record_event(session, case=case, kind="note", actor=actor, at=now, note="新案补充")
        assert session._real is None
    async with sessions() as session:
        rows = (await session.exec(select(CaseEvent).order_by(CaseEvent.id))).scalars().all()  # type: ignore[arg-type]
        notes = [(e.case_id, e.note) for e in rows]
        assert notes == [
            (older.id, "通过微信公众号提交"),
            (case.id, "通过微信公众号提交"),
            (older.id, "旧案补充"),
            (case.id, "新案补充"),
        ]
        assert (await verify_chains(session)).broken == []


async def test_a_filing_on_the_driver_goes_with_the_commit_and_rolls_back_whole(held: Held) -> None:
    """The case's INSERT is on the driver at once (its id known), its first event waits for the COMMIT; a unit that
    fails after them leaves neither."""
    _engine, sessions, _lanes = held
    now = datetime.now(UTC)
    waiting: list[str] = []
    with pytest.raises(RuntimeError):
        async with transaction(sessions, lock="resident:whole") as session:
            assert isinstance(session, LeanSession)
            case = await create_case(
                session,
                kind="micro_project",
                description="路灯坏了",
                town="厚街镇",
                resident_id=None,
                now=now,
            )
            waiting.extend(type(row).__name__ for row in session._new)
            raise RuntimeError("the turn failed after the filing")
    assert case.id is not None and waiting == ["CaseEvent"]
    async with sessions() as session:
        assert (await session.exec(select(Case))).scalars().all() == []
        assert (await session.exec(select(CaseEvent))).scalars().all() == []
