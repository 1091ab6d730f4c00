"""Scale-out, measured: 1, 2 and 4 bot workers on PostgreSQL with Redis, against the wechatpy decrypt-and-echo
ceiling measured in the same run; then one bot worker with 1 and 2 real Rasa replicas, against Rasa's own
``/model/parse`` ceiling with 1 and 2 replicas.

    .venv/bin/python -m benchmarks.scaleout [--workers 1,2,4] [--senders 32] [--messages 15]
        [--rasa | --no-rasa] [--rasa-replicas 1,2] [--rasa-model nlu_data/models/nlu-….tar.gz]

Targets, one after the other, each driven by the webhook benchmark's residents (``benchmarks.webhook.drive``:
distinct openids, safe-mode AES, real conversations that file cases, ~5 % of messages delivered twice):

- ``crypto``: aiohttp + wechatpy in one process: verify the signature, decrypt, parse, and answer an encrypted echo.
  No database: what one process can do before the bot's own work.
- ``bot xN``: N processes of the bot (``bot.app.create_app``), keyword interpreter (Rasa is not started: this run
  measures the web tier), one PostgreSQL database, Redis for the shared rate limits and replay memory, listening on
  one port with ``SO_REUSEPORT`` so the kernel spreads the connections over the workers (the role nginx's
  ``upstream`` plays in ``deploy/``). The WeChat simulator answers the late replies' API calls.

- ``rasa_ceiling xN`` and ``bot x1 + rasa xN``: see ``benchmarks.scaleout_rasa`` (Rasa servers started from
  ``.venv-rasa`` with the trained model; ``--no-rasa`` skips them).

After each bot run the database is audited (lost, duplicated: ``benchmarks.webhook.count_effects``). Printed: msg/s,
p50/p99, CPU per message per process kind and the resident memory of each worker. The load generator runs in this
process on the same machine, so on 2 cores it competes with the workers: read the ratios within one run. The memory
(RSS) of every process is printed, Rasa's included. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import platform
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from benchmarks.scaleout_rasa import per_core, rasa_model, rasa_servers, spread_parse_load, tree_rss_mb
from benchmarks.webhook import (
    AES_KEY,
    APPID,
    SECRET,
    TOKEN,
    Effects,
    Run,
    bot_settings,
    count_effects,
    drive,
    free_port,
    metered,
    read_recorded,
    server_loop,
    warm_up,
)
from bot.ops import eventloop

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reuse_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


# ---------------------------------------------------------------------------- the servers (child processes)
def _child(kind: str, port: int, options: dict[str, Any], ready: Any, stop: Any) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        eventloop.run(_serve(kind, port, options, ready, stop), server_loop(options))
    except Exception as exc:
        ready.put(f"{type(exc).__name__}: {exc}")
        raise


async def _serve(kind: str, port: int, options: dict[str, Any], ready: Any, stop: Any) -> None:
    from aiohttp import web

    if kind == "crypto":
        app = _crypto_app()
    else:
        from benchmarks.webhook import _keyword_nlu
        from bot.app import create_app
        from bot.settings import Settings

        app = create_app(Settings(**options["settings"]), run_migrations=False, with_scheduler=False)
        eventloop.settle()  # as `python -m bot serve` does
        if kind == "bot":  # "botrasa": the app's own NLU, Rasa at RASA_URL (one or several replicas)
            app.cleanup_ctx.append(_keyword_nlu)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, _reuse_socket(port)).start()
    ready.put("ready")
    await asyncio.to_thread(stop.wait)
    await runner.cleanup()


def _crypto_app() -> Any:
    """wechatpy's safe-mode round trip and nothing else: the ceiling of one Python process for this protocol."""
    from aiohttp import web
    from wechatpy import create_reply, parse_message
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)

    async def echo(request: web.Request) -> web.Response:
        q = request.query
        xml = crypto.decrypt_message(await request.text(), q["msg_signature"], q["timestamp"], q["nonce"])
        msg = parse_message(xml)
        reply = create_reply(getattr(msg, "content", "收到"), msg).render()
        return web.Response(text=crypto.encrypt_message(reply, q["nonce"], q["timestamp"]))

    app = web.Application()
    app.router.add_post("/wechat", echo)
    return app


