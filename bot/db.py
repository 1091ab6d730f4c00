"""The database: async engine, sessions, migrations (Alembic), and the small helpers every repository uses."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, make_url
from sqlalchemy import text as sql_text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import lanes
from bot.driver import (
    INLINE_RAW,
    DriverSession,
    begin_locked,
    commit_and_close,
    driven,
    run_on_sqlite,
    run_plain,
)
from bot.lanes import Lanes

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

Sessions = async_sessionmaker[AsyncSession]


def make_engine(url: str, **kw: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kw)

        _sqlite_pragmas(engine.sync_engine, "PRAGMA busy_timeout=30000")

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # BEGIN IMMEDIATE: writers queue on the lock instead of failing on upgrade (SQLite's deadlock)
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        engine.sync_engine.dialect._json_serializer = _json_dumps
        return engine
    # a worker's server connections (the app passes DB_POOL_SIZE / DB_MAX_OVERFLOW; see bot/settings.py)
    kw.setdefault("pool_size", 4)
    kw.setdefault("max_overflow", 4)
    engine = create_async_engine(url, json_serializer=_json_dumps, **kw)
    if not kw.get("pool_pre_ping"):
        _ping_after_idle(engine.sync_engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle: a connection that comes back to the pool and
    is taken again within ``bot.lanes.PING_AFTER_IDLE`` seconds is handed out as it is; one idle for longer is pinged
    first, and replaced when the ping fails (a restarted or failed-over server, a proxy that dropped it). SQLAlchemy's
    ``pool_pre_ping`` pings on every checkout: one round trip more per webhook message (7 instead of 6 for a greeting
    on PostgreSQL), and a busy worker's connections never sit idle. A server lost while a connection is in use
    fails that transaction as before (the delivery goes to the journal) and SQLAlchemy then invalidates the pool."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < lanes.PING_AFTER_IDLE:
            return  # new, or back moments ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure of the ping means "not this connection"
            raise DisconnectionError(f"idle connection failed its ping: {type(exc).__name__}") from exc
        if not alive:
            raise DisconnectionError("idle connection failed its ping")


def _sqlite_pragmas(engine: Engine, *own: str) -> None:
    """Every new SQLite connection of ``engine``: WAL, foreign keys, ``synchronous=NORMAL``, BEGIN emitted by us,
    and the engine's ``own`` pragmas (how long it may wait for the write lock, when it checkpoints)."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's recipe: we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}",
            *own,
        ):
            cur.execute(pragma)
        cur.close()


def _json_dumps(value: Any) -> str:
    # lazy: loaded only on the path that needs it (migrations, the JSON serializer, the ping)
    import json

    return json.dumps(value, ensure_ascii=False)


class _SerializedSessions(async_sessionmaker[AsyncSession]):
    """SQLite allows one writer at a time. Writers of this process queue on an asyncio.Lock, in order, instead of
    sleeping in SQLite's busy handler (which re-checks only every few ms up to 100 ms): the webhook benchmark's
    p99 under 16 senders fell from about 2 s to well under 1 s with the same throughput."""

    write_lock: asyncio.Lock | None = None


def make_sessions(engine: AsyncEngine | InlineEngine, *, like: Sessions | None = None) -> Sessions:
    """``like``: sessions of another engine on the same SQLite file; both then queue their writers on one lock."""
    bind: Any = engine  # an InlineEngine stands where an AsyncEngine is expected (its ``sync_engine``)
    if engine.dialect.name == "sqlite":
        cls = InlineSession if isinstance(engine, InlineEngine) else AsyncSession
        made = _SerializedSessions(bind, class_=cls, expire_on_commit=False)
        if isinstance(like, _SerializedSessions):
            if like.write_lock is None:
                like.write_lock = asyncio.Lock()
            made.write_lock = like.write_lock
        return made
    made_pg = _PgSessions(bind, class_=DriverSession, expire_on_commit=False)
    pool: Any = engine.sync_engine.pool
    if hasattr(pool, "size"):  # a queue pool: the webhook's units of work hold some of it (bot/lanes.py)
        made_pg.lanes = Lanes(bind, lanes.limit_for(pool.size(), pool._max_overflow))
    return made_pg


class _PgSessions(async_sessionmaker[AsyncSession]):
    """PostgreSQL's sessions, with the connections the webhook's units of work hold (``Lanes``)."""

    lanes: Lanes | None = None


async def release(sessions: Sessions) -> None:
    """Before the engine is disposed: the connections the webhook's units of work held, back to the pool."""
    held = getattr(sessions, "lanes", None)
    if held is not None:
        await held.close()


