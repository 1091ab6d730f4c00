"""CPU per message: the wechatpy decrypt-and-echo endpoint and the bot's keyword path, in one run.

``python -m benchmarks.cpu [--senders 16] [--messages 20] [--rounds 2] [--postgres] [--pin] [--profile FILE]``: alternately (``--rounds``
times) the wechatpy safe-mode echo (``benchmarks.scaleout``'s ``crypto`` app: verify, decrypt, parse, encrypted
echo) and the bot with the keyword NLU on a fresh SQLite file (``benchmarks.webhook``'s ``keyword`` server), each in
a child process driven by the webhook benchmark's residents; reports the server process's CPU seconds (user +
system, all threads, from /proc) per message. Wall-time rates on a shared machine follow its load; CPU per message
moves far less, so the ratio of the two CPU figures is the one to read.

``--postgres`` adds, in each round, the same bot on a fresh PostgreSQL database (127.0.0.1:5432): the worker's CPU
per message on both databases in the same minutes — what one worker can carry when the database server has cores of
its own — with the CPU its PostgreSQL backends spent beside it (read from /proc; not part of the worker's).

``--pin`` (Linux) runs each bot's worker alone on one CPU and everything else — this load generator, the simulator,
every PostgreSQL process — on the others, for both databases: on a 2-core machine the database server's backends
otherwise take turns with the worker on its core, which can make its own code cost more CPU (caches, switches).
With the worker on a core of its own the figure is the worker's code, as where the database has cores of its own.

``--profile FILE`` instead runs the bot in this process (keyword NLU, SQLite, the real app over 127.0.0.1) and
writes a cProfile of its webhook handler for three message types from a known resident (a wish text, a menu digit,
a greeting), ``--repeat`` each, to FILE (``python -m pstats FILE``), and prints the top functions by own time and
the CPU per message of each type (handler only: the client's signing and AES are measured apart and subtracted)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from benchmarks.full import PG_ADMIN, _database, bot_options
from benchmarks.scaleout import _measure
from benchmarks.sweep import _backend_cpu_ms
from benchmarks.webhook import (
    AES_KEY,
    APPID,
    TOKEN,
    _keyword_nlu,
    bot_settings,
    drive,
    free_port,
    metered,
    proc_stat,
    serving,
    warm_up,
)
from bot.app import create_app
from bot.settings import Settings
from wechat_sim.client import SimulatedUser


async def _bot_run(
    tmp: Path, i: int, senders: int, messages: int, seed: int, database: str = "sqlite", *, pin: bool = False
) -> tuple[Any, float | None]:
    """The bot (keyword NLU) on a fresh database of ``database``'s kind, one worker; with the CPU its PostgreSQL
    backends spent meanwhile (None on SQLite, whose work is the worker's own). ``pin``: the worker alone on one CPU,
    everything else (this load generator, the simulator, PostgreSQL's processes) on the others (``_pinned``)."""
    async with _database(database, tmp) as db_url:
        bot_port, options = bot_options(db_url, tmp / f"{database}{i}", "http://127.0.0.1:9")
        async with serving("keyword", port=bot_port, options=options) as served:
            await warm_up(served.url)
            before = await _backends_cpu(db_url)
            with _pinned(served.pid, pin):
                run = await metered(
                    drive(url=served.url, label="keyword", senders=senders, messages=messages, seed=seed),
                    {"server": served.pid},
                )
            after = await _backends_cpu(db_url)
    if after is None or before is None:
        return run, None
    # the backends alive at the end, what exited meanwhile, less what was spent before the run (a backend alive then
    # and gone since is in both ``before`` and the reaped total)
    return run, sum(after.values()) - sum(before.values())


async def _backends_cpu(db_url: str) -> dict[int, float] | None:
    """CPU ms (user + system) of each PostgreSQL backend serving ``db_url``'s database, from /proc (the server runs
    on this machine), and under the key ``REAPED`` what the server's exited processes spent (the postmaster's
    ``cutime`` + ``cstime``): a connection the pool closed during the run (its overflow, returned to a full pool)
    took its backend's CPU with it, which a sum over the live backends alone left out. None for SQLite. (Exited
    processes of other databases and the server's own workers count too: run on a quiet server.)"""
    if not db_url.startswith("postgresql"):
        return None
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", db_url.rsplit("/", 1)[1]
        )
        # read while this connection's backend is alive (the postmaster is its parent)
        reaped = _reaped_cpu_ms(await conn.fetchval("SELECT pg_backend_pid()"))
    finally:
        await conn.close()
    spent = {}
    for row in rows:
        ms = _backend_cpu_ms([row["pid"]])
        if ms is not None:
            spent[row["pid"]] = ms
    if reaped is not None:
        spent[REAPED] = reaped
    return spent


@contextlib.contextmanager
def _pinned(worker: int | None, pin: bool) -> Iterator[None]:
    """``pin``: the worker's threads on the first CPU this process may use, this process (the load generator), its
    other children (the simulator) and every PostgreSQL process (the postmaster too, so that backends it starts meanwhile
    follow) on the others; everyone's affinity as it was afterwards. On a machine with few cores the database server's
    backends and the load generator otherwise run on the worker's core in turn, and the same Python code then takes
    more CPU (caches, context switches): seen as identical XML parsing and AES costing up to twice as much in the
    PostgreSQL runs' profiles. The worker with a core of its own measures what the worker's code costs, as where the
    database server runs on cores of its own."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or worker is None or len(cpus) < 2:
        yield
        return
    mine, others = {cpus[0]}, set(cpus[1:])
    before: dict[int, set[int]] = {}
    try:
        _set_affinity(_threads(worker), mine, before)
        rest = [os.getpid(), *_the_rest(os.getpid(), but=worker, named="postgres")]
        _set_affinity([t for pid in rest for t in _threads(pid)], others, before)
        yield
    finally:
        for tid, was in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, was)


def _set_affinity(tids: list[int], cpus: set[int], before: dict[int, set[int]]) -> None:
    for tid in tids:
        try:
            before.setdefault(tid, os.sched_getaffinity(tid))
            os.sched_setaffinity(tid, cpus)
        except OSError:  # gone meanwhile, or not ours to move
            pass


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _the_rest(parent: int, *, but: int, named: str) -> list[int]:
    """The processes besides the worker ``but``: ``parent``'s other children, and every process called ``named``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != but:
            stat = proc_stat(int(entry))
            if stat is not None and (stat[0] == named or stat[1][1:2] == [str(parent)]):
                found.append(int(entry))
    return found


#: ``_backends_cpu``'s key for the CPU of the server's exited processes
REAPED = -1


def _reaped_cpu_ms(backend: int) -> float | None:
    """The CPU ms the exited children of ``backend``'s parent (the postmaster) have used, from /proc."""
    stat = proc_stat(backend)
    parent = proc_stat(int(stat[1][1])) if stat is not None else None
    if parent is None:
        return None
    return (int(parent[1][13]) + int(parent[1][14])) * 1000 / os.sysconf("SC_CLK_TCK")


async def compare(
    *, senders: int, messages: int, rounds: int, seed: int, postgres: bool, pin: bool = False
) -> dict[str, Any]:
    """Rounds of the echo, the bot on SQLite and (``postgres``) the bot on PostgreSQL, alternated: the worker's CPU
    per message on each database in the same minutes — what one worker can carry when the database server has
    cores of its own (its backends' CPU is reported beside it, and added in ``pg_with_server_over_sqlite``)."""
    echo_ms: list[float] = []
    bot_ms: list[float] = []
    pg_ms: list[float] = []
    pg_server_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        for i in range(rounds):
            echo, _ = await _measure(
                "crypto", workers=1, senders=senders, messages=messages, options={}, seed=seed
            )
            e = echo.cpu["w0"] * 1000 / echo.messages
            bot, _ = await _bot_run(Path(tmp), i, senders, messages, seed, pin=pin)
            b = bot.cpu["server"] * 1000 / bot.messages
            echo_ms.append(e)
            bot_ms.append(b)
            line = (
                f"round {i + 1}: echo {echo.rps:.1f} msg/s, {e:.3f} ms CPU/msg | "
                f"bot SQLite {bot.rps:.1f} msg/s (p99 {bot.latency_ms(99):.0f} ms), {b:.2f} ms CPU/msg | "
                f"CPU ratio echo/bot {e / b:.3f}"
            )
            if postgres:
                pg, server = await _bot_run(Path(tmp), i, senders, messages, seed, "postgresql", pin=pin)
                g = pg.cpu["server"] * 1000 / pg.messages
                pg_ms.append(g)
                line += f" | bot PostgreSQL {pg.rps:.1f} msg/s (p99 {pg.latency_ms(99):.0f} ms), {g:.2f} ms CPU/msg"
                if server is not None:
                    pg_server_ms.append(server / pg.messages)
                    line += f" + server {server / pg.messages:.2f}"
            print(line, flush=True)
    result: dict[str, Any] = {
        "echo_cpu_ms": [round(x, 3) for x in echo_ms],
        "bot_cpu_ms": [round(x, 2) for x in bot_ms],
        "echo_over_bot": round(sum(echo_ms) / sum(bot_ms), 3),
    }
    if pg_ms:
        result["bot_pg_cpu_ms"] = [round(x, 2) for x in pg_ms]
        result["pg_server_cpu_ms"] = [round(x, 2) for x in pg_server_ms]
        result["pg_over_sqlite"] = round(sum(pg_ms) / sum(bot_ms), 3)
        if len(pg_server_ms) == len(pg_ms):
            # what a message costs the machine: the worker and the database server's processes (SQLite's work is
            # all in its worker)
            result["pg_with_server_over_sqlite"] = round((sum(pg_ms) + sum(pg_server_ms)) / sum(bot_ms), 3)
    return result


PROFILED = {"wish": "我想要一辆轮椅，我们住在厚街镇", "menu digit": "1", "greeting": "你好"}


async def profile(out: str | None, *, repeat: int) -> dict[str, Any]:
    """``out`` None: no profiler, only the handler's process CPU per message type (the figure to compare)."""
    profiler = cProfile.Profile(time.thread_time)  # the event loop's CPU, not its waits
    handler_cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        port = free_port()
        settings = bot_settings(
            db_url=f"sqlite+aiosqlite:///{Path(tmp) / 'prof.sqlite3'}",
            data_dir=Path(tmp),
            rasa_url="http://127.0.0.1:9",
            sim_port=9,
            bot_port=port,
        )
        app = create_app(Settings(**settings), run_migrations=True, with_scheduler=False)
        app.cleanup_ctx.append(_keyword_nlu)
        spent = [0.0]
        measuring = [False]

        @web.middleware
        async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
            if not measuring[0]:
                return await handler(request)
            start = time.process_time()
            if out:
                profiler.enable()
            try:
                return await handler(request)
            finally:
                if out:
                    profiler.disable()
                spent[0] += time.process_time() - start

        app.middlewares.insert(0, timed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with ClientSession() as http:
                for kind, text in PROFILED.items():
                    users = [
                        SimulatedUser(
                            http,
                            webhook_url=f"http://127.0.0.1:{port}/wechat",
                            token=TOKEN,
                            appid=APPID,
                            aes_key=AES_KEY,
                            mode="safe",
                            openid=f"oprof{kind[:4]}{i:04d}",
                        )
                        for i in range(repeat)
                    ]
                    await users[0].send_text(PROFILED["wish"])  # jieba and the lazy imports load here
                    for u in users[1:]:  # known residents, outside the measurement
                        await u.send_text("你好")
                    spent[0] = 0.0
                    measuring[0] = True
                    for u in users[1:]:
                        await u.send_text(text)
                    measuring[0] = False
                    handler_cpu[kind] = spent[0] * 1000 / (repeat - 1)
        finally:
            await runner.cleanup()
    if out:
        profiler.dump_stats(out)
        stats = pstats.Stats(out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
    return {k: round(v, 2) for k, v in handler_cpu.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20200401)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also the bot on a fresh PostgreSQL database (127.0.0.1:5432) in each round: CPU per worker on both",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the bot's worker alone on one CPU, the load generator and PostgreSQL on the others (Linux)",
    )
    parser.add_argument("--profile", default=None, help="write a cProfile of the bot's handler to this file")
    parser.add_argument("--repeat", type=int, default=60, help="messages of each type when profiling")
    parser.add_argument(
        "--handler-cpu", action="store_true", help="as --profile, without the profiler: CPU per message type"
    )
    args = parser.parse_args(argv)
    if args.profile or args.handler_cpu:
        result = asyncio.run(profile(args.profile, repeat=args.repeat))
    else:
        result = asyncio.run(
            compare(
                senders=args.senders,
                messages=args.messages,
                rounds=args.rounds,
                seed=args.seed,
                postgres=args.postgres,
                pin=args.pin,
            )
        )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
