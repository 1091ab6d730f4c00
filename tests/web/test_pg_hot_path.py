"""The webhook's hot path on PostgreSQL: BEGIN and the resident's advisory lock in one round trip, the resident,
their conversation and the record's INSERT in one statement, the outcome sent with the COMMIT (bot/driver.py
``begin_locked``, ``at_commit``; bot/conversation/record.py), with the semantics of one statement each: the read
comes after the lock (it sees what the lock's last holder committed), a statement left for the commit that fails
fails the transaction, and literals survive any text."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from benchmarks import sql_count
from bot import keys
from bot.db import make_engine, make_sessions, transaction
from bot.driver import at_commit, begin_locked, pg_literal, update_at_commit, updates_with_commit
from bot.models import Case, Conversation, InboundMessage, Resident
from tests.helpers import asyncpg_dsn, keyword_bot, new_resident, text_delivery

pytestmark = pytest.mark.postgres


async def test_literals_read_back_as_the_values_they_stand_for(pg: str) -> None:
    values: list[Any] = [
        "it's",
        "''",
        "back\\slash \\' \\\\",
        "轮椅 🙏 厚街镇",
        "line\nbreak\ttab",
        "'); DROP TABLE resident; --",
        "$$ $a$",
        "",
        0,
        -7,
        2**62,
        0.1,
        1e-300,
        -2.5e10,
        True,
        False,
    ]
    conn = await asyncpg.connect(asyncpg_dsn(pg))
    try:
        assert await conn.fetchval("SHOW standard_conforming_strings") == "on"
        for value in values:
            assert await conn.fetchval(f"SELECT {pg_literal(value)}") == value, value
        assert await conn.fetchval(f"SELECT {pg_literal(None)} IS NULL") is True
        assert math.isnan(await conn.fetchval(f"SELECT {pg_literal(math.nan)}"))
        assert await conn.fetchval(f"SELECT {pg_literal(math.inf)}") == math.inf
        assert await conn.fetchval(f"SELECT {pg_literal(-math.inf)}") == -math.inf
    finally:
        await conn.close()
    with pytest.raises(ValueError):
        pg_literal("a\x00b")
    with pytest.raises(TypeError):
        pg_literal(b"bytes")


async def test_the_read_after_the_lock_sees_what_its_last_holder_committed(pg: str) -> None:
    engine = make_engine(pg)
    sessions = make_sessions(engine)
    try:
        rid = await new_resident(sessions, "oLock-1")
        holder_done = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oLock-1")
                await session.exec(update(Resident).where(Resident.id == rid).values(phone="13800000001"))
                holder_done.set()
                await release.wait()

        async def follower() -> str | None:
            await holder_done.wait()
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oLock-1")  # waits for the holder's commit
                phone = (await session.exec(select(Resident.phone).where(Resident.id == rid))).scalar_one()
                return str(phone) if phone else None

        first = asyncio.create_task(holder())
        second = asyncio.create_task(follower())
        await holder_done.wait()
        await asyncio.sleep(0.3)
        assert not second.done()  # the lock is held until the holder commits
        release.set()
        await first
        assert await second == "13800000001"  # read after the lock: the holder's commit is seen
    finally:
        await engine.dispose()


async def test_statements_left_for_the_commit_run_with_it_or_not_at_all(pg: str) -> None:
    engine = make_engine(pg)
    sessions = make_sessions(engine)
    try:
        rid = await new_resident(sessions, "oCommit-1")

        def set_phone(value: str) -> str:
            return f"UPDATE resident SET phone = {pg_literal(value)} WHERE id = {rid}"

        async def phone() -> str | None:
            async with sessions() as session:
                found = (await session.exec(select(Resident.phone).where(Resident.id == rid))).scalar_one()
                return str(found) if found else None

        async with transaction(sessions) as session:
            assert not at_commit(session, set_phone("x"))  # not begun by begin_locked: nothing is left
            await session.exec(text("SELECT 1"))
        async with transaction(sessions) as session:
            assert await begin_locked(session, "resident:oCommit-1")
            assert at_commit(session, set_phone("13800000002"))
        assert await phone() == "13800000002"

        with pytest.raises(RuntimeError):
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oCommit-1")
                assert at_commit(session, set_phone("13800000003"))
                raise RuntimeError("the dialogue failed")
        assert await phone() == "13800000002"  # rolled back: the statement never ran

        # a statement left for the commit that fails: the commit fails, nothing of the transaction stays, and the
        # pooled connection is usable (its transaction was ended)
        with pytest.raises(IntegrityError):
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oCommit-1")
                await session.exec(update(Resident).where(Resident.id == rid).values(phone="13800000004"))
                assert at_commit(session, "UPDATE resident SET openid = NULL WHERE id = " + str(rid))
        assert await phone() == "13800000002"
        for _ in range(3):  # every pooled connection answers
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oCommit-1")
        assert engine.pool.checkedout() == 0
    finally:
        await engine.dispose()


async def test_an_update_left_for_the_commit_writes_what_the_parameters_would(pg: str) -> None:
    """JSON serialised by the column's own type, timestamps in UTC, text with quotes: read back as written."""
    engine = make_engine(pg)
    sessions = make_sessions(engine)
    table = Conversation.__table__  # type: ignore[attr-defined]
    try:
        rid = await new_resident(sessions, "oConv-1")
        async with transaction(sessions) as session:
            conv = Conversation(resident_id=rid, state="idle", data={}, updated_at=datetime.now(UTC))
            session.add(conv)
            await session.flush()
            cid = conv.id
        assert cid is not None
        data = {"pending_text": 'it\'s 轮椅 \\ "q" 🙏', "msg_ids": [1, 2], "none": None, "n": 0.25}
        at = datetime(2026, 12, 6, 8, 30, 15, 123456, tzinfo=UTC)
        async with transaction(sessions) as session:
            assert await begin_locked(session, "resident:oConv-1")
            values = {"state": "draft_describe", "data": data, "updated_at": at}
            assert update_at_commit(session, table, cid, values)
            # a naive timestamp has no literal: the caller runs the ordinary statement
            assert not update_at_commit(session, table, cid, {"updated_at": at.replace(tzinfo=None)})
        async with sessions() as session:
            row = (
                await session.exec(
                    select(table.c.state, table.c.data, table.c.updated_at).where(table.c.id == cid)
                )
            ).one()
        assert tuple(row) == ("draft_describe", data, at)
    finally:
        await engine.dispose()


