"""kill -9 of `python -m bot scheduler` with due reminders and pending outbox rows, then a restart: the simulator
receives every message exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import db
from bot.delivery.outbox import enqueue
from bot.models import Case, Resident, Staff
from bot.settings import ROOT
from tests.helpers import api_simulator, terminate

APPID, SECRET = "wxrestart00simulator", "restart-secret"
N_CASES, N_MESSAGES = 30, 60


def _key(m: Any) -> str:
    if m.channel == "custom":
        return f"{m.openid}|{m.content}"
    return f"{m.openid}|{(m.data or {}).get('case_no') or (m.data or {}).get('thing2')}"


async def _start(url: str, sim_port: int, tmp: Path) -> asyncio.subprocess.Process:
    log_fd = os.open(tmp / "sched.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WECHAT_API_BASE": f"http://127.0.0.1:{sim_port}",
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "ENVIRONMENT": "test",
        "DATA_DIR": str(tmp),
        "REDIS_URL": "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "scheduler",
        "--dispatch-seconds",
        "0.2",
        "--sweep-seconds",
        "1",
        "--lease-seconds",
        "1",
        "--concurrency",
        "2",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log_fd,
    )
    os.close(log_fd)  # the child has its own copy
    return proc


async def _until(pred: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


@pytest.mark.slow  # starts whole processes of the bot (seconds each): run by make test, left out of make test-fast
async def test_kill_9_mid_dispatch_then_restart_sends_each_message_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.sqlite3'}"
    await db.migrate(url)
    engine = db.make_engine(url)
    sessions = db.make_sessions(engine)
    now = datetime.now(UTC)
    async with db.transaction(sessions) as s:
        s.add(Staff(username="w", role="town_staff", town="厚街镇", openid="o-staff"))
        for i in range(N_CASES):  # reminders due now (deadline in one hour, lead 8 h)
            s.add(
                Case(
                    case_no=f"MS20250610-{i:04d}",
                    kind="micro_wish",
                    status="verified",
                    town="厚街镇",
                    stage_deadline=now + timedelta(hours=1),
                )
            )
        for i in range(N_MESSAGES):
            if i % 2:
                s.add(Resident(openid=f"o-r{i}", last_interaction_at=now - timedelta(hours=1)))
            await enqueue(s, openid=f"o-r{i}", kind="progress", text=f"进度{i}", now=now)
    await engine.dispose()

    runner, state, port = await api_simulator(APPID, SECRET, cancel_handlers=True)
    state.add_fault("*", 0, times=None, delay_ms=40)  # slow enough to kill it mid-way
    proc = await _start(url, port, tmp_path)
    try:
        assert await _until(lambda: len(state.sent) >= 20, 30), "the scheduler sent nothing"
        # freeze WeChat: what is in flight now hangs; what was answered gets committed; then kill -9
        state.clear_faults()
        state.add_fault("*", 0, times=None, delay_ms=60_000)
        await asyncio.sleep(0.5)
        before = len(state.sent)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert before < N_CASES + N_MESSAGES, "too late: everything was sent before the kill"
        state.clear_faults()
        proc = await _start(url, port, tmp_path)
        assert await _until(lambda: len(state.sent) >= N_CASES + N_MESSAGES, 30), (
            tmp_path / "sched.log"
        ).read_text()
        await asyncio.sleep(1.5)  # anything extra (a duplicate) would arrive now
    finally:
        await terminate(proc, grace=45)  # generous: CI machines can be loaded
        await runner.cleanup()
    counts = Counter(_key(m) for m in state.sent)
    expected = {f"o-staff|MS20250610-{i:04d}" for i in range(N_CASES)}
    expected |= {f"o-r{i}|进度{i}" for i in range(N_MESSAGES)}
    assert set(counts) == expected
    assert [k for k, n in counts.items() if n != 1] == []
    # the restarted one stopped cleanly on SIGTERM
    assert proc.returncode == 0, (tmp_path / "sched.log").read_text()[-4000:]

    engine = db.make_engine(url)
    async with db.make_sessions(engine)() as s:
        from sqlmodel import select

        from bot.models import Outbox

        statuses = Counter(r.status for r in (await s.exec(select(Outbox))).all())
    await engine.dispose()
    assert statuses == {"sent": N_CASES + N_MESSAGES}
    _ = aiohttp  # the simulator speaks real HTTP to the subprocess


@pytest.mark.slow  # as above
async def test_sigterm_lets_the_sends_under_way_finish_then_exits(tmp_path: Path) -> None:
    """SIGTERM while WeChat is slow to answer: the sends under way complete and are recorded (not cancelled
    half-way and sent again by the next process), nothing new starts, and the process ends by itself with status 0."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'stop.sqlite3'}"
    await db.migrate(url)
    engine = db.make_engine(url)
    sessions = db.make_sessions(engine)
    now = datetime.now(UTC)
    n = 12
    async with db.transaction(sessions) as s:
        for i in range(n):
            s.add(Resident(openid=f"o-s{i}", last_interaction_at=now - timedelta(hours=1)))
            await enqueue(s, openid=f"o-s{i}", kind="progress", text=f"进度{i}", now=now)
    await engine.dispose()
    runner, state, port = await api_simulator(APPID, SECRET, cancel_handlers=True)
    state.add_fault("custom", 0, times=None, delay_ms=2500)  # each send takes 2.5 s to be answered
    log = tmp_path / "sched.log"
    proc = await _start(url, port, tmp_path)
    try:
        assert await _until(lambda: log.exists() and "scheduler running" in log.read_text(), 60), (
            log.read_text()
        )
        await asyncio.sleep(1.0)  # the first dispatch is under way: two sends waiting for WeChat
        assert state.sent == [], "too late: a send was answered before the stop"
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    finally:
        await terminate(proc)
    assert proc.returncode == 0, log.read_text()[-4000:]
    finished = [m.openid for m in state.sent]
    assert len(finished) == 2  # --concurrency 2: both sends under way were answered, nothing new was started
    assert "CancelledError" not in log.read_text()

    state.clear_faults()
    proc = await _start(url, port, tmp_path)  # the next process sends the rest, and nothing twice
    try:
        assert await _until(lambda: len(state.sent) >= n, 30), log.read_text()[-4000:]
        await asyncio.sleep(1.5)  # a duplicate would arrive now
    finally:
        await terminate(proc)
        await runner.cleanup()
    counts = Counter(m.openid for m in state.sent)
    assert set(counts) == {f"o-s{i}" for i in range(n)}
    assert [k for k, c in counts.items() if c != 1] == []
    assert proc.returncode == 0, log.read_text()[-4000:]
