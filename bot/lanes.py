"""PostgreSQL: the webhook's units of work on held connections, past SQLAlchemy's session until one is needed.

A unit of work through the ORM session costs its CPU before any statement: the session and its transaction made,
a connection checked out of the pool and returned (its events, its reset), the commit's bookkeeping, and a greenlet
for each of these. Measured on the asyncpg driver (benchmarks/README.md, 2026-12-07, sixth machine): a unit with
the resident's lock and a COMMIT cost 530–690 µs of CPU through the session, 190–210 µs as the same two round trips
on asyncpg. Most of the webhook's messages need no ORM object but the resident, whose row is read on the driver
already (bot/driver.py ``on_driver``, ``first_on_driver``), and whose changes go with the COMMIT.

``Lanes`` holds a few of the engine's connections checked out (a *lane*: SQLAlchemy's ``AsyncConnection`` kept with
its asyncpg connection), handed to the webhook's units of work in turn: at most the pool's size and never the last
connection the pool can open (``limit_for``), and a lane left unused for ``PING_AFTER_IDLE`` seconds goes back to
the pool when the next unit ends, so a burst's connections return to staff pages and the scheduler. ``LeanSession`` stands where the session
stands: the statements marked ``on_driver`` run on asyncpg, the resident read on the driver is kept as a loaded row
(``get`` of it answers from the unit), new rows of the classes ``inserts_on_driver`` named (a filed case, its first
timeline event) are inserted on asyncpg, at ``flush`` or before a statement of their table, or with the COMMIT;
anything else — an unmarked statement, ``get`` of a row not kept, ``add`` of another new object, an event whose
chain head must be read, a savepoint — makes the real session at that moment, bound to the lane's connection inside
the same transaction, holding the kept and the new rows, and the rest of the unit goes through it as before. The
commit sends the resident's changed columns and the turn's last writes with the COMMIT.

A lane idle for ``PING_AFTER_IDLE`` seconds is pinged before it is used (the pool's own rule for its connections);
one whose connection failed is invalidated and given back to the pool, which replaces it, and when the connection was
lost the free lanes go back with it (as the pool invalidates its own: they were the same server's). With every lane in use,
a unit borrows one of the pool's connections and runs the same way on it (``borrow``), which goes back to the pool when
the unit ends: a third less CPU than the session it took before (``python -m benchmarks.units``). Only when none can
be borrowed does a unit take the ordinary session (``bot.db.transaction``)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

from bot.driver import (
    BEGUN,
    Begun,
    DriverResult,
    DriverSession,
    at_commit,
    commit_and_close,
    driven,
    insert_on_driver,
    lockable,
    new_row_values,
    new_rows,
    raise_translated,
    run_pg,
    write_sql,
    write_with_commit,
)

log = logging.getLogger(__name__)

#: a pooled server connection (bot/db.py) or a lane unused for this many seconds is pinged before it is used
PING_AFTER_IDLE = 2.0


class Lane:
    """One held connection: SQLAlchemy's, its DBAPI adapter and asyncpg's own."""

    __slots__ = ("adapted", "borrowed", "connection", "driver", "since", "sync")

    def __init__(self, connection: AsyncConnection, *, borrowed: bool = False) -> None:
        self.connection = connection
        #: taken from the pool for one unit of work (every lane was in use): back to the pool when it ends
        self.borrowed = borrowed
        sync: Any = connection.sync_connection
        self.sync = sync
        fairy = sync.connection
        self.adapted: Any = fairy.dbapi_connection
        self.driver: Any = fairy.driver_connection
        self.since = time.monotonic()

    def usable(self) -> bool:
        """In a state to begin a unit: open, valid, no transaction, the driver's defaults."""
        return (
            not self.sync.invalidated
            and not self.sync.closed
            and not self.driver.is_closed()
            and self.adapted._transaction is None
            and not self.driver.is_in_transaction()
            and lockable(self.adapted, self.driver)
        )