@contextlib.asynccontextmanager
async def serving(kind: str, *, workers: int, port: int, options: dict[str, Any]) -> AsyncIterator[list[int]]:
    """``workers`` child processes of ``kind`` on one port; yields their pids."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    procs, queues = [], []
    for i in range(workers):
        ready = ctx.Queue()
        proc = ctx.Process(
            target=_child, args=(kind, port, options, ready, stop), name=f"scaleout-{kind}-{i}"
        )
        proc.start()
        procs.append(proc)
        queues.append(ready)
    try:
        for q in queues:
            status = await asyncio.to_thread(q.get, True, 180)
            if status != "ready":
                raise RuntimeError(f"a {kind} worker failed to start: {status}")
        yield [p.pid for p in procs if p.pid is not None]
    finally:
        stop.set()
        for p in procs:
            await asyncio.to_thread(p.join, 30)
            if p.is_alive():
                p.terminate()
                await asyncio.to_thread(p.join, 5)


def _cpu_ms(run: Run, names: list[str]) -> float | None:
    used = [run.cpu[n] for n in names if n in run.cpu]
    return round(sum(used) * 1000 / run.messages, 2) if used and run.messages else None


async def _measure(
    kind: str,
    *,
    workers: int,
    senders: int,
    messages: int,
    options: dict[str, Any],
    seed: int,
    also: dict[str, int | None] | None = None,
) -> tuple[Run, list[float | None]]:
    """``workers`` servers of ``kind`` driven by the residents; the CPU of ``also`` (Rasa) is metered too."""
    port = free_port()
    async with serving(kind, workers=workers, port=port, options=options) as pids:
        url = f"http://127.0.0.1:{port}/wechat"
        await warm_up(url)
        run = await metered(
            drive(url=url, label=f"{kind} x{workers}", senders=senders, messages=messages, seed=seed),
            {**{f"w{i}": pid for i, pid in enumerate(pids)}, **(also or {})},
        )
        memory = [rss_mb(pid) for pid in pids]
        await asyncio.sleep(0.5)  # late replies reach the outbox before the audit
    return run, memory


async def run_scaleout(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg
    import redis.asyncio as aioredis
    from aiohttp import web

    from bot.db import migrate
    from wechat_sim.server import create_sim_app

    name = f"bench_scaleout_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    db_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    redis = aioredis.from_url(REDIS_URL)
    results: dict[str, Any] = {
        "cores": os.cpu_count(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 1),
        "senders": args.senders,
        "messages": args.messages,
        "nlu": "keyword",  # of the bot xN runs; the botN_rasaN runs use Rasa
    }
    lines: list[str] = []
    sim_runner = None
    try:
        await migrate(db_url)
        await redis.flushdb()
        sim_port = free_port()
        sim = create_sim_app(
            token=TOKEN,
            appid=APPID,
            aes_key=AES_KEY,
            mode="safe",
            webhook_url="http://127.0.0.1:9/",
            secret=SECRET,
        )
        sim_runner = web.AppRunner(sim, access_log=None)
        await sim_runner.setup()
        await web.TCPSite(sim_runner, "127.0.0.1", sim_port).start()

        with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
            print("[crypto] wechatpy decrypt-and-echo, one process", flush=True)
            crypto, crypto_mem = await _measure(
                "crypto", workers=1, senders=args.senders, messages=args.messages, options={}, seed=args.seed
            )
            results["crypto_rps"] = round(crypto.rps, 1)
            results["crypto_p99_ms"] = round(crypto.latency_ms(99), 1)
            lines.append(_line("crypto x1", crypto, ["w0"], crypto_mem))
            print(lines[-1], flush=True)
            for n in args.workers:
                settings = bot_settings(
                    db_url=db_url,
                    data_dir=_own_dir(tmp, f"bot{n}"),  # a run never replays the journal of another
                    rasa_url="http://127.0.0.1:9",
                    sim_port=sim_port,
                    bot_port=9,
                )
                settings["redis_url"] = REDIS_URL
                print(f"[bot x{n}] {n} worker(s), PostgreSQL, Redis, keyword interpreter", flush=True)
                run, memory = await _measure(
                    "bot",
                    workers=n,
                    senders=args.senders,
                    messages=args.messages,
                    options={"settings": settings},
                    seed=args.seed + n,
                )
                effects = count_effects(run.deliveries, await read_recorded(db_url, run.openids))
                workers = [f"w{i}" for i in range(n)]
                lines.append(_line(f"bot x{n}", run, workers, memory))
                lines.append(
                    f"  audit: {effects.cases} cases, {effects.late} late replies, lost {effects.lost}, "
                    f"duplicated {effects.duplicated}"
                    + "".join(f"\n  ! {note}" for note in effects.notes[:5])
                )
                print("\n".join(lines[-2:]), flush=True)
                results[f"bot{n}_rps"] = round(run.rps, 1)
                results[f"bot{n}_p99_ms"] = round(run.latency_ms(99), 1)
                results[f"bot{n}_of_crypto"] = round(run.rps / crypto.rps, 3) if crypto.rps else None
                results[f"bot{n}_cpu_ms_per_msg"] = _cpu_ms(run, workers)
                results[f"bot{n}_rss_mb"] = round(max((m or 0.0) for m in memory), 1)
                results[f"bot{n}_lost"] = effects.lost
                results[f"bot{n}_duplicated"] = effects.duplicated
            if args.rasa:
                settings = bot_settings(
                    db_url=db_url,
                    data_dir=Path(tmp),
                    rasa_url="http://127.0.0.1:9",
                    sim_port=sim_port,
                    bot_port=9,
                )
                settings["redis_url"] = REDIS_URL
                await _rasa_targets(args, settings=settings, db_url=db_url, results=results, lines=lines)
    finally:
        if sim_runner is not None:
            await sim_runner.cleanup()
        await redis.flushdb()
        await redis.aclose()
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    results["load_avg_1m_at_end"] = round(os.getloadavg()[0], 1)
    print()
    print(
        f"scale-out: {args.senders} senders x {args.messages} messages per target, safe mode, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{results['load_avg_1m_at_start']} -> {results['load_avg_1m_at_end']}"
    )
    print(f"{'target':<{WIDTH}}{'msg/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/msg':>12}{'RSS MB/worker':>15}")
    print("\n".join(lines))
    return results


WIDTH = 18  # of the target column


def _line(label: str, run: Run, workers: list[str], memory: list[float | None]) -> str:
    cpu = _cpu_ms(run, workers)
    mem = "/".join(f"{m:.0f}" for m in memory if m is not None)
    used = [run.cpu.get(w, 0.0) for w in workers]
    split = "/".join(f"{u / sum(used):.0%}" for u in used) if len(used) > 1 and sum(used) else ""
    return (
        f"{label:<{WIDTH}}{run.rps:>9.1f}{run.latency_ms(50):>9.1f}{run.latency_ms(99):>9.1f}"
        f"{(f'{cpu:.2f}' if cpu is not None else '-'):>12}  {mem:>13}"
        + (f"   CPU split over the workers {split}" if split else "")
    )


def _progress(step: str) -> None:
    print(f"… {step}", flush=True)


async def _rasa_targets(
    args: argparse.Namespace,
    *,
    settings: dict[str, Any],
    db_url: str,
    results: dict[str, Any],
    lines: list[str],
) -> None:
    """One bot worker with 1, 2, … Rasa replicas, and Rasa's own /model/parse ceiling with as many."""
    model = await asyncio.to_thread(rasa_model, args.rasa_model, _progress)
    results["rasa_model"] = model.name
    texts: list[list[str]] | None = None  # every ceiling replays the first Rasa run's texts
    async with rasa_servers(max(args.rasa_replicas), model, _progress) as servers:
        results["rasa_rss_mb_idle"] = [_round(tree_rss_mb(s.pid)) for s in servers]
        for n in args.rasa_replicas:
            used = servers[:n]
            rasa_pids = {f"r{i}": s.pid for i, s in enumerate(used)}
            replicas = [f"r{i}" for i in range(n)]
            key = f"bot1_rasa{n}"
            print(
                f"[bot x1 + rasa x{n}] one worker, RASA_URL naming {n} replica(s), PostgreSQL, Redis",
                flush=True,
            )
            run, memory = await _measure(
                "botrasa",
                workers=1,
                senders=args.senders,
                messages=args.messages,
                options={
                    "settings": {
                        **settings,
                        "rasa_url": ",".join(s.url for s in used),
                        "data_dir": str(_own_dir(settings["data_dir"], key)),
                    }
                },
                seed=args.seed + 1,  # the same residents' scripts as the keyword run of one worker
                also=rasa_pids,
            )
            effects = count_effects(run.deliveries, await read_recorded(db_url, run.openids))
            rasa_memory = [tree_rss_mb(s.pid) for s in used]
            understood = _rasa_share(effects)
            lines.append(_line(f"bot x1 + rasa x{n}", run, ["w0"], memory))
            lines.append(
                f"  Rasa x{n}: CPU ms/msg {_cpu_ms(run, replicas)}, RSS MB/replica "
                + "/".join(f"{m:.0f}" for m in rasa_memory if m is not None)
                + f"; understood by Rasa {understood:.0%} (rest: keyword fallback)"
                + f"\n  audit: {effects.cases} cases, {effects.late} late replies, lost {effects.lost}, "
                f"duplicated {effects.duplicated}" + "".join(f"\n  ! {note}" for note in effects.notes[:5])
            )
            print("\n".join(lines[-2:]), flush=True)
            results[f"{key}_rps"] = round(run.rps, 1)
            results[f"{key}_p99_ms"] = round(run.latency_ms(99), 1)
            results[f"{key}_bot_cpu_ms_per_msg"] = _cpu_ms(run, ["w0"])
            results[f"{key}_rasa_cpu_ms_per_msg"] = _cpu_ms(run, replicas)
            results[f"{key}_per_core_msg_s"] = per_core(_cpu_ms(run, ["w0"]), _cpu_ms(run, replicas))
            results[f"{key}_rasa_share"] = round(understood, 3)
            results[f"{key}_bot_rss_mb"] = _round(memory[0] if memory else None)
            results[f"{key}_rasa_rss_mb"] = [_round(m) for m in rasa_memory]
            results[f"{key}_lost"] = effects.lost
            results[f"{key}_duplicated"] = effects.duplicated

            texts = texts or run.texts_by_sender()
            print(f"[rasa_ceiling x{n}] /model/parse alone, round robin over {n} replica(s)", flush=True)
            ceiling = await metered(
                spread_parse_load(
                    urls=[s.url for s in used], texts_by_sender=texts, label=f"rasa_ceiling x{n}"
                ),
                rasa_pids,
            )
            lines.append(_line(f"rasa_ceiling x{n}", ceiling, replicas, [tree_rss_mb(s.pid) for s in used]))
            if ceiling.errors:
                lines.append(f"  ! {ceiling.errors} parses failed")
            print(lines[-1], flush=True)
            results[f"rasa{n}_ceiling_rps"] = round(ceiling.rps, 1)
            results[f"rasa{n}_ceiling_p99_ms"] = round(ceiling.latency_ms(99), 1)
            results[f"rasa{n}_cpu_ms_per_parse"] = _cpu_ms(ceiling, replicas)
            results[f"{key}_of_ceiling"] = round(run.rps / ceiling.rps, 3) if ceiling.rps else None


