"""The webhook's SQLite engine runs its statements on the event loop's thread (bot/db.py ``InlineEngine``): nothing
in it may wait inside the driver. Through the real app on a real port, with a real SQLite file:

- another process holds SQLite's write lock: the loop keeps serving while the delivery waits for it, and the
  delivery is recorded once the lock is released;
- the lock is never released: past the wait limit the database counts as away and the delivery goes to the
  journal (nothing lost);
- the WAL is checkpointed on a worker thread, so it does not grow with every message."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import bot.db
import webhooks
from bot import keys
from bot.app import create_app
from bot.db import InlineEngine
from tests.helpers import make_settings, say_text, serve


def _path(url: str) -> str:
    return url.split("///", 1)[-1]


def _app(sqlite_url: str, tmp_path: Path) -> web.Application:
    return create_app(
        make_settings(sqlite_url, tmp_path, wechat_encoding_aes_key=""),
        run_migrations=False,
        with_scheduler=False,
    )


@asynccontextmanager
async def _beside_another_writer(
    sqlite_url: str, tmp_path: Path
) -> AsyncIterator[tuple[web.Application, str, aiohttp.ClientSession, sqlite3.Connection]]:
    """The app on a real port, a client, and another process's connection to the same file (which may take the
    write lock with ``BEGIN IMMEDIATE``)."""
    app = _app(sqlite_url, tmp_path)
    runner, base = await serve(app)
    other = sqlite3.connect(_path(sqlite_url), timeout=0, isolation_level=None)
    try:
        async with aiohttp.ClientSession() as http:
            yield app, base, http, other
    finally:
        other.close()
        await runner.cleanup()


def _recorded(sqlite_url: str, key: str) -> int:
    """Rows recorded under ``key``, read by a plain WAL reader (it never waits for the write lock)."""
    with sqlite3.connect(_path(sqlite_url)) as conn:
        return int(
            conn.execute("SELECT count(*) FROM inboundmessage WHERE delivery_key = ?", (key,)).fetchone()[0]
        )


async def test_another_process_holding_the_write_lock_never_holds_the_loop(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with _beside_another_writer(sqlite_url, tmp_path) as (app, base, http, other):
        assert isinstance(app[keys.CHAT_ENGINE], InlineEngine)
        await say_text(http, base, "oInline-1", "你好")  # the resident exists; the engine is connected
        # another process's writer (a command-line import, say) holds the write lock for a second
        other.execute("BEGIN IMMEDIATE")
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        beating = asyncio.create_task(ticker())
        asyncio.get_running_loop().call_later(1.0, other.rollback)
        started = time.monotonic()
        said = await say_text(http, base, "oInline-1", "查询进度")
        waited = time.monotonic() - started
        beating.cancel()
        assert said.reply  # answered, after the lock was released
        assert waited >= 0.9
        # the loop went on meanwhile: no gap between ticks anywhere near the second the lock was held
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        assert len(ticks) > 40 and max(gaps) < 0.3, max(gaps)
        assert _recorded(sqlite_url, said.key) == 1


async def test_a_retry_is_answered_from_its_record_while_another_process_writes(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A read outside a unit of work (the retry's lookup of its record) begins a WAL read, which never waits for
    the write lock: the retry is answered at once, not journalled."""
    async with _beside_another_writer(sqlite_url, tmp_path) as (app, base, http, other):
        first = await say_text(http, base, "oInline-3", "查询进度")
        other.execute("BEGIN IMMEDIATE")
        again = await say_text(http, base, "oInline-3", "查询进度", msgid=int(first.key.split(":")[1]))
        assert again.reply == first.reply and again.seconds < 1.0
        assert app[webhooks.WEBHOOK_HANDLER].spooled == 0


