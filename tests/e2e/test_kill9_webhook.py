"""kill -9 of the bot (`python -m bot serve`) in the middle of residents' conversations, then a restart: every
message the bot acknowledged (HTTP 200 to WeChat) became exactly one recorded message with the answer the phone saw,
no case was filed twice, and a message cut off by the kill was recorded at most once.

The bot runs as a real process on a real port (SQLite file, the keyword fallback: its Rasa address refuses); the
residents talk through the WeChat simulator (`POST /_sim/send`, which pushes to the webhook as WeChat does)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from benchmarks.webhook import CASE_NO, conversation
from bot import db
from bot.settings import ROOT
from tests.helpers import RASA_TOKEN, RasaStandIn, free_port, serve, terminate, wait_until
from wechat_sim.server import SIM_STATE, create_sim_app

TOKEN, APPID, SECRET = "kill9-token", "wxkill900simulator", "kill9-secret"
RESIDENTS, MESSAGES = 6, 14


@dataclass
class Sent:
    openid: str
    key: str
    text: str
    acknowledged: bool
    reply: str | None


async def _start_bot(
    url: str, port: int, sim_port: int, tmp: Path, **env_over: str
) -> asyncio.subprocess.Process:
    log_fd = os.open(tmp / "bot.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp / "data"),
        "ENVIRONMENT": "test",
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_ENCODING_AES_KEY": "",
        "WECHAT_API_BASE": f"http://127.0.0.1:{sim_port}",
        "RASA_URL": f"http://127.0.0.1:{free_port()}",  # refuses: the keyword interpreter answers
        "REDIS_URL": "",
        "MESSAGES_PER_MINUTE": "0",
        "SCHEDULER_ENABLED": "false",
        **env_over,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log_fd,
    )
    os.close(log_fd)
    return proc


async def _simulator(bot_port: int) -> tuple[web.Application, web.AppRunner, int]:
    """The WeChat simulator on a port of its own, pushing to the bot at ``bot_port`` (plain mode)."""
    sim = create_sim_app(
        token=TOKEN,
        appid=APPID,
        aes_key=None,
        mode="plain",
        webhook_url=f"http://127.0.0.1:{bot_port}/wechat",
        secret=SECRET,
    )
    runner = web.AppRunner(sim, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return sim, runner, port


async def _ready(http: aiohttp.ClientSession, port: int, timeout: float = 120) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        try:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                if resp.status == 200:
                    # a served worker runs on uvloop (EVENT_LOOP's default), also after a kill -9 and restart
                    assert (await resp.json())["event_loop"] == "uvloop"
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the bot did not become ready")


async def _recorded(url: str, openids: list[str]) -> tuple[list[Any], dict[str, str], list[str]]:
    # the benchmark's reader: inbound rows, late replies in the outbox, case numbers of these residents
    from benchmarks.webhook import read_recorded

    rec = await read_recorded(url, openids)
    return rec.inbound, rec.outbox_replies, rec.cases


@pytest.mark.slow  # starts whole processes of the bot (seconds each): run by make test, left out of make test-fast
async def test_kill_9_mid_conversations_then_restart_every_acknowledged_message_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kill9.sqlite3'}"
    await db.migrate(url)
    port = free_port()
    sim, sim_runner, sim_port = await _simulator(port)
    sent: list[Sent] = []
    openids = [f"oKill9-{i}" for i in range(RESIDENTS)]
    proc = await _start_bot(url, port, sim_port, tmp_path)
    killed = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as http:
            await _ready(http, port)

            async def resident(i: int) -> None:
                rng = random.Random(900 + i)
                script = conversation(rng, phone=f"1380013{i:04d}")
                text = next(script)
                answered = tries = 0
                while answered < MESSAGES and tries < 400:
                    tries += 1
                    async with http.post(
                        f"http://127.0.0.1:{sim_port}/_sim/send", json={"openid": openids[i], "content": text}
                    ) as resp:
                        outcome = await resp.json()
                    ok = outcome["status"] == 200 and not outcome["error"]
                    sent.append(Sent(openids[i], f"msg:{outcome['msg_id']}", text, ok, outcome["reply"]))
                    if ok:
                        answered += 1
                        text = script.send(outcome["reply"])
                    else:  # the bot is away: the resident sends the same words again a little later
                        await asyncio.sleep(0.2)

            async def killer() -> None:
                while sum(s.acknowledged for s in sent) < 2 * RESIDENTS:
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGKILL)  # in the middle of the traffic, no warning
                await proc.wait()
                killed.set()

            kill = asyncio.create_task(killer())
            talk = asyncio.gather(*(resident(i) for i in range(RESIDENTS)))
            await killed.wait()
            await asyncio.sleep(0.5)  # messages sent now find nobody
            restarted = await _start_bot(url, port, sim_port, tmp_path)
            await _ready(http, port)
            await talk
            await kill
        assert proc.returncode == -signal.SIGKILL
        proc = restarted
    finally:
        await terminate(proc)
        await sim_runner.cleanup()

    log_text = (tmp_path / "bot.log").read_text()
    acknowledged = [s for s in sent if s.acknowledged]
    cut_off = [s for s in sent if not s.acknowledged]
    assert len(acknowledged) >= 3 * RESIDENTS, log_text  # traffic before and after the kill
    assert cut_off, "the kill came too late: no message found the bot away"
    inbound, outbox, cases = await _recorded(url, openids)
    rows = Counter(key for key, *_ in inbound)
    by_key = {key: (mode, reply) for key, mode, reply, _ in inbound}
    assert not [k for k, n in rows.items() if n > 1]  # no delivery recorded twice
    for s in acknowledged:  # every acknowledged message: recorded, with the answer the phone saw
        assert s.key in by_key, f"acknowledged but lost: {s}"
        mode, reply = by_key[s.key]
        assert (
            (mode == "passive" and reply == s.reply)
            or (mode == "outbox" and s.key in outbox)
            or (mode == "none" and s.reply is None)
        ), (s, mode, reply)
    # a message cut off by the kill: recorded once at most (a kill after the commit, before the answer)
    assert all(rows.get(s.key, 0) <= 1 for s in cut_off)
    announced = {n for _, _, reply, _ in inbound for n in CASE_NO.findall(reply or "")}
    announced |= {n for text in outbox.values() for n in CASE_NO.findall(text)}
    assert len(cases) == len(set(cases))  # no case number twice
    assert set(cases) <= announced, "a case no reply announces (filed twice for one message?)"
    assert cases, "the conversations filed no case: the test would prove little"


@pytest.mark.slow
async def test_kill_9_while_a_dialogue_outlasts_the_budget_loses_nothing_wechat_was_told_success(
    tmp_path: Path,
) -> None:
    """WeChat is answered ``success`` (and will not send again) while the dialogue still waits on a slow Rasa; the
    bot is killed before the dialogue ends. The delivery was written to disk before that answer: after the restart
    it is recorded once and its answer reaches the resident as a customer-service message."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'kill9slow.sqlite3'}"
    await db.migrate(url)
    rasa = RasaStandIn()
    rasa.mode = "stall"
    rasa_runner, rasa_base = await serve(rasa.app())
    port = free_port()
    sim, sim_runner, sim_port = await _simulator(port)
    slow = {
        "RASA_URL": rasa_base,
        "RASA_TOKEN": RASA_TOKEN,
        "RASA_TIMEOUT": "60",
        "WECHAT_REPLY_BUDGET": "1.0",
    }
    proc = await _start_bot(url, port, sim_port, tmp_path, **slow)
    journal = tmp_path / "data" / "journal"
    try:
        async with aiohttp.ClientSession() as http:
            await _ready(http, port)
            async with http.post(
                f"http://127.0.0.1:{sim_port}/_sim/send",
                json={"openid": "oKill9-slow", "content": "我想申请一辆轮椅"},
            ) as resp:
                outcome = await resp.json()
            assert outcome["status"] == 200 and not outcome["error"] and not outcome["reply"]  # success
            key = f"msg:{outcome['msg_id']}"
            assert key.encode() in b"".join(p.read_bytes() for p in journal.glob("guard-*"))
            assert rasa.parsed  # the dialogue is under way, waiting on Rasa
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            assert not (await _recorded(url, ["oKill9-slow"]))[0]  # nothing committed before the kill

            proc = await _start_bot(
                url, port, sim_port, tmp_path
            )  # Rasa refuses now: the keyword rules answer
            await _ready(http, port)

            async def answered() -> bool:
                inbound, outbox, _ = await _recorded(url, ["oKill9-slow"])
                return bool(inbound) and key in outbox

            await wait_until(answered, timeout=60, interval=0.2)
            await wait_until(
                lambda: [m for m in sim[SIM_STATE].sent if m.openid == "oKill9-slow"], timeout=60
            )
            # replayed to its end: the adopted guard file is gone
            await wait_until(lambda: not b"".join(p.read_bytes() for p in journal.glob("*")), timeout=10)
    finally:
        rasa.released.set()
        await terminate(proc)
        await sim_runner.cleanup()
        await rasa_runner.cleanup()
    inbound, outbox, _ = await _recorded(url, ["oKill9-slow"])
    assert [row[0] for row in inbound] == [key]  # recorded exactly once
    assert inbound[0][1] == "outbox"