def limit_for(pool_size: int, max_overflow: int) -> int:
    """How many of a pool's connections the webhook may hold: its size, but never the last connection the pool can
    open (staff pages, the scheduler and the webhook's other units take theirs from what is left). ``max_overflow``
    -1: the pool opens as many as asked."""
    if max_overflow < 0:
        return pool_size
    return max(0, min(pool_size, pool_size + max_overflow - 1))


class Lanes:
    """Up to ``limit`` of ``engine``'s pooled connections held for the webhook's units of work."""

    def __init__(self, engine: AsyncEngine, limit: int) -> None:
        self.engine = engine
        self.limit = limit
        self.free: list[Lane] = []  # most recently used last: the next unit takes it (warm, never idle long)
        self.held = 0  # lanes out of the pool, free or in use
        self.closed = False

    async def take(self) -> Lane | None:
        """A lane to begin a unit on; None when all ``limit`` are in use (or the lanes are closed)."""
        while self.free:
            lane = self.free.pop()
            if time.monotonic() - lane.since < PING_AFTER_IDLE or await self._ping(lane):
                return lane
        if self.held >= self.limit or self.closed:
            return None
        self.held += 1
        try:
            return await self._connect(borrowed=False)
        except BaseException:
            self.held -= 1  # no connection came (a connection that came and failed was dropped, and counted)
            raise

    async def borrow(self) -> Lane | None:
        """With every lane in use: one of the pool's connections for one unit of work, returned when it ends (its
        checkout costs a fraction of a session's); None when the lanes are closed or the connection cannot begin
        a unit here. Waits for the pool as a session would."""
        return None if self.closed else await self._connect(borrowed=True)

    async def _connect(self, *, borrowed: bool) -> Lane | None:
        """A lane on a connection of the pool (its checkout, and its ping after idle); None, the connection given
        back, when it cannot begin a unit here."""
        lane = Lane(await self.engine.connect(), borrowed=borrowed)
        if not lane.usable():
            await self.drop(lane)
            return None
        return lane

    async def _ping(self, lane: Lane) -> bool:
        try:
            alive = await greenlet_spawn(lane.sync.dialect.do_ping, lane.adapted)  # the pool's own ping
            if not alive:
                raise ConnectionError("no answer to the ping")
        except Exception as exc:  # noqa: BLE001 - any failure means "not this connection"
            log.info("a held connection failed its ping after idle (%s); replaced", type(exc).__name__)
            await self.drop(lane)
            return False
        return True

    def give_back(self, lane: Lane) -> None:
        lane.since = time.monotonic()
        self.free.append(lane)

    async def _release_idle(self) -> None:
        """Lanes unused for ``PING_AFTER_IDLE`` seconds (the least recently used are first) go back to the pool: a
        burst's connections are not kept from the rest of the process once it has passed."""
        now = time.monotonic()
        while self.free and now - self.free[0].since >= PING_AFTER_IDLE:
            await self.drop(self.free.pop(0))

    async def drop(self, lane: Lane) -> None:
        """Give ``lane``'s connection back to the pool: invalidated (the pool opens a new one) unless it is sound."""
        if not lane.borrowed:
            self.held -= 1
        try:
            if not lane.usable() and not lane.sync.invalidated:
                await lane.connection.invalidate()
            await lane.connection.close()
        except Exception as exc:  # noqa: BLE001 - a connection that cannot even close is the pool's to forget
            log.warning("a held connection could not be returned cleanly (%s)", type(exc).__name__)

    async def close(self) -> None:
        """At shutdown: the free lanes back to the pool (a unit still under way gives its lane back when it ends)."""
        self.closed = True
        while self.free:
            await self.drop(self.free.pop())

    @asynccontextmanager
    async def unit(self, lane: Lane, lock: str) -> AsyncIterator[LeanSession]:
        """One unit of work on ``lane``: BEGIN and ``pg_advisory_xact_lock(hashtext(lock))`` in one round trip,
        then the ``LeanSession``; commit on success (the resident's changes and the last writes with the COMMIT),
        roll back on error; the lane back to the free ones, or to the pool when its connection failed."""
        begun = Begun(lane.adapted, lane.driver, lane.sync)
        session = LeanSession(self.engine, lane, begun)
        sound = False
        try:
            await begun.begin(lock)
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()
            sound = True
        finally:
            lane.adapted._transaction = None
            if not sound and not session.ended:
                await session.rollback()
            if lane.usable() and not self.closed and not lane.borrowed:
                self.give_back(lane)
                await self._release_idle()
            else:
                gone = lane.sync.invalidated  # a lost connection: the server restarted or failed over
                await self.drop(lane)
                while gone and self.free:  # as the pool does its own: the others of that server go too
                    await self.drop(self.free.pop())