async def test_a_known_residents_greeting_is_three_round_trips(pg: str) -> None:
    results = await sql_count.run(pg, show=False)
    greeting = results["greeting again"]
    assert greeting["transactions"] == 1
    assert greeting["round_trips"] == 3, greeting["sql"]  # BEGIN + lock; read + record; outcome + COMMIT
    sql = [" ".join(s.split()) for s in greeting["sql"]]
    assert sql[0] == "BEGIN" and sql[1].startswith(
        "SELECT pg_advisory_xact_lock(hashtext('resident:o-bench-1'))"
    )
    assert sql[2].startswith("WITH recorded AS (INSERT INTO inboundmessage")
    assert sql[3].startswith("UPDATE inboundmessage SET reply = '您好") and sql[4] == "COMMIT"
    assert len(sql) == 5
    # an answer that moves the draft on: the conversation's UPDATE goes with the outcome and the COMMIT too
    answer = [" ".join(s.split()) for s in results["answer 2"]["sql"]]
    assert results["answer 2"]["round_trips"] == 3, answer
    assert answer[-3].startswith("UPDATE conversation SET state = ") and answer[-1] == "COMMIT", answer
    # the consent: the resident's row the turn changed is updated with the COMMIT, not flushed on its own
    consent = [" ".join(s.split()) for s in results["answer 1"]["sql"]]
    assert results["answer 1"]["round_trips"] == 3, consent
    assert consent[-2].startswith("UPDATE resident SET consent_at = ") and consent[-1] == "COMMIT", consent
    # the menu a bare digit opens: the resident's first conversation row is inserted with the COMMIT, and that they
    # have no finished case to rate is read with the record (no lookup of their cases)
    menu = [" ".join(s.split()) for s in results["menu digit"]["sql"]]
    assert results["menu digit"]["round_trips"] == 3, menu
    assert not any(s.startswith('SELECT "case".id') for s in menu), menu
    assert menu[-3].startswith("INSERT INTO conversation (resident_id, state, data, updated_at) VALUES ("), (
        menu
    )
    assert "'menu'" in menu[-3] and menu[-1] == "COMMIT", menu
    # a wish (the menu closed by the progress query before it): the conversation's UPDATE with the COMMIT
    wish = [" ".join(s.split()) for s in results["wish"]["sql"]]
    assert results["wish"]["round_trips"] == 3, wish
    assert wish[-3].startswith("UPDATE conversation SET state = 'consent'"), wish
    # the case filed: its INSERT on the driver, then the draft's messages linked to it and its first timeline event
    # with the COMMIT (the process's first filing also reads the deadline policy): nine writes to the server, where
    # the timeline event's own INSERT made eleven
    filed = [" ".join(s.split()) for s in results["answer 3"]["sql"]]
    assert results["answer 3"]["round_trips"] == 9 and results["answer 3"]["transactions"] == 1, filed
    link = [s for s in filed if s.startswith("UPDATE inboundmessage SET case_id = ")]
    assert len(link) == 1 and " WHERE id IN (" in link[0] and filed.index(link[0]) > len(filed) - 6, filed
    assert filed[-2].startswith("INSERT INTO caseevent (") and filed[-1] == "COMMIT", filed
    assert filed.index(link[0]) > max(
        i for i, s in enumerate(filed) if s.startswith('INSERT INTO "case" (')
    ), filed
    # a new resident is created with WeChat's window open: no UPDATE of the row just inserted
    first = results["first message of a new resident"]["sql"]
    assert not any(s.lstrip().startswith("UPDATE resident") for s in first), first
    engine = make_engine(pg)
    try:
        async with make_sessions(engine)() as session:
            rows = (
                await session.exec(
                    select(InboundMessage.reply_mode, InboundMessage.reply, Resident.last_interaction_at)
                    .join(Resident, Resident.id == InboundMessage.resident_id)
                    .where(InboundMessage.openid == "o-bench-2")
                )
            ).all()
            linked = (
                await session.exec(
                    select(InboundMessage.text)
                    .where(InboundMessage.openid == "o-bench-1", col(InboundMessage.case_id).is_not(None))
                    .order_by(col(InboundMessage.id))
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(mode, bool(reply), last is not None) for mode, reply, last in rows] == [("passive", True, True)]
    assert [t for (t,) in linked] == ["我想要一辆轮椅，我们住在厚街镇", "同意", "不用", "确认"]


async def test_a_residents_answer_to_staff_is_routed_by_the_state_read_with_the_record(
    pg: str, tmp_path: Path
) -> None:
    """The rare states (staff wait for an answer, a survey waits) are read in the record's statement on PostgreSQL:
    with staff waiting, a free text lands on the case; without, the same words get the menu. No separate read."""

    from bot.conversation.dialogue.texts import ANSWER_FORWARDED
    from tests.factories import add_case
    from webhooks import WEBHOOK_HANDLER, Delivery

    runner = await keyword_bot(pg, tmp_path, migrate=False)
    app = runner.app
    engine = make_engine(pg)
    sessions = make_sessions(engine)
    statements: list[str] = []
    event.listen(
        app[keys.CHAT_ENGINE].sync_engine, "before_cursor_execute", lambda c, cur, s, *a: statements.append(s)
    )

    def delivery(openid: str, text: str, n: int) -> Delivery:
        return text_delivery(f"msg:{openid}:{n}", openid, text, account="gh_pg")  # type: ignore[no-any-return]

    words = "门口那个坑还在，下雨就积水"
    try:
        case = await add_case(sessions, now=datetime.now(UTC))
        async with transaction(sessions) as session:
            asked = (await session.exec(select(Case).where(Case.id == case.id))).scalar_one()
            asked.awaiting_resident = True
            openid = (
                await session.exec(select(Resident.openid).where(Resident.id == asked.resident_id))
            ).one()[0]
        handler = app[WEBHOOK_HANDLER]
        statements.clear()
        reply = await handler.handle(delivery(openid, words, 1))
        assert reply == ANSWER_FORWARDED.format(case_no=case.case_no)
        assert not any("EXISTS" in s and s.lstrip().startswith("SELECT EXISTS") for s in statements), (
            statements
        )
        other = await add_case(sessions, now=datetime.now(UTC))
        async with transaction(sessions) as session:
            quiet = (
                await session.exec(select(Resident.openid).where(Resident.id == other.resident_id))
            ).one()[0]
        assert (await handler.handle(delivery(quiet, words, 2))) != reply
        async with sessions() as session:
            answered = (await session.exec(select(Case).where(Case.id == case.id))).scalar_one()
        assert not answered.awaiting_resident
    finally:
        await runner.cleanup()
        await engine.dispose()


async def test_a_connection_lost_at_begin_is_the_database_away_and_the_pool_recovers(pg: str) -> None:
    """The BEGIN + lock round trip fails as any statement does: an error the journal takes (``unavailable``), the
    lost connection invalidated, and the next unit of work gets a fresh one once the server answers again."""
    from bot.conversation.dbwatch import unavailable
    from tests.helpers import TcpSwitch, pg_host_port, switched_pg_url

    switch = await TcpSwitch(*pg_host_port()).start()
    engine = make_engine(switched_pg_url(pg, switch.port), pool_size=1, max_overflow=0)
    sessions = make_sessions(engine)
    try:
        async with transaction(sessions) as session:
            assert await begin_locked(session, "resident:oLost-1")
        with pytest.raises(Exception) as failed:
            async with sessions() as session, session.begin():
                await session.connection()  # checked out within the idle time: not pinged
                switch.down()
                await begin_locked(session, "resident:oLost-1")
        assert unavailable(failed.value), repr(failed.value)
        assert getattr(failed.value, "connection_invalidated", False)  # the lost connection leaves the pool
        switch.up()
        async with transaction(sessions) as session:
            assert await begin_locked(session, "resident:oLost-1")
            assert (await session.exec(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
        await switch.close()


async def test_the_record_read_on_the_driver_gives_what_the_session_would(pg: str) -> None:
    """``first_on_driver`` (asyncpg's own API, the hot path's read) and the session's ORM execution of the same
    statement give the same values: the resident as a persistent ``Resident`` of the session (a change to it is
    flushed at the commit), the conversation's JSON as a dict, timestamps as aware UTC datetimes, the EXISTS
    flags; a duplicate delivery key is SQLAlchemy's ``IntegrityError`` and leaves nothing behind."""
    from bot.conversation.record import record

    engine = make_engine(pg)
    sessions = make_sessions(engine)
    try:
        rid = await new_resident(sessions, "oDriver-1")
        async with transaction(sessions) as session:
            session.add(
                Conversation(
                    resident_id=rid,
                    state="draft_describe",
                    data={"kind": "wish", "text": "轮椅 'x' \\ 🙏"},
                    updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                )
            )
        now = datetime.now(UTC)
        seen = []
        for begun in (False, True):  # the session's execution, then the driver's
            async with transaction(sessions) as session:
                if begun:
                    assert await begin_locked(session, "resident:oDriver-1")
                delivery = text_delivery(f"msg:oDriver-1:{begun}", "oDriver-1", "你好", account="gh_pg")
                recorded = await record(session, delivery, now)
                resident = recorded.resident
                assert resident in session and resident.id == rid and resident.openid == "oDriver-1"
                assert (
                    resident.last_interaction_at == now
                )  # opened the window: changed on the session's object
                seen.append(
                    (
                        {
                            k: getattr(resident, k)
                            for k in ("phone", "subscribed", "cs_sent_since_interaction")
                        },
                        recorded.conv,
                        recorded.awaiting,
                    )
                )
                assert recorded.row.id is not None
        assert seen[0] == seen[1]
        conv = seen[1][1][0]  # type: ignore[index]
        assert conv.data == {"kind": "wish", "text": "轮椅 'x' \\ 🙏"} and conv.state == "draft_describe"
        assert (
            conv.updated_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
            and conv.updated_at.tzinfo is not None
        )
        async with sessions() as session:
            stored = (await session.exec(select(Resident).where(Resident.id == rid))).scalar_one()
            kept = (
                await session.exec(
                    select(InboundMessage.delivery_key).where(InboundMessage.resident_id == rid)
                )
            ).all()
        assert stored.last_interaction_at == now  # flushed at the commit from the driver-read object
        assert sorted(k for (k,) in kept) == ["msg:oDriver-1:False", "msg:oDriver-1:True"]
        # the same key again on the driver: the unique key's IntegrityError, the transaction rolled back
        with pytest.raises(IntegrityError):
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oDriver-1")
                await record(session, text_delivery("msg:oDriver-1:True", "oDriver-1", "你好"), now)
        async with transaction(sessions) as session:  # the pool's connection is usable after it
            assert await begin_locked(session, "resident:oDriver-1")
            assert (await session.exec(select(Resident.openid).where(Resident.id == rid))).one()[
                0
            ] == "oDriver-1"
    finally:
        await engine.dispose()


async def test_what_a_turn_changes_on_the_resident_goes_with_the_commit(pg: str) -> None:
    """The resident's row changed by a turn (WeChat's window opened again, consent, a phone) is not flushed in a
    round trip of its own: in a transaction ``begin_locked`` began its changed columns go with the COMMIT, and the row
    holds them afterwards; a row of another class, a new row and a transaction begun the ordinary way are flushed as
    before; a change that fails makes the whole transaction fail."""
    from bot.conversation.record import record

    engine = make_engine(pg)
    sessions = make_sessions(engine)
    cursor_sql: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        cursor_sql.append(" ".join(statement.split()))

    try:
        rid = await new_resident(sessions, "oWindow-1")
        first = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
        later = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)  # past the window's slack: written again
        for n, now in enumerate((first, later)):
            cursor_sql.clear()
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oWindow-1")
                recorded = await record(
                    session, text_delivery(f"msg:oWindow-1:{n}", "oWindow-1", "你好"), now
                )
                assert recorded.resident.last_interaction_at == now
                if n:
                    recorded.resident.phone = "13800138000"
                    recorded.resident.consent_at, recorded.resident.consent_version = later, "2026-11"
                    session.add(Conversation(resident_id=rid, state="menu", data={}, updated_at=later))
            assert not any(s.startswith("UPDATE resident") for s in cursor_sql), cursor_sql
            # the new conversation row is the unit of work's, flushed as before
            assert any(s.startswith("INSERT INTO conversation") for s in cursor_sql) == bool(n), cursor_sql
        async with sessions() as session:
            stored = (await session.exec(select(Resident).where(Resident.id == rid))).scalar_one()
        assert (stored.last_interaction_at, stored.phone, stored.consent_at, stored.consent_version) == (
            later,
            "13800138000",
            later,
            "2026-11",
        )
        assert stored.cs_sent_since_interaction == 0
        # a transaction begun the ordinary way: the flush writes it, as before
        cursor_sql.clear()
        async with transaction(sessions) as session:
            row = (await session.exec(select(Resident).where(Resident.id == rid))).scalar_one()
            row.phone = "13900139000"
        assert any(s.startswith("UPDATE resident SET phone") for s in cursor_sql), cursor_sql
        # a change that fails at the COMMIT fails the transaction: nothing of it stays
        with pytest.raises(IntegrityError):
            async with transaction(sessions) as session:
                assert await begin_locked(session, "resident:oWindow-1")
                await record(session, text_delivery("msg:oWindow-1:bad", "oWindow-1", "你好"), later)
                (
                    await session.exec(select(Resident).where(Resident.id == rid))
                ).scalar_one().scan_community_id = 987654  # no such community: the foreign key refuses it
        async with sessions() as session:
            kept = (
                await session.exec(
                    select(InboundMessage.delivery_key).where(
                        InboundMessage.delivery_key == "msg:oWindow-1:bad"
                    )
                )
            ).all()
            phone = (await session.exec(select(Resident.phone).where(Resident.id == rid))).one()[0]
        assert kept == [] and phone == "13900139000"
    finally:
        await engine.dispose()


def test_only_a_plainly_mapped_class_has_its_updates_sent_with_the_commit() -> None:
    """``updates_with_commit`` refuses a class whose UPDATE the flush would add to (a column updated by itself, a
    version counter, a listener on its updates): those must go through the unit of work."""
    from sqlalchemy import Column, Integer, MetaData, String, Table
    from sqlalchemy.orm import registry

    mapper_registry = registry(metadata=MetaData())

    class Stamped:
        pass

    mapper_registry.map_imperatively(
        Stamped,
        Table(
            "stamped",
            mapper_registry.metadata,
            Column("id", Integer, primary_key=True),
            Column("name", String),
            Column("stamp", Integer, onupdate=1),
        ),
    )

    class Plain:
        pass

    mapper_registry.map_imperatively(
        Plain,
        Table(
            "plain", mapper_registry.metadata, Column("id", Integer, primary_key=True), Column("x", String)
        ),
    )

    class Watched:
        pass

    mapper_registry.map_imperatively(
        Watched,
        Table(
            "watched", mapper_registry.metadata, Column("id", Integer, primary_key=True), Column("x", String)
        ),
    )
    event.listen(Watched, "before_update", lambda *_: None)

    for cls in (Stamped, Watched):
        with pytest.raises(ValueError, match="cannot go with the COMMIT"):
            updates_with_commit(cls)
    from bot import driver

    try:
        updates_with_commit(Plain)  # accepted
        assert Plain in driver._WITH_COMMIT
    finally:
        driver._WITH_COMMIT.discard(Plain)


async def test_a_new_resident_is_created_with_the_record_in_one_statement(pg: str) -> None:
    """A first message on PostgreSQL: the resident's INSERT and the record's in one statement (``_CREATE_AND_RECORD``
    on asyncpg's own API) after the read for a known resident found none — 4 round trips, not 6. The row is as the
    long way writes it (window open for a message, not for an event that opens none), the resident is the session's
    (a change is flushed), and an openid whose row appeared meanwhile without the lock takes the long way."""
    from bot.conversation.record import record

    engine = make_engine(pg)
    sessions = make_sessions(engine)
    now = datetime.now(UTC)
    try:
        async with transaction(sessions) as session:
            assert await begin_locked(session, "resident:oNew-1")
            recorded = await record(session, text_delivery("msg:oNew-1:1", "oNew-1", "你好"), now)
            assert recorded.conv == (None,) and recorded.awaiting == (False, False, False)
            assert recorded.resident in session and recorded.resident.last_interaction_at == now
            recorded.resident.phone = "13800000009"  # as the dialogue would: flushed at the commit
        async with transaction(sessions) as session:  # an event that opens no window: created with it closed
            assert await begin_locked(session, "resident:oNew-2")
            delivery = text_delivery("msg:oNew-2:1", "oNew-2", "")
            delivery = dataclasses.replace(delivery, msg_type="event", event="unsubscribe", text=None)
            assert (await record(session, delivery, now)).resident.last_interaction_at is None
        # a resident row made outside the lock after the read found none: the long way, one resident, one record
        async with transaction(sessions) as session:
            assert await begin_locked(session, "resident:oNew-3")
            await session.exec(
                text(
                    "INSERT INTO resident (openid, subscribed, survey_opt_out, "
                    "cs_sent_since_interaction, created_at) VALUES ('oNew-3', true, false, 0, now())"
                )
            )
            from bot.conversation import record as record_module

            created = await record_module._create_and_record(
                session,
                {
                    "delivery_key": "msg:oNew-3:1",
                    "openid": "oNew-3",
                    "msg_type": "text",
                    "event": None,
                    "text": "你好",
                    "media": {},
                    "reply_mode": "pending",
                    "received_at": now,
                    "opened": now,
                },
            )
            assert created is None  # ON CONFLICT DO NOTHING: neither row written
        async with sessions() as session:
            rows = (
                await session.exec(
                    select(Resident.openid, Resident.phone, Resident.subscribed, Resident.created_at)
                    .where(col(Resident.openid).in_(["oNew-1", "oNew-2", "oNew-3"]))
                    .order_by(Resident.openid)
                )
            ).all()
            records = (
                await session.exec(
                    select(InboundMessage.delivery_key, InboundMessage.resident_id).order_by(
                        InboundMessage.id
                    )
                )
            ).all()
        assert [(o, p, s, c == now) for o, p, s, c in rows] == [
            ("oNew-1", "13800000009", True, True),
            ("oNew-2", None, True, True),
            ("oNew-3", None, True, False),
        ]
        assert [k for k, _ in records] == ["msg:oNew-1:1", "msg:oNew-2:1"] and all(r for _, r in records)
        # through the webhook: a new resident's first message is 4 round trips on a worker's warm connection
        results = await sql_count.run(pg, show=False)
        first = results["first message of a new resident"]
        sql = [" ".join(s.split()) for s in first["sql"]]
        assert first["round_trips"] == 4, sql
        assert sql[3].startswith("WITH created AS (INSERT INTO resident"), sql
    finally:
        await engine.dispose()


async def test_scripted_conversations_get_the_same_replies_on_postgresql_as_on_sqlite(
    pg: str, tmp_path: Path
) -> None:
    """The benchmark's residents (greetings, wishes and projects answered until filed, queries; new residents
    first) through the webhook's handler on SQLite and on PostgreSQL, where the reads and records go through
    asyncpg's own API: the same replies, message for message (case numbers aside), and the same rows afterwards."""
    import random
    import re

    from benchmarks.webhook import conversation
    from webhooks import WEBHOOK_HANDLER

    async def chat(url: str, folder: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
        folder.mkdir()
        runner = await keyword_bot(url, folder, migrate=True)
        replies: list[str] = []
        try:
            handler = runner.app[WEBHOOK_HANDLER]
            for i in range(6):
                script = conversation(random.Random(7_000 + i), phone=f"1390000{i:04d}")
                words = next(script)
                for n in range(14):
                    reply = await handler.handle(text_delivery(f"msg:oSame-{i}:{n}", f"oSame-{i}", words))
                    # case numbers, times and signed links (the two runs are seconds apart) aside
                    shown = re.sub(r"M[SX]\d{8}-\d{4,}", "<case>", str(reply))
                    shown = re.sub(r"\d{1,2}月\d{1,2}日 ?\d{1,2}:\d{2}", "<time>", shown)
                    replies.append(re.sub(r"\?t=[\w.-]+", "?t=<signed>", shown))
                    words = script.send(reply)
            engine = make_engine(url)
            try:
                async with make_sessions(engine)() as session:
                    rows = (
                        await session.exec(
                            select(
                                Resident.openid,
                                Resident.phone,
                                Resident.consent_version,
                                InboundMessage.delivery_key,
                                InboundMessage.reply_mode,
                                InboundMessage.intent,
                                col(InboundMessage.case_id).is_not(None),
                            )
                            .join(Resident, Resident.id == InboundMessage.resident_id)
                            .order_by(InboundMessage.delivery_key)
                        )
                    ).all()
            finally:
                await engine.dispose()
        finally:
            await runner.cleanup()
        return replies, [tuple(r) for r in rows]

    on_sqlite = await chat(f"sqlite+aiosqlite:///{tmp_path / 'same.sqlite3'}", tmp_path / "sqlite")
    on_pg = await chat(pg, tmp_path / "pg")
    assert len(on_sqlite[0]) == 84 and sum("<case>" in r for r in on_sqlite[0]) >= 3  # cases were filed
    assert on_pg[0] == on_sqlite[0]
    assert on_pg[1] == on_sqlite[1] and len(on_pg[1]) == 84


async def test_a_statement_prepared_before_a_column_type_change_is_handled_once_more(
    pg: str, tmp_path: Path
) -> None:
    """A migration that changes a column's type while a worker runs leaves its connections' prepared plans invalid;
    inside a transaction asyncpg then raises ``InvalidCachedStatementError``. The unit of work runs once more (the
    plan is gone with the failed transaction): the resident gets the dialogue's answer, not the apology, and the
    message is recorded once."""
    from bot.conversation.inbound import SORRY
    from webhooks import WEBHOOK_HANDLER

    runner = await keyword_bot(pg, tmp_path, migrate=False)
    try:
        handler = runner.app[WEBHOOK_HANDLER]
        first = await handler.handle(text_delivery("msg:oSchema-1:1", "oSchema-1", "你好"))
        assert first and first != SORRY
        again = await handler.handle(text_delivery("msg:oSchema-1:2", "oSchema-1", "你好"))
        assert again == first  # the read-and-record plan is prepared on the pooled connection now
        conn = await asyncpg.connect(asyncpg_dsn(pg))
        try:
            await conn.execute("ALTER TABLE resident ALTER COLUMN phone TYPE text")
        finally:
            await conn.close()
        after = await handler.handle(text_delivery("msg:oSchema-1:3", "oSchema-1", "你好"))
        assert after == first
        engine = make_engine(pg)
        try:
            async with make_sessions(engine)() as session:
                kept = (
                    await session.exec(
                        select(InboundMessage.delivery_key, InboundMessage.reply_mode)
                        .where(InboundMessage.openid == "oSchema-1")
                        .order_by(InboundMessage.delivery_key)
                    )
                ).all()
        finally:
            await engine.dispose()
        assert [tuple(r) for r in kept] == [(f"msg:oSchema-1:{n}", "passive") for n in (1, 2, 3)]
    finally:
        await runner.cleanup()


async def test_a_workers_server_connections_come_from_its_settings(pg: str, tmp_path: Path) -> None:
    """``DB_POOL_SIZE`` and ``DB_MAX_OVERFLOW`` size the worker's PostgreSQL pool (4 + 4 unless set: more than the
    server's cores only queue inside it); nonsense is refused when the settings are read; SQLite takes no pool
    options."""
    from aiohttp import web
    from pydantic import ValidationError

    from benchmarks.webhook import _keyword_nlu, bot_settings
    from bot.app import create_app
    from bot.settings import Settings

    options = bot_settings(
        db_url=pg, data_dir=tmp_path, rasa_url="http://127.0.0.1:9", sim_port=9, bot_port=9
    )
    assert Settings(**options).db_pool == {"pool_size": 4, "max_overflow": 4}
    assert Settings(**{**options, "database_url": ""}).db_pool == {}
    for bad in ({"db_pool_size": 0}, {"db_max_overflow": -1}, {"db_pool_size": "many"}):
        with pytest.raises(ValidationError):
            Settings(**options, **bad)
    app = create_app(
        Settings(**options, db_pool_size=3, db_max_overflow=1), run_migrations=False, with_scheduler=False
    )
    app.cleanup_ctx.append(_keyword_nlu)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        pool = app[keys.ENGINE].sync_engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 1)  # type: ignore[attr-defined]
    finally:
        await runner.cleanup()
