"""The reminder sweep over 100,000 open cases with 1 % due, and outbox dispatch throughput against the simulator.

    .venv/bin/python -m benchmarks.sweep [--cases 100000] [--messages 2000] [--concurrency 8] [--repeat N]
        [--no-postgres] [--no-dispatch]

SQLite always (a fresh file); PostgreSQL when 127.0.0.1:5432 answers (a database of its own, dropped afterwards).
The sweep is timed end to end: the indexed select, the policy check, loading the staff, inserting the outbox rows
(with their dedupe keys) and marking the cases, in one transaction. With PostgreSQL on this machine, the CPU time
its backends spent on the sweep is read from /proc beside this process's (wall time on a shared machine is both
plus the wait for a core). ``--repeat``: that many sweeps on each database (fresh ones), medians reported.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import socket
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.webhook import cpu_seconds
from bot import db
from bot.deadlines.sweeps import remind_due
from bot.models import Case, Outbox, Staff
from reference.towns import TOWNS

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def seed(sessions: Any, *, cases: int, due_share: float, now: datetime) -> int:
    rng = random.Random(20250610)
    towns = [t.name for t in TOWNS]
    statuses = ["submitted", "verified", "accepted", "claimed", "matching", "dispatched", "in_progress"]
    async with db.transaction(sessions) as s:
        for t in towns:
            for role in ("town_staff", "town_staff", "town_supervisor"):
                s.add(
                    Staff(
                        username=f"{t}-{role}-{uuid.uuid4().hex[:6]}",
                        role=role,
                        town=t,
                        openid=f"o-{uuid.uuid4().hex[:16]}",
                    )
                )
    due = 0
    rows = []
    for i in range(cases):
        is_due = rng.random() < due_share
        due += is_due
        deadline = now + (
            timedelta(hours=rng.uniform(0.5, 3)) if is_due else timedelta(days=rng.uniform(4, 30))
        )
        rows.append(
            {
                "case_no": f"MS20250610-{i:06d}",
                "kind": "micro_wish" if i % 3 else "micro_project",
                "status": statuses[i % len(statuses)],
                "description": "",
                "town": towns[i % len(towns)],
                "channel": "wechat",
                "needs_triage": False,
                "awaiting_resident": False,
                "stage_deadline": deadline,
                "stage_started_at": now - timedelta(days=1),
                "created_at": now - timedelta(days=1),
                "updated_at": now - timedelta(days=1),
            }
        )
    async with db.transaction(sessions) as s:
        for start in range(0, len(rows), 5000):
            await s.exec(sa.insert(Case), params=rows[start : start + 5000])  # type: ignore[call-overload]
    return due


def _backend_cpu_ms(pids: list[int]) -> float | None:
    """CPU time (user + system) the server processes ``pids`` have used, when they run on this machine."""
    total = 0.0
    for pid in pids:
        seconds = cpu_seconds(pid)
        if seconds is None:
            return None
        total += seconds
    return total * 1000


async def _backends(engine: Any) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return [r[0] for r in rows]


async def bench_sweep(url: str, *, cases: int, label: str) -> dict[str, Any]:
    await db.migrate(url)
    engine = db.make_engine(url)
    sessions = db.make_sessions(engine)
    now = datetime(2025, 6, 10, 2, tzinfo=UTC)
    t = time.perf_counter()
    due = await seed(sessions, cases=cases, due_share=0.01, now=now)
    seed_s = time.perf_counter() - t
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))
    # warm the connection pool and the policy table (the scheduler's steady state), and freeze what lives as
    # long as the process, as `python -m bot serve` does before it serves
    await remind_due(sessions=sessions, now=now - timedelta(days=10))
    pg = engine.dialect.name == "postgresql"
    pids = await _backends(engine) if pg else []
    server0 = _backend_cpu_ms(pids) if pg else None
    gc.collect()
    gc.freeze()
    t, cpu = time.perf_counter(), time.process_time()
    reminded = await remind_due(sessions=sessions, now=now, batch=5000)
    sweep_ms = (time.perf_counter() - t) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    gc.unfreeze()
    server1 = _backend_cpu_ms(pids) if pg else None
    server_ms = server1 - server0 if server0 is not None and server1 is not None else None
    t = time.perf_counter()
    again = await remind_due(sessions=sessions, now=now, batch=5000)
    idle_ms = (time.perf_counter() - t) * 1000
    async with sessions() as s:
        queued = (await s.exec(sa.select(sa.func.count()).select_from(Outbox))).scalar_one()  # type: ignore[call-overload]
    await engine.dispose()
    print(f"[{label}] seeded {cases:,} open cases ({due:,} due) in {seed_s:.1f} s")
    print(
        f"[{label}] reminder sweep: {reminded:,} cases reminded, {queued:,} messages queued in {sweep_ms:.1f} ms "
        f"(this process's CPU: {cpu_ms:.1f} ms"
        + (f", the server's: {server_ms:.0f} ms" if server_ms is not None else "")
        + "); "
        f"the next sweep (nothing due): {idle_ms:.1f} ms, {again} reminded"
    )
    assert reminded == due and again == 0
    return {
        "sweep_ms": round(sweep_ms, 1),
        "cpu_ms": round(cpu_ms, 1),
        "server_cpu_ms": None if server_ms is None else round(server_ms),
        "idle_sweep_ms": round(idle_ms, 1),
        "due": due,
        "queued": queued,
    }


async def bench_dispatch(*, messages: int, concurrency: int, tmp: Path) -> float:
    from aiohttp import ClientSession, web

    from bot.delivery.dispatcher import DeliveryConfig, dispatch_all
    from bot.delivery.outbox import enqueue
    from bot.delivery.wechat_api import WeChatAPI
    from bot.models import Resident
    from wechat_sim.server import SIM_STATE, create_sim_app

    url = f"sqlite+aiosqlite:///{tmp / 'dispatch.sqlite3'}"
    await db.migrate(url)
    engine = db.make_engine(url)
    sessions = db.make_sessions(engine)
    now = datetime.now(UTC)
    async with db.transaction(sessions) as s:
        for i in range(messages):
            if i % 2:  # half inside the 48-hour window (customer service), half by template
                s.add(Resident(openid=f"o-{i}", last_interaction_at=now - timedelta(hours=1)))
            await enqueue(s, openid=f"o-{i}", kind="progress", text=f"您的诉求有新进展（{i}）", now=now)
    sim = create_sim_app(
        token="t",
        appid="wxbench0simulator",
        aes_key=None,
        mode="plain",
        webhook_url="http://127.0.0.1:9/wechat",
        secret="s",
    )
    runner = web.AppRunner(sim, access_log=None)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with ClientSession() as http:
        api = WeChatAPI(
            session=http, base_url=f"http://127.0.0.1:{port}", appid="wxbench0simulator", secret="s"
        )
        t, cpu = time.perf_counter(), time.process_time()
        stats = await dispatch_all(
            sessions=sessions,
            api=api,
            clock=lambda: datetime.now(UTC),
            concurrency=concurrency,
            batch=200,
            config=DeliveryConfig(),
        )
        elapsed = time.perf_counter() - t
        cpu_s = time.process_time() - cpu
    received = len(sim[SIM_STATE].sent)
    await runner.cleanup()
    await engine.dispose()
    rate = stats.sent / elapsed
    print(
        f"[dispatch] {stats.sent:,} messages ({stats.via_custom:,} customer-service, {stats.via_template:,} "
        f"template) in {elapsed:.2f} s at concurrency {concurrency}: {rate:,.0f} msg/s; simulator received {received:,}; "
        f"CPU {cpu_s / max(1, stats.sent) * 1000:.2f} ms per message (dispatcher, client and simulator in this process)"
    )
    assert received == stats.sent == messages
    return rate


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"open_cases": args.cases, "load_avg_1m": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory() as tmp:
        sq = [
            await bench_sweep(
                f"sqlite+aiosqlite:///{Path(tmp) / f'sweep{i}.sqlite3'}", cases=args.cases, label="sqlite"
            )
            for i in range(args.repeat)
        ]
        results["database"] = "sqlite"
        results["sweep_ms"] = statistics.median(r["sweep_ms"] for r in sq)
        results["sweep_cpu_ms"] = statistics.median(r["cpu_ms"] for r in sq)
        if not args.no_postgres and _pg_up():
            pgs = [await _bench_pg(args.cases) for _ in range(args.repeat)]
            results["database"] = "sqlite+postgresql"
            results["sweep_ms_postgresql"] = statistics.median(r["sweep_ms"] for r in pgs)
            results["sweep_cpu_ms_postgresql"] = statistics.median(r["cpu_ms"] for r in pgs)
            server = [r["server_cpu_ms"] for r in pgs if r["server_cpu_ms"] is not None]
            if server:
                results["sweep_server_cpu_ms_postgresql"] = statistics.median(server)
        if not args.no_dispatch:
            results["dispatch_msgs_per_s"] = round(
                await bench_dispatch(messages=args.messages, concurrency=args.concurrency, tmp=Path(tmp)), 1
            )
            results["dispatch_concurrency"] = args.concurrency
    return results


async def _bench_pg(cases: int) -> dict[str, Any]:
    import asyncpg

    name = f"bench_sweep_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        return await bench_sweep(
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", cases=cases, label="postgresql"
        )
    finally:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-dispatch", action="store_true")
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