class LeanSession:
    """What the webhook's dialogue needs of a session, on a lane: ``exec`` of statements marked ``on_driver`` on
    asyncpg, the resident loaded on the driver kept as a loaded row (``add``), ``info`` and ``bind``. Any other
    attribute makes the real session (``DriverSession``) bound to the lane's connection, in the same transaction,
    holding the rows kept so far; from then on everything goes through it."""

    def __init__(self, engine: AsyncEngine, lane: Lane, begun: Begun) -> None:
        self.bind = engine
        self.info: dict[Any, Any] = {BEGUN: begun}
        self._lane = lane
        self._begun = begun
        self._kept: dict[tuple[type, Any], Any] = {}
        #: new rows of classes ``inserts_on_driver`` named, in the order added, not yet inserted
        self._new: list[Any] = []
        self._real: DriverSession | None = None
        self.ended = False

    # ---------------------------------------------------------------- the lean part
    async def exec(
        self, statement: Any, *, params: Any = None, execution_options: Any = None, **kw: Any
    ) -> Any:
        if self._real is None and not execution_options:
            prepared = driven(self, statement, params, kw)
            if prepared is not None and not self._stale_for(prepared) and await self._new_inserted(prepared):
                rows, count = await run_pg(self._begun, prepared, params or {})
                return DriverResult(prepared, rows, count)
        return await self.real.exec(statement, params=params, execution_options=execution_options, **kw)

    def _stale_for(self, prepared: Any) -> bool:
        """A kept row has changes the statement's tables would not show yet (the session would flush them first)."""
        if not self._kept:
            return False
        tables = prepared.tables
        states: Any = (sa_inspect(obj) for obj in self._kept.values())
        return any(state.modified and state.mapper.local_table in tables for state in states)

    async def _new_inserted(self, prepared: Any) -> bool:
        """The new rows of the statement's tables are inserted (as the session's autoflush would); False when one
        needs the ORM's flush."""
        if not self._new or not any(
            sa_inspect(obj).mapper.local_table in prepared.tables for obj in self._new
        ):
            return True
        return await self._insert_new()

    async def _insert_new(self, *, ending: bool = False) -> bool:
        """The new rows on the driver, in the order added (``inserts_on_driver``); ``ending`` (the commit): those of a
        class that may go with the COMMIT do, unless a row after them cannot (then all go now, keeping ids in order).
        False at the first row the ORM's flush must insert: it and those after it stay for the real session."""
        later: list[tuple[Any, dict[str, Any], str]] = []
        done = True
        while self._new:
            obj = self._new[0]
            rule: Any = new_rows(type(obj))
            if new_row_values(obj) is None or (rule.before is not None and not rule.before(self.info, obj)):
                done = False
                break
            values: Any = new_row_values(obj)  # with what ``before`` filled in
            self._new.pop(0)
            table = sa_inspect(obj).mapper.local_table
            sql = write_sql(self, table, values) if ending and rule.with_commit else None
            if sql is not None:
                later.append((obj, values, sql))
            else:
                await self._insert_now(later)
                await self._insert_now([(obj, values, "")])
            if rule.after is not None:
                rule.after(self.info, obj)
        if not done:
            await self._insert_now(later)
        for _obj, _values, sql in later:
            at_commit(self, sql)
        return done

    async def _insert_now(self, rows: list[tuple[Any, dict[str, Any], str]]) -> None:
        for obj, values, _sql in rows:
            await insert_on_driver(self._begun, self.bind.dialect, obj, values)
            self._kept[(type(obj), obj.id)] = obj
        rows.clear()

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        """A row this unit keeps, as the session's identity map gives it (no statement); else the real session's."""
        if self._real is None and not kw:
            kept = self._kept.get((entity, ident))
            if kept is not None:
                return kept
        return await self.real.get(entity, ident, **kw)

    async def flush(self, objects: Any = None) -> None:
        """New rows inserted on the driver when every one can be (kept rows' changes go with the COMMIT)."""
        if self._real is None and objects is None and await self._insert_new():
            return
        await self.real.flush(objects)

    def held(self, cls: type, ident: Any) -> Any:
        """The row of ``cls`` with primary key ``ident`` this unit keeps, if any (the session's identity map)."""
        if self._real is not None:
            return self._real.sync_session.identity_map.get((cls, (ident,), None))
        return self._kept.get((cls, ident))

    def add(self, obj: Any) -> None:
        """A row as loaded (its identity set, detached) is kept; anything else goes to the real session."""
        state: Any = sa_inspect(obj)
        if self._real is None and state.session_id is None:
            if state.key is not None and len(state.key[1]) == 1:
                self._kept[(state.class_, state.key[1][0])] = obj
                return
            if state.key is None and new_rows(state.class_) is not None:
                if not any(new is obj for new in self._new):
                    self._new.append(obj)
                return
        self.real.add(obj)

    # ---------------------------------------------------------------- the real session, when needed
    @property
    def real(self) -> DriverSession:
        if self._real is None:
            real = DriverSession(bind=self._lane.connection, expire_on_commit=False)
            real.info.update(self.info)
            for obj in (*self._kept.values(), *self._new):
                real.add(obj)
            self._kept.clear()
            self._new.clear()
            self._real = real
        return self._real

    def __getattr__(self, name: str) -> Any:
        # everything a LeanSession does not do itself: the real session's (made now)
        return getattr(self.real, name)

    # ---------------------------------------------------------------- the end of the unit
    async def commit(self) -> None:
        self.ended = True
        if (
            self._real is None
            and await self._insert_new(ending=True)
            and write_with_commit(self, list(self._kept.values()))
        ):
            self._dispatch("commit")
            try:
                await self._begun.commit()
            except Exception as exc:
                # as SQLAlchemy's adapter reports a failed COMMIT: its error (a constraint is an IntegrityError,
                # a lost connection is invalidated); the transaction is over either way
                self._lane.adapted._transaction = None
                await greenlet_spawn(raise_translated, self._lane.sync, self._lane.adapted, exc, "COMMIT")
            return
        real = self.real  # a kept row whose changes need the ORM's flush
        # the session's transaction on the lane's connection, so its COMMIT is the unit's: its ``after_commit``
        # listeners (a media download) run once the unit is committed, never before
        await real.connection()
        await greenlet_spawn(commit_and_close, real.sync_session)

    def _dispatch(self, name: str) -> None:
        """The engine's ``commit`` / ``rollback`` listeners, as SQLAlchemy's connection calls them before it
        commits or rolls back (they watch the database answer, count transactions)."""
        sync = self._lane.sync
        if sync._has_events or sync.engine._has_events:
            getattr(sync.dispatch, name)(sync)

    async def rollback(self) -> None:
        self.ended = True
        try:
            if self._real is not None:
                await self._real.close()  # rolls back through the adapter (the lane's connection stays held)
            if self._lane.adapted._transaction is self._begun:  # not begun through the session
                self._dispatch("rollback")
                await self._begun.rollback()
        except Exception as exc:  # noqa: BLE001 - the lane is then unusable and goes back to the pool
            log.warning("rollback on a held connection failed (%s)", type(exc).__name__)
        finally:
            self._lane.adapted._transaction = None