@asynccontextmanager
async def transaction(sessions: Sessions, *, lock: str | None = None) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error. Never nest two on the same database.

    ``lock``: on PostgreSQL the unit holds ``pg_advisory_xact_lock(hashtext(lock))`` from its start to its commit,
    taken with BEGIN in one round trip, and runs past the ORM session on a held connection, or on one borrowed from
    the pool for the unit when all are in use (bot/lanes.py); SQLite's units of work queue on one writer anyway."""
    if isinstance(sessions, _SerializedSessions):
        if sessions.write_lock is None:
            sessions.write_lock = asyncio.Lock()
        async with sessions.write_lock:
            if isinstance(sessions.kw.get("bind"), InlineEngine):
                async with _inline_transaction(sessions) as session:
                    yield session
                return
            async with sessions() as session, session.begin():
                yield session
        return
    held = getattr(sessions, "lanes", None)
    lane = None
    if lock is not None and held is not None:
        lane = await held.take()
        if lane is None:  # every held connection in use: one of the pool's for this unit alone
            lane = await held.borrow()
    if lane is not None:
        assert held is not None and lock is not None
        async with held.unit(lane, lock) as lean:
            yield lean  # a LeanSession stands for the session (bot/lanes.py)
        return
    session = sessions()
    try:
        if lock is not None and not await begin_locked(session, lock):
            locked = sql_text("SELECT pg_advisory_xact_lock(hashtext(:k))").bindparams(k=lock)
            await session.exec(locked)  # type: ignore[call-overload]
        yield session  # its first statement begins the transaction (autobegin)
    except BaseException:
        await session.close()  # rolls the transaction back and returns the connection
        raise
    # one greenlet for both: SQLAlchemy's asyncio layer spawns one per call (begin, commit, close were three)
    await greenlet_spawn(commit_and_close, session.sync_session)


# ------------------------------------------------------------------ the webhook's SQLite, on the loop's thread
#: SQLite's write lock held by another process: BEGIN IMMEDIATE is tried again after a pause on the event loop (never
#: a wait inside the driver, which would hold the loop), first every LOCK_POLL_FIRST s, growing to LOCK_POLL_MAX s,
#: until LOCK_WAIT_LIMIT s have passed (then the database counts as away: the delivery goes to the journal)
LOCK_POLL_FIRST = 0.001
LOCK_POLL_MAX = 0.05
LOCK_WAIT_LIMIT = 30.0
#: the inline connections never checkpoint the WAL inside a commit; a checkpoint runs on a worker thread after
#: this many of their commits (SQLite's own default is about every 1,000 pages)
CHECKPOINT_EVERY = 200
#: a WAL that has grown past this many frames (about 16 MB of 4 KB pages) is restarted by the next checkpoint: PASSIVE
#: copies what it can but the WAL only starts again from its beginning when a writer finds no reader in it, which
#: under steady load never happens (seen: 441 MB of WAL beside a 10 MB database after 90 s at 135 msg/s); RESTART
#: waits up to CHECKPOINT_WAIT s for the readers, holding off writers meanwhile (they retry from the loop)
WAL_RESTART_FRAMES = 4000
CHECKPOINT_WAIT = 0.2
#: the WAL file is cut back to this size when it starts again (SQLite keeps it at its largest otherwise)
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class InlineEngine:
    """The webhook's engine on SQLite: the standard library's synchronous driver, called on the event loop's
    thread, where an ``AsyncEngine`` is expected (``.sync_engine``, ``.dialect``, ``.url``, ``dispose()``).

    Each statement of a message is an indexed lookup or a small write that SQLite runs in microseconds; going through
    an asyncio driver cost more than running them — aiosqlite's thread hop and wake-up per call, and SQLAlchemy's
    greenlet switch per await (benchmarks/hotpath.py: a greeting 2.2 → 1.1 ms of CPU). Nothing here may wait inside
    the driver, because that would hold the loop: ``busy_timeout`` is 0 and ``BEGIN IMMEDIATE`` is retried from the
    loop while another process holds the write lock (``_inline_transaction``; within this process writers queue on
    the sessions' asyncio lock first); inside a transaction begun that way nothing waits (WAL readers never block, the
    write lock is held). With ``synchronous=NORMAL`` a commit appends to the WAL without ``fsync``; the one slow part
    of a commit, the checkpoint that copies the WAL into the database file and syncs it, is taken off the commit
    (``wal_autocheckpoint=0`` on these connections) and run on a worker thread every ``CHECKPOINT_EVERY`` commits.
    Reports and staff pages keep the ordinary engine (their long scans would hold the loop)."""

    def __init__(self, url: str) -> None:
        self.url: URL = make_url(url)  # the async URL, for whoever opens a connection of its own (the ping)
        self.path = str(self.url.database)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.sync_engine: Engine = create_engine(
            f"sqlite:///{self.path}",
            connect_args={"timeout": 0, "check_same_thread": False},
            json_serializer=_json_dumps,
        )
        self.dialect = self.sync_engine.dialect
        self.commits = 0
        self.checkpoints = 0  # completed
        self.last_checkpoint: tuple[int, int, int] | None = None  # SQLite's (busy, WAL frames, frames copied)
        self._checkpoint_at = 0
        self._checkpoint: asyncio.Task[None] | None = None

        _sqlite_pragmas(self.sync_engine, "PRAGMA busy_timeout=0", "PRAGMA wal_autocheckpoint=0")

        @event.listens_for(self.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # a unit of work (``_inline_transaction``) takes the write lock up front; a session opened for a read
            # only begins a WAL read, which never waits for a writer
            # on the sqlite3 connection itself: through SQLAlchemy's execution it cost more than the BEGIN
            run_plain(conn, "BEGIN IMMEDIATE" if _WRITING.get() else "BEGIN")

    def committed(self) -> None:
        """After each commit: a checkpoint on a worker thread once ``CHECKPOINT_EVERY`` commits have passed since
        the last one began (a checkpoint still running is let finish; the next commit starts the following one)."""
        self.commits += 1
        if self.commits - self._checkpoint_at >= CHECKPOINT_EVERY and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._checkpoint_at = self.commits
            self._checkpoint = asyncio.get_running_loop().create_task(asyncio.to_thread(self.checkpoint))

    def checkpoint(self) -> None:
        """Copy the WAL into the database file. PASSIVE (never waits for readers or writers; what it cannot copy
        now, the next one does) unless the WAL had grown past ``WAL_RESTART_FRAMES``: then RESTART, so that the next
        writer starts the WAL from its beginning. On a worker thread, with a connection of its own."""
        grown = self.last_checkpoint is not None and self.last_checkpoint[1] > WAL_RESTART_FRAMES
        mode = "RESTART" if grown else "PASSIVE"
        try:
            # closing(): sqlite3's own context manager commits but does not close
            with closing(sqlite3.connect(self.path, timeout=CHECKPOINT_WAIT if grown else 5)) as conn:
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
                busy, wal_frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            self.last_checkpoint = (busy, wal_frames, copied)
            self.checkpoints += 1
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed: %s", exc)

    async def settled(self) -> None:
        """Wait for the checkpoint under way, if any."""
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)

    async def dispose(self) -> None:
        await self.settled()
        self.sync_engine.dispose()