async def test_a_lock_never_released_sends_the_delivery_to_the_journal(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.db, "LOCK_WAIT_LIMIT", 0.5)
    async with _beside_another_writer(sqlite_url, tmp_path) as (app, base, http, other):
        await say_text(http, base, "oInline-2", "你好")
        other.execute("BEGIN IMMEDIATE")
        said = await say_text(http, base, "oInline-2", "查询进度")
        assert app[webhooks.WEBHOOK_HANDLER].spooled == 1  # kept on disk, told kindly, not lost
        assert said.reply and "记下" in said.reply, said.reply
        assert _recorded(sqlite_url, said.key) == 0
        other.rollback()  # the lock comes back: the journal is replayed, the delivery recorded once
        deadline = time.monotonic() + 15
        while _recorded(sqlite_url, said.key) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert _recorded(sqlite_url, said.key) == 1


async def test_the_wal_is_checkpointed_off_the_loop(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.db, "CHECKPOINT_EVERY", 10)
    app = _app(sqlite_url, tmp_path)
    runner, base = await serve(app)
    try:
        engine = app[keys.CHAT_ENGINE]
        assert isinstance(engine, InlineEngine)
        async with aiohttp.ClientSession() as http:
            for i in range(60):
                await say_text(http, base, f"oInline-wal-{i % 7}", "你好")
                await engine.settled()  # a checkpoint this message started has finished (on its thread)
        assert engine.commits >= 60 and engine.checkpoints >= 5, (engine.commits, engine.checkpoints)
        # each checkpoint copied the WAL into the database file, on its thread; the loop's commits never did
        # (wal_autocheckpoint=0 on the webhook's connections): with CHECKPOINT_EVERY out of reach none ran at all
        assert engine.last_checkpoint is not None
        busy, wal_frames, copied = engine.last_checkpoint
        # (all of it when no other connection was reading at that moment; a reader's snapshot holds some back)
        assert busy == 0 and wal_frames > 0 and 0 < copied <= wal_frames, engine.last_checkpoint
        with engine.sync_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    finally:
        await runner.cleanup()


async def test_a_wal_grown_under_ever_present_readers_is_started_again(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load some connection is always reading: a PASSIVE checkpoint copies the WAL but the WAL never
    starts again from its beginning, so it grows by every commit's pages (seen: 441 MB beside a 10 MB database).
    Past WAL_RESTART_FRAMES the checkpoint restarts it. Here two reader threads overlap so that a read transaction
    is open at every moment, as under load."""
    import threading

    monkeypatch.setattr(bot.db, "CHECKPOINT_EVERY", 5)
    monkeypatch.setattr(bot.db, "WAL_RESTART_FRAMES", 40)
    app = _app(sqlite_url, tmp_path)
    runner, base = await serve(app)
    stop = threading.Event()

    def reader(offset: float) -> None:
        conn = sqlite3.connect(_path(sqlite_url), isolation_level=None, check_same_thread=False)
        time.sleep(offset)
        while not stop.is_set():
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM inboundmessage").fetchone()
            time.sleep(0.004)  # each holds its snapshot 4 ms; the two overlap by 2 ms
            conn.execute("COMMIT")
        conn.close()

    threads = [threading.Thread(target=reader, args=(i * 0.002,), daemon=True) for i in range(2)]
    frames: list[int] = []
    try:
        engine = app[keys.CHAT_ENGINE]
        for t in threads:
            t.start()
        async with aiohttp.ClientSession() as http:
            for i in range(120):
                await say_text(http, base, f"oInline-restart-{i % 9}", "你好")
                before = engine.checkpoints
                await engine.settled()
                if engine.checkpoints > before and engine.last_checkpoint is not None:
                    frames.append(engine.last_checkpoint[1])
    finally:
        stop.set()
        for t in threads:
            t.join()
        await runner.cleanup()
    assert len(frames) >= 15, frames
    # the WAL grows past the threshold, is restarted, and grows again from its beginning: its frame count falls
    assert max(frames) > 40 and any(b < a for a, b in zip(frames, frames[1:], strict=False)), frames
    # bounded: the threshold and two checkpoints' worth of commits (a few frames each), not 120 messages' worth
    assert max(frames) < 40 + 2 * 5 * 12, frames
