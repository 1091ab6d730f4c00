"""The webhook under a rising rate: ``python -m benchmarks.webhook --full``.

First the two ceilings of this machine in this run, driven like the webhook benchmark (closed loop, 32 residents):
``bare`` (aiohttp answering ``success``) and ``crypto`` (aiohttp + wechatpy: verify, decrypt, parse, encrypted echo).
Then, for each database (a fresh SQLite file; a fresh PostgreSQL database when 127.0.0.1:5432 answers) and each NLU
path (the keyword interpreter unless ``--only-rasa``; the real Rasa unless ``--no-rasa``), the bot runs in a child process and receives an
open-loop load: messages are sent at a fixed rate, whatever the answers take, each from a resident who is not
waiting for an answer (new residents join as needed), for ``--step-seconds`` per rate (default 180 s); the rate
rises by ``--step-factor`` until p99 passes 1 s (or more than 1 % of messages fail, or ``--max-rate``). After every
step the database is audited for lost and duplicated messages (``count_effects``). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import scaleout
from benchmarks.webhook import (
    AES_KEY,
    APPID,
    CLIENT_TIMEOUT,
    RETRY_SHARE,
    TOKEN,
    Delivery,
    Run,
    _rasa,
    _send_one,
    bot_settings,
    conversation,
    count_effects,
    drained,
    drive,
    free_port,
    metered,
    read_recorded,
    serving,
    warm_up,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
P99_LIMIT_MS = 1000.0


def _pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def paced(*, url: str, label: str, rate: float, seconds: float, seed: int) -> Run:
    """Messages at ``rate`` per second for ``seconds`` (open loop); each from an idle resident."""
    # the simulator's client: imported here like in benchmarks.webhook.drive (the module loads without it)
    from wechat_sim.client import SimulatedUser, msg_id_source

    tag = uuid.uuid4().hex[:8]
    next_id = msg_id_source()
    deliveries: list[Delivery] = []
    idle: list[dict[str, Any]] = []
    everyone: list[dict[str, Any]] = []
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        def resident() -> dict[str, Any]:
            i = len(everyone)
            rng = random.Random(seed * 100_003 + i)
            script = conversation(rng, phone=f"1390000{i % 10_000:04d}")
            user = SimulatedUser(
                http,
                webhook_url=url,
                token=TOKEN,
                appid=APPID,
                aes_key=AES_KEY,
                mode="safe",
                openid=f"ofull{tag}{i:05d}",
                timeout=CLIENT_TIMEOUT,
            )
            r = {"user": user, "rng": rng, "script": script, "text": next(script)}
            everyone.append(r)
            return r

        async def one(r: dict[str, Any]) -> None:
            d = await _send_one(
                r["user"], r["text"], msg_id=next_id(), rng=r["rng"], retry=r["rng"].random() < RETRY_SHARE
            )
            deliveries.append(d)
            r["text"] = r["script"].send(d.reply)
            idle.append(r)

        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        while (now := loop.time()) < started + seconds:
            due = started + sent / rate
            if now < due:
                await asyncio.sleep(due - now)
                continue
            task = asyncio.create_task(one(idle.pop() if idle else resident()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        window = loop.time() - started
        await asyncio.gather(*tasks)
    return Run(
        label=label,
        senders=len(everyone),
        seconds=window,
        deliveries=deliveries,
        openids=[r["user"].openid for r in everyone],
    )


def bot_options(db_url: str, data_dir: Path, rasa_url: str) -> tuple[int, dict[str, Any]]:
    """A bot server's port and ``serving`` options on ``db_url``, with a data folder of its own (created here) and a
    simulator port of its own."""
    data_dir.mkdir()
    sim_port, bot_port = free_port(), free_port()
    settings = bot_settings(
        db_url=db_url, data_dir=data_dir, rasa_url=rasa_url, sim_port=sim_port, bot_port=bot_port
    )
    return bot_port, {"sim_port": sim_port, "settings": settings}


@contextlib.asynccontextmanager
async def _database(kind: str, tmp: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / f'full-{uuid.uuid4().hex[:6]}.sqlite3'}"
        return
    # asyncpg only where PostgreSQL is measured
    import asyncpg

    name = f"bench_full_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def _ceiling(kind: str, seed: int) -> Run:
    if kind == "bare":
        async with serving("bare", port=free_port()) as served:
            await warm_up(served.url)
            return await metered(
                drive(url=served.url, label="bare", senders=32, messages=20, seed=seed),
                {"server": served.pid},
            )
    port = free_port()
    async with scaleout.serving("crypto", workers=1, port=port, options={}) as pids:
        url = f"http://127.0.0.1:{port}/wechat"
        await warm_up(url)
        return await metered(
            drive(url=url, label="crypto", senders=32, messages=20, seed=seed), {"server": pids[0]}
        )


async def run_full(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"cores": os.cpu_count(), "load_avg_1m_at_start": round(os.getloadavg()[0], 1)}
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for kind in ("bare", "crypto"):
        run = await _ceiling(kind, args.seed)
        results[f"{kind}_rps"] = round(run.rps, 1)
        results[f"{kind}_p99_ms"] = round(run.latency_ms(99), 1)
        say(
            f"ceiling {kind:<7} {run.rps:>8.1f} msg/s, p99 {run.latency_ms(99):.1f} ms (closed loop, 32 residents)"
        )
    databases = ["sqlite"] + (["postgresql"] if _pg_up() and not args.no_postgres else [])
    nlus = ([] if args.only_rasa else ["keyword"]) + ([] if args.no_rasa else ["rasa"])
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-full-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            rasa_url, rasa_pid = "http://127.0.0.1:9", None
            if "rasa" in nlus:
                rasa_url, rasa_pid = await stack.enter_async_context(_rasa(lambda s: print(f"[rasa] {s}")))
            for database in databases:
                for nlu in nlus:
                    async with _database(database, Path(tmp)) as db_url:
                        # a data folder per run: a journal left by one run's overload must not be adopted by the next
                        bot_port, options = bot_options(db_url, Path(tmp) / f"{database}-{nlu}", rasa_url)
                        async with serving(nlu, port=bot_port, options=options) as served:
                            await warm_up(served.url)
                            rate = args.start_rate
                            while True:
                                run = await metered(
                                    paced(
                                        url=served.url,
                                        label=f"{database}/{nlu}@{rate:g}",
                                        rate=rate,
                                        seconds=args.step_seconds,
                                        seed=args.seed,
                                    ),
                                    {"server": served.pid, "rasa": rasa_pid if nlu == "rasa" else None},
                                )
                                # late replies reach the outbox and a flood's journal drains before the audit
                                drain = await drained(served.url.removesuffix("/wechat"))
                                effects = count_effects(
                                    run.deliveries, await read_recorded(db_url, run.openids)
                                )
                                p99 = run.latency_ms(99)
                                step = {
                                    "database": database,
                                    "nlu": nlu,
                                    "rate": rate,
                                    "achieved": round(run.rps, 1),
                                    "p50_ms": round(run.latency_ms(50), 1),
                                    "p99_ms": None if math.isnan(p99) else round(p99, 1),
                                    "errors": run.errors,
                                    "lost": effects.lost,
                                    "duplicated": effects.duplicated,
                                    "cases": effects.cases,
                                    "drain_s": round(drain, 1),
                                }
                                steps.append(step)
                                say(
                                    f"{database:<10} {nlu:<7} offered {rate:>7.1f}/s sent {run.rps:>7.1f}/s "
                                    f"p50 {step['p50_ms']:>8} p99 {step['p99_ms']:>8} ms  errors {run.errors} "
                                    f"lost {effects.lost} duplicated {effects.duplicated} cases {effects.cases} "
                                    f"drained in {drain:.1f} s"
                                )
                                for note in effects.notes[:5]:
                                    say(f"  ! {note}")
                                failing = run.errors > 0.01 * max(1, run.messages)
                                if math.isnan(p99) or p99 > P99_LIMIT_MS or failing or rate >= args.max_rate:
                                    break
                                rate = round(rate * args.step_factor, 1)
    results["steps"] = steps
    for database in databases:
        for nlu in nlus:
            good = [
                s
                for s in steps
                if s["database"] == database and s["nlu"] == nlu and (s["p99_ms"] or 1e9) <= P99_LIMIT_MS
            ]
            results[f"{database}_{nlu}_max_rate_p99_under_1s"] = max(
                (s["achieved"] for s in good), default=None
            )
    results["lost"] = sum(s["lost"] for s in steps)
    results["duplicated"] = sum(s["duplicated"] for s in steps)
    results["load_avg_1m_at_end"] = round(os.getloadavg()[0], 1)
    print()
    print(
        f"--full: {args.step_seconds:g} s per rate, x{args.step_factor:g} per step, safe mode, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, load average {results['load_avg_1m_at_start']} -> "
        f"{results['load_avg_1m_at_end']}"
    )
    print("\n".join(lines))
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full", action="store_true", help="rising-rate load on both databases and NLU paths"
    )
    parser.add_argument("--step-seconds", type=float, default=180.0, help="--full: seconds per rate (180)")
    parser.add_argument("--start-rate", type=float, default=20.0, help="--full: first rate, msg/s (20)")
    parser.add_argument("--step-factor", type=float, default=1.5, help="--full: rate growth per step (1.5)")
    parser.add_argument("--max-rate", type=float, default=5000.0, help="--full: stop at this rate (5000)")
    parser.add_argument("--no-postgres", action="store_true", help="--full: SQLite only")
    parser.add_argument(
        "--only-rasa",
        action="store_true",
        help="--full: the real-Rasa path only (no keyword-interpreter runs)",
    )


def main_full(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    results = asyncio.run(run_full(args))
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results