class InlineSession(AsyncSession):
    """The session of an ``InlineEngine``: the statements the webhook's dialogue awaits run directly on the
    synchronous session (no greenlet per call: nothing in them awaits), and inside a unit of work
    (``_inline_transaction``) those marked ``on_driver`` on the transaction's sqlite3 cursor (bot/driver.py). Every
    other ``AsyncSession`` method still works through its ordinary path (a greenlet that never switches)."""

    async def exec(
        self, statement: Any, *, params: Any = None, execution_options: Any = None, **kw: Any
    ) -> Any:
        raw = self.info.get(INLINE_RAW)
        if raw is not None and not execution_options and raw[0] is self.sync_session._transaction:
            prepared = driven(self, statement, params, kw)
            if prepared is not None:
                return run_on_sqlite(self.sync_session, raw[1], raw[2], prepared, params or {})
        return self.sync_session.exec(
            statement, params=params, execution_options=execution_options or {}, **kw
        )

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return self.sync_session.execute(statement, params, **kw)

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return self.sync_session.scalar(statement, params, **kw)

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        return self.sync_session.get(entity, ident, **kw)

    async def flush(self, objects: Any = None) -> None:
        self.sync_session.flush(objects)

    async def refresh(self, instance: Any, *args: Any, **kw: Any) -> None:
        self.sync_session.refresh(instance, *args, **kw)


#: set while ``_inline_transaction`` begins its transaction: BEGIN IMMEDIATE instead of a read's BEGIN
_WRITING: ContextVar[bool] = ContextVar("inline_sqlite_writing", default=False)


def _locked(exc: OperationalError) -> bool:
    return isinstance(exc.orig, sqlite3.OperationalError) and "locked" in str(exc.orig)


@asynccontextmanager
async def _inline_transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """One unit of work on an ``InlineEngine``: BEGIN IMMEDIATE, tried again from the loop while another process
    holds SQLite's write lock; commit on success, roll back on error."""
    engine = sessions.kw["bind"]
    session = sessions()
    sync = session.sync_session
    pause, deadline = LOCK_POLL_FIRST, time.monotonic() + LOCK_WAIT_LIMIT
    try:
        while True:
            writing = _WRITING.set(True)
            try:
                connection = sync.connection()  # BEGIN IMMEDIATE
                # for the statements marked ``on_driver``: run on this transaction's sqlite3 connection
                session.info[INLINE_RAW] = (
                    sync._transaction,
                    connection,
                    connection.connection.dbapi_connection,
                )
                break
            except OperationalError as exc:
                sync.rollback()
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, LOCK_POLL_MAX)
            finally:
                _WRITING.reset(writing)
        try:
            yield session
        except BaseException:
            sync.rollback()
            raise
        sync.commit()
        engine.committed()
    finally:
        sync.close()


def alembic_config(url: str) -> Any:
    # lazy: loaded only on the path that needs it (migrations, the JSON serializer, the ping)
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def _upgrade(url: str) -> None:
    # lazy: loaded only on the path that needs it (migrations, the JSON serializer, the ping)
    from alembic import command

    command.upgrade(alembic_config(url), "head")


async def migrate(url: str) -> None:
    """Bring the schema to the newest migration (blocking work runs off the event loop)."""
    await asyncio.to_thread(_upgrade, url)


async def ping(engine: AsyncEngine) -> None:
    # lazy: loaded only on the path that needs it (migrations, the JSON serializer, the ping)
    from sqlalchemy import text

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
