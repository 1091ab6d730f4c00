"""Busy or away: whether the database behind a delivery's work is merely busy (waited for) or gone (the delivery
goes to the journal), told within the reply budget.

A database that accepts the connection and never answers (a stalled proxy, a frozen server) is away too: past the
budget the delivery goes to the journal, so the resident hears "kept" within WeChat's 5 s. The work runs as a task of
its own: a cancelled transaction's rollback would wait on the same silent connection, so it is cancelled and left to
end in the background rather than awaited. A database that is merely busy (statements of other deliveries keep
completing, or a fresh connection answers a ping) is waited for, up to ``DB_WAIT_LIMIT``: the webhook's budget then
answers ``success`` and the reply follows late, as for a slow dialogue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.conversation.spool import describe

log = logging.getLogger(__name__)

#: a delivery's database work must end this many seconds before the reply budget, else the database counts as away
#: unless it answers a ping within PING_TIMEOUT (busy, not away: waited for, up to DB_WAIT_LIMIT seconds in all)
DB_BUDGET_MARGIN = 0.5
PING_TIMEOUT = 1.0
DB_WAIT_LIMIT = 30.0


class DatabaseAway(Exception):
    """The database did not answer (refused, unreachable, read-only, pool exhausted): not a fault of the message."""


class DatabaseBusy(DatabaseAway):
    """The database answers others but this delivery waited ``DB_WAIT_LIMIT`` for it: a flood, not an outage."""


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database is away" rather than "this statement is wrong"."""
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, OperationalError | PoolTimeout | OSError | ConnectionError | asyncio.TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        name = type(exc.orig).__name__ if exc.orig is not None else ""
        return any(w in name for w in ("Connection", "CannotConnect", "InterfaceError", "Shutdown"))
    return False


class DatabaseWatch:
    """When the database last completed a statement for anyone in this process, and a ping of its own."""

    def __init__(self, engines: list[Any], chat_engine: Any) -> None:
        self._engines = engines
        self._chat_engine = chat_engine
        self.answered_at = time.monotonic()
        self._pinger: AsyncEngine | None = None
        # work past its budget, ending in the background
        self._abandoned: set[asyncio.Future[Any]] = set()
        for engine in engines:
            event.listen(engine.sync_engine, "after_cursor_execute", self._answered)
            event.listen(engine.sync_engine, "commit", self._answered)

    def _answered(self, *_: Any) -> None:
        self.answered_at = time.monotonic()  # one float store: safe from the driver's threads

    async def stop(self) -> None:
        for engine in self._engines:
            if event.contains(engine.sync_engine, "commit", self._answered):
                event.remove(engine.sync_engine, "after_cursor_execute", self._answered)
                event.remove(engine.sync_engine, "commit", self._answered)
        for work in list(self._abandoned):
            work.cancel()
        if self._pinger is not None:
            await self._pinger.dispose()

    async def run(self, coro: Coroutine[Any, Any, Any], *, budget: float) -> Any:
        """``coro``'s result; ``DatabaseAway`` when the database did not answer within ``budget`` (and no ping
        said it is busy), ``DatabaseBusy`` when it answered others for ``DB_WAIT_LIMIT`` but not this work."""
        work = asyncio.ensure_future(coro)
        started = time.monotonic()
        # where a ping can tell busy from away, it must end within the budget
        wait = budget if not self.pings() else max(0.5, budget - PING_TIMEOUT)
        try:
            while True:
                await asyncio.wait({work}, timeout=wait)
                if work.done() or time.monotonic() - started >= DB_WAIT_LIMIT:
                    break
                if time.monotonic() - self.answered_at < wait:
                    continue  # other deliveries' statements complete: busy, not away
                if not await self.answers_a_ping():
                    break
        except asyncio.CancelledError:
            work.cancel()
            raise
        if not work.done():
            work.cancel()
            self._abandoned.add(work)
            work.add_done_callback(_forget(self._abandoned))
            waited = time.monotonic() - started
            if waited >= DB_WAIT_LIMIT and time.monotonic() - self.answered_at < wait:
                raise DatabaseBusy(f"waited {waited:.0f} s while the database answered others")
            raise DatabaseAway(f"no answer from the database within {budget:.1f} s")
        try:
            return work.result()
        except DatabaseAway:
            raise
        except Exception as exc:
            if unavailable(exc):
                raise DatabaseAway(describe(exc)) from exc
            raise

    def pings(self) -> bool:
        engine = self._chat_engine
        return engine is not None and engine.dialect.name != "sqlite"

    async def answers_a_ping(self) -> bool:
        """Whether a fresh connection answers ``SELECT 1`` within ``PING_TIMEOUT``: a server that does is busy (its
        other sessions hold this one's rows, or every connection of this process waits in line), not away. Several
        workers on one loaded PostgreSQL each saw no statement of their own complete for a while and sent deliveries
        to the journal (benchmarks/scaleout.py). SQLite: no ping (its only wait is this process's own write lock,
        and statements completing there already count)."""
        engine = self._chat_engine
        if engine is None or not self.pings():
            return False
        if self._pinger is None:  # a connection of its own each time: the pool may be exhausted by busy work
            self._pinger = create_async_engine(engine.url, poolclass=NullPool)
        try:
            async with asyncio.timeout(PING_TIMEOUT), self._pinger.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as exc:  # refused, unreachable, silent: away
            log.info("database ping failed (%s): the delivery counts as not answered", describe(exc))
            return False
        self.answered_at = time.monotonic()
        return True


def _forget(pending: set[asyncio.Future[Any]]) -> Any:
    def done(work: asyncio.Future[Any]) -> None:
        pending.discard(work)
        if not work.cancelled() and work.exception() is not None:
            log.info("abandoned database work ended with %s", describe(work.exception()))  # type: ignore[arg-type]

    return done
