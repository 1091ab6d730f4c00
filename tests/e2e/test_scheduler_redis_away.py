"""`python -m bot scheduler` with its Redis gone: the WeChat token falls back to one of the process's own, every
queued message goes out once without spending a retry, and the token is shared through Redis again once Redis
returns. The scheduler runs as a real process; Redis is reached through a TCP switch; WeChat is the simulator."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlmodel import select

from bot import db
from bot.delivery.outbox import enqueue
from bot.models import Outbox, Resident
from bot.settings import ROOT
from tests.helpers import TEST_REDIS_URL, TcpSwitch, api_simulator, terminate

pytestmark = pytest.mark.redis

APPID, SECRET = "wxredisaway0simulator", "redis-away-secret"
TOKEN_KEY = f"wechat:access_token:{APPID}"


async def _queue(sessions: Any, start: int, count: int, now: datetime) -> None:
    async with db.transaction(sessions) as s:
        for i in range(start, start + count):
            if i % 2:
                s.add(Resident(openid=f"o-ra{i}", last_interaction_at=now - timedelta(hours=1)))
            await enqueue(s, openid=f"o-ra{i}", kind="progress", text=f"进度{i}", now=now)


async def _until(pred: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return bool(pred())


async def _settled(sessions: Any, timeout: float = 10.0) -> list[Outbox]:
    """The outbox once no row is still being sent (or the rows as they are when the time is up)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        async with sessions() as s:
            rows = list((await s.exec(select(Outbox))).all())
        if all(r.status != "sending" for r in rows) or loop.time() > end:
            return rows
        await asyncio.sleep(0.1)


@pytest.mark.slow  # starts whole processes of the bot (seconds each): run by make test, left out of make test-fast
async def test_scheduler_without_redis_sends_everything_once_and_shares_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'redis-away.sqlite3'}"
    await db.migrate(url)
    engine = db.make_engine(url)
    sessions = db.make_sessions(engine)
    now = datetime.now(UTC)
    await _queue(sessions, 0, 40, now)

    direct = aioredis.from_url(TEST_REDIS_URL)
    await direct.delete(TOKEN_KEY)
    host, port = TEST_REDIS_URL.split("://", 1)[1].split("/", 1)[0].split(":")
    switch = await TcpSwitch(host, int(port)).start()
    switch.down()  # Redis refuses from the start
    database = TEST_REDIS_URL.rsplit("/", 1)[1] if TEST_REDIS_URL.count("/") > 2 else "0"

    runner, state, sim_port = await api_simulator(APPID, SECRET)
    log_path = tmp_path / "sched.log"
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WECHAT_API_BASE": f"http://127.0.0.1:{sim_port}",
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "ENVIRONMENT": "test",
        "DATA_DIR": str(tmp_path),
        "REDIS_URL": f"redis://127.0.0.1:{switch.port}/{database}",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "scheduler",
        "--dispatch-seconds",
        "0.2",
        "--sweep-seconds",
        "5",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log_fd,
    )
    os.close(log_fd)
    try:
        assert await _until(lambda: len(state.sent) >= 40, 40), log_path.read_text()
        rows = await _settled(
            sessions
        )  # the dispatcher commits outcomes in groups, just after WeChat took them
        assert {r.status for r in rows} == {"sent"} and {r.attempts for r in rows} == {1}
        assert await direct.get(TOKEN_KEY) is None  # nothing shared: Redis was away
        assert "fetches its own WeChat token" in log_path.read_text()

        switch.up()
        state.add_fault("*", 40001, times=1)  # WeChat refuses the token once: the refresh goes through Redis
        await _queue(sessions, 40, 6, datetime.now(UTC))
        assert await _until(lambda: len(state.sent) >= 46, 40), log_path.read_text()
        assert await direct.get(TOKEN_KEY) is not None  # shared again
        assert "shared again" in log_path.read_text()
        await asyncio.sleep(1.0)  # a duplicate would arrive now
        texts = [m.content for m in state.sent if m.channel == "custom"] + [
            (m.data or {}).get("thing2") for m in state.sent if m.channel != "custom"
        ]
        assert len(state.sent) == 46 and len(set(texts)) == 46  # each message once
    finally:
        await terminate(proc)
        await runner.cleanup()
        await switch.close()
        await direct.delete(TOKEN_KEY)
        await direct.aclose()
        await engine.dispose()