def _own_dir(parent: str | Path, name: str) -> Path:
    """A data folder of one run's own: the delivery journal a run leaves behind (deliveries kept while the database
    did not answer) must not be adopted and replayed by the next run's workers."""
    path = Path(parent) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rasa_share(effects: Effects) -> float:
    total = sum(effects.nlu_sources.values())
    return effects.nlu_sources.get("rasa", 0) / total if total else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scaleout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure (default 1,2,4)")
    parser.add_argument("--senders", type=int, default=32, help="concurrent residents (default 32)")
    parser.add_argument(
        "--messages", type=int, default=15, help="messages per resident and target (default 15)"
    )
    parser.add_argument(
        "--rasa",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run one bot worker with real Rasa replicas, and Rasa's /model/parse ceiling (default: on)",
    )
    parser.add_argument("--rasa-replicas", default="1,2", help="Rasa replica counts to measure (default 1,2)")
    parser.add_argument(
        "--rasa-model",
        default=None,
        help="a trained model file (default: the newest in nlu_data/models/, trained when there is none)",
    )
    parser.add_argument("--seed", type=int, default=20200401)
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    args.rasa_replicas = [int(n) for n in args.rasa_replicas.split(",") if n.strip()]
    if args.rasa and not args.rasa_replicas:
        parser.error("--rasa-replicas names no count")
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    results = asyncio.run(run_scaleout(args))
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
