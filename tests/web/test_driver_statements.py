"""Statements marked ``on_driver`` (bot/driver.py) run past SQLAlchemy's session inside the webhook's units of work —
on SQLite the inline transaction's sqlite3 cursor, on PostgreSQL asyncpg's own API in a transaction ``begin_locked``
began — and must behave as SQLAlchemy's path does: the same rows and types, the session's pending objects flushed
first, SQLAlchemy's errors (a duplicate delivery is an ``IntegrityError``: the webhook answers it as a retry), the
rows a write touched; what they cannot do exactly (ORM entities, an expanding ``IN``, an ORM ``UPDATE`` that
synchronises the session) stays on SQLAlchemy's path. On real databases: a SQLite file and, when reachable,
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlmodel import col

from bot import driver
from bot.conversation import record
from bot.conversation.dialogue import engine as dialogue
from bot.db import InlineEngine, make_engine, make_sessions, transaction
from bot.models import Case, Conversation, InboundMessage, Resident
from tests.factories import add_case

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class _Watched:
    """A database as the webhook uses it, with what reached SQLAlchemy's execution (``before_execute``: a statement
    SQLAlchemy's Connection ran) and its cursor (``before_cursor_execute``)."""

    def __init__(self, url: str) -> None:
        self.pg = url.startswith("postgresql")
        self.engine: Any = make_engine(url) if self.pg else InlineEngine(url)
        self.sessions = make_sessions(self.engine)
        self.executed: list[str] = []
        self.cursor: list[str] = []
        sync = self.engine.sync_engine
        event.listen(sync, "before_execute", lambda _c, clause, *_: self.executed.append(str(clause)))
        event.listen(sync, "before_cursor_execute", lambda _c, _cur, sql, *_: self.cursor.append(sql))

    @asynccontextmanager
    async def unit(self, openid: str = "oDriver-1") -> AsyncIterator[Any]:
        """A unit of work as the webhook's (on PostgreSQL begun with the resident's lock)."""
        async with transaction(self.sessions) as session:
            if self.pg:
                assert await driver.begin_locked(session, f"resident:{openid}")
            self.executed.clear()
            self.cursor.clear()
            yield session

    async def plain(self, statement: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """``statement`` through SQLAlchemy's session (a session outside the webhook's units of work)."""
        async with self.sessions() as session:
            return [tuple(row) for row in (await session.exec(statement, params=params)).all()]

    async def close(self) -> None:
        await self.engine.dispose()


@pytest.fixture
async def watched(db_url: str) -> AsyncIterator[_Watched]:
    db = _Watched(db_url)
    yield db
    await db.close()


async def _resident_with_conversation(db: _Watched, openid: str = "oDriver-1") -> int:
    async with transaction(db.sessions) as session:
        resident = Resident(openid=openid, created_at=NOW, phone="13800000001", last_interaction_at=NOW)
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        session.add(
            Conversation(
                resident_id=resident.id,
                state="draft_confirm",
                data={"draft": {"item": "轮椅", "quantity": 1}, "msg_ids": [3, 4], "note": '它\'s "引号"'},
                updated_at=NOW - timedelta(minutes=5),
            )
        )
        return resident.id


async def test_marked_reads_return_what_sqlalchemy_returns(watched: _Watched) -> None:
    rid = await _resident_with_conversation(watched)
    await add_case(watched.sessions, status="completed", now=NOW)  # another resident's: not this one's
    reads = [
        (record._KNOWN_RESIDENT, {"openid": "oDriver-1"}),
        (record._KNOWN_RESIDENT, {"openid": "oNobody"}),
        (dialogue._READ_CONVERSATION, {"rid": rid}),
        (dialogue._AWAITING, {"rid": rid, "comment_since": NOW - timedelta(days=1)}),
    ]
    for statement, params in reads:
        expected = await watched.plain(statement, params)
        async with watched.unit() as session:
            got = [tuple(row) for row in (await session.exec(statement, params=params)).all()]
            assert watched.executed == []  # past SQLAlchemy's execution
        assert got == expected
        # the same Python types as SQLAlchemy's (aware timestamps, JSON as dicts), not the driver's text
        assert [[type(v) for v in row] for row in got] == [[type(v) for v in row] for row in expected]
    resident_row = (await watched.plain(*reads[0]))[0]
    assert resident_row[len(record._RESIDENT_COLUMNS) + 2]["draft"]["item"] == "轮椅"
    assert resident_row[list(record._RESIDENT_COLUMNS).index("created_at")] == NOW


async def test_statement_counts_still_see_the_marked_statements_on_sqlite(sqlite_url: str) -> None:
    """benchmarks/sql_count.py and the hot-path tests count statements with ``before_cursor_execute``."""
    db = _Watched(sqlite_url)
    try:
        await _resident_with_conversation(db)
        async with db.unit() as session:
            await session.exec(record._KNOWN_RESIDENT, params={"openid": "oDriver-1"})
        assert len(db.cursor) == 1 and db.cursor[0].lstrip().startswith("SELECT resident.id")
        assert db.executed == []
    finally:
        await db.close()


def _record_params(key: str, rid: int) -> dict[str, Any]:
    return {
        "delivery_key": key,
        "openid": "oDriver-1",
        "resident_id": rid,
        "msg_type": "text",
        "event": None,
        "text": "路灯坏了 ' ; --",
        "media": {"pic": "媒体", "n": 2},
        "reply_mode": "pending",
        "received_at": NOW,
    }


async def test_a_duplicate_delivery_is_sqlalchemys_integrity_error_and_leaves_one_row(
    watched: _Watched,
) -> None:
    rid = await _resident_with_conversation(watched)
    async with watched.unit() as session:
        first = (
            await session.exec(record._INSERT_RECORD, params=_record_params("msg:dup", rid))
        ).scalar_one()
        assert watched.executed == []
    with pytest.raises(IntegrityError):  # what the webhook catches to answer a retry from the first record
        async with watched.unit() as session:
            await session.exec(record._INSERT_RECORD, params=_record_params("msg:other", rid))
            await session.exec(record._INSERT_RECORD, params=_record_params("msg:dup", rid))
    rows = await watched.plain(
        select(col(InboundMessage.id), col(InboundMessage.delivery_key), col(InboundMessage.media)), {}
    )
    assert rows == [(first, "msg:dup", {"pic": "媒体", "n": 2})]  # the failed unit left nothing


async def test_a_write_reports_the_rows_it_touched(watched: _Watched) -> None:
    rid = await _resident_with_conversation(watched)
    async with watched.unit() as session:
        row_id = (await session.exec(record._INSERT_RECORD, params=_record_params("msg:w", rid))).scalar_one()
        outcome = {"new_reply": "好的", "new_reply_mode": "passive", "new_intent": "greet"}
        outcome |= {"new_confidence": 0.5, "new_nlu_source": "keyword"}
        stored = await session.exec(record._STORE, params={"row_id": row_id, **outcome})
        missing = await session.exec(record._STORE, params={"row_id": row_id + 1000, **outcome})
        assert watched.executed == []
    assert (stored.rowcount, missing.rowcount) == (1, 0)
    assert await watched.plain(
        select(col(InboundMessage.reply), col(InboundMessage.confidence)).where(
            col(InboundMessage.id) == row_id
        ),
        {},
    ) == [("好的", 0.5)]


async def test_pending_objects_are_flushed_before_a_marked_statement(watched: _Watched) -> None:
    async with watched.unit("oPending-1") as session:
        session.add(Resident(openid="oPending-1", created_at=NOW))  # pending: not in the database yet
        found = (await session.exec(record._KNOWN_RESIDENT, params={"openid": "oPending-1"})).first()
    assert found is not None and found[1] == "oPending-1"


async def test_a_missing_parameter_is_refused_before_the_database(watched: _Watched) -> None:
    rid = await _resident_with_conversation(watched)
    with pytest.raises(InvalidRequestError, match="rid"):
        async with watched.unit() as session:
            await session.exec(dialogue._READ_CONVERSATION, params={})
    assert await watched.plain(dialogue._READ_CONVERSATION, {"rid": rid})  # nothing changed


async def test_what_the_driver_cannot_run_exactly_stays_on_sqlalchemys_path(watched: _Watched) -> None:
    rid = await _resident_with_conversation(watched)
    case = await add_case(watched.sessions, status="completed", now=NOW)
    entity = driver.on_driver(select(Resident).where(col(Resident.openid) == bindparam("openid")))
    expanding = driver.on_driver(
        select(col(Case.id)).where(col(Case.status).in_(bindparam("statuses", expanding=True)))
    )
    orm_update = driver.on_driver(
        update(Resident).where(col(Resident.id) == bindparam("rid")).values(phone=bindparam("phone"))
    )
    async with watched.unit() as session:
        resident = (await session.exec(entity, params={"openid": "oDriver-1"})).scalar_one()
        assert isinstance(resident, Resident) and resident.id == rid  # an ORM object, as SQLAlchemy gives
        ids = (await session.exec(expanding, params={"statuses": ["completed", "closed"]})).scalars().all()
        assert ids == [case.id]
        await session.exec(orm_update, params={"rid": rid, "phone": "13900000009"})
        assert len(watched.executed) == 3  # all three through SQLAlchemy's execution
    dialect = watched.engine.dialect.name
    assert driver._ON_DRIVER[(dialect, id(entity), None)] is None
    assert driver._ON_DRIVER[(dialect, id(expanding), None)] is None
    assert driver._ON_DRIVER[(dialect, id(orm_update), ("rid", "phone"))] is None
    phone = select(col(Resident.phone)).where(col(Resident.id) == rid)
    assert await watched.plain(phone, {}) == [("13900000009",)]


async def test_outside_the_webhooks_units_of_work_marked_statements_take_sqlalchemys_path(
    watched: _Watched,
) -> None:
    rid = await _resident_with_conversation(watched)
    watched.executed.clear()
    assert await watched.plain(dialogue._READ_CONVERSATION, {"rid": rid})
    assert len(watched.executed) == 1
