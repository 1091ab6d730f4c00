"""The database: async engine, sessions, migrations (Alembic), and the small helpers every repository uses."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

Sessions = async_sessionmaker[AsyncSession]


def make_engine(url: str, *, inline: bool = False, **kw: Any) -> AsyncEngine:
    """``inline`` (SQLite only): statements run on the event loop's thread instead of a hop to the connection's
    thread and back for each call (see ``_InlineSQLite``); for the webhook's short, indexed statements."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if inline and path and path != ":memory:":
            kw["async_creator"] = _inline_creator(path)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy's recipe: we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # BEGIN IMMEDIATE: writers queue on the lock instead of failing on upgrade (SQLite's deadlock)
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        engine.sync_engine.dialect._json_serializer = _json_dumps
        return engine
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 10)
    kw.setdefault("pool_pre_ping", True)
    return create_async_engine(url, json_serializer=_json_dumps, **kw)


class _InlineSQLite(aiosqlite.Connection):
    """An aiosqlite connection whose statements run on the calling (event loop) thread.

    aiosqlite hands every call to the connection's own thread and wakes the loop when it is done: four round trips
    per statement (cursor, execute, fetch, close), each a queue put, a thread wake-up and a loop iteration. For the
    webhook's statements (indexed lookups of one resident, small writes) that costs more CPU than the statements,
    and about a quarter of a text message's CPU (benchmarks/hotpath.py). Here they run directly. What may wait stays
    on the connection's thread, so the loop never blocks on a lock: ``BEGIN`` (it waits while another process holds
    SQLite's write lock; within this process writers queue on ``transaction``'s asyncio lock first) and ``COMMIT``
    (it may checkpoint the WAL into the database file, i.e. write and sync). Inside a transaction begun with BEGIN
    IMMEDIATE nothing else waits: the write lock is held and WAL readers never block. Calls on one connection never
    overlap (SQLAlchemy awaits each), so the connection is used by one thread at a time (``check_same_thread`` off).
    Statements that scan large tables (reports, staff pages) use the ordinary engine, on the thread."""

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if _waits(fn, args):
            return await super()._execute(fn, *args, **kwargs)
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


_WAITING_CALLS = frozenset({"commit", "close"})


def _waits(fn: Any, args: tuple[Any, ...]) -> bool:
    if getattr(fn, "__name__", "") in _WAITING_CALLS and isinstance(
        getattr(fn, "__self__", None), sqlite3.Connection
    ):
        return True  # the connection's commit or close (a cursor's close runs here)
    return bool(args) and isinstance(args[0], str) and args[0].lstrip()[:5].upper() == "BEGIN"


def _inline_creator(path: str) -> Any:
    def connector() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=30, check_same_thread=False)

    async def create() -> aiosqlite.Connection:
        conn = _InlineSQLite(connector, iter_chunk_size=64)
        conn._thread.daemon = True  # as SQLAlchemy's aiosqlite dialect does: never keeps the process alive
        return await conn

    return create


def _json_dumps(value: Any) -> str:
    # lazy: loaded only on the path that needs it (migrations, the JSON serializer, the ping)
    import json

    return json.dumps(value, ensure_ascii=False)


class _SerializedSessions(async_sessionmaker[AsyncSession]):
    """SQLite allows one writer at a time. Writers of this process queue on an asyncio.Lock, in order, instead of
    sleeping in SQLite's busy handler (which re-checks only every few ms up to 100 ms): the webhook benchmark's
    p99 under 16 senders fell from about 2 s to well under 1 s with the same throughput."""

    write_lock: asyncio.Lock | None = None


def make_sessions(engine: AsyncEngine, *, like: Sessions | None = None) -> Sessions:
    """``like``: sessions of another engine on the same SQLite file; both then queue their writers on one lock."""
    if engine.dialect.name == "sqlite":
        made = _SerializedSessions(engine, class_=AsyncSession, expire_on_commit=False)
        if isinstance(like, _SerializedSessions):
            if like.write_lock is None:
                like.write_lock = asyncio.Lock()
            made.write_lock = like.write_lock
        return made
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error. Never nest two on the same database."""
    if isinstance(sessions, _SerializedSessions):
        if sessions.write_lock is None:
            sessions.write_lock = asyncio.Lock()
        async with sessions.write_lock, sessions() as session, session.begin():
            yield session
        return
    async with sessions() as session, session.begin():
        yield session


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
