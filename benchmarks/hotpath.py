"""CPU of the bot's hot path alone: ``Inbound.handle`` called in this process, no HTTP, no crypto.

    python -m benchmarks.hotpath [--repeat 300] [--rounds 3] [--database-url URL] [--loop uvloop|asyncio]
                                 [--concurrency N]

For each message type (a greeting, a greeting after a pause — the resident last wrote an hour before, so the
message opens WeChat's window again and the resident's row is written, as for most real residents' messages —, a
menu digit, a wish in words, a progress query (the list of one's cases, empty here) from known residents; a new
resident's first message) the handler runs ``--repeat`` times per round with the keyword NLU on a fresh SQLite file (or the given
database); printed: process CPU (all threads) and event-loop thread CPU per message, the best of ``--rounds``
rounds (the least disturbed by other work on the machine). The webhook benchmarks measure the whole edge; this one
isolates what the bot adds, so a change to the hot path can be compared on a loaded machine. The last line is JSON.

Every run's residents and delivery keys are its own (a run token in each): on a database that outlives the run
(``--database-url``), a second run's deliveries would otherwise all be duplicates of the first run's, answered from
their records, and its residents' conversations would go on where the last run left them.

``--concurrency N`` runs the mix with N residents' conversations at once (each resident's messages in order, as
WeChat sends them), as a worker behind 32 connections does; the time the garbage collector took and its
collections per message (by generation) are printed beside it, since what stays alive while N messages are under
way is what each collection walks."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.webhook import _keyword_nlu, bot_settings, conversation
from bot import keys
from bot.app import create_app
from bot.ops import eventloop
from bot.settings import Settings
from webhooks import WEBHOOK_HANDLER, Delivery

TEXTS = {
    "greeting": "你好",
    "greeting after a pause": "你好",
    "menu digit": "1",
    "wish": "我想要一辆轮椅，我们住在厚街镇",
    "progress query": "查询进度",
    "filing": "确认",
}
#: what a type's residents say first (after the greeting), and what the bot's last answer to it must hold: a filing
#: is the "确认" of a resident whose wish, consent and phone number the bot has, and it must file the case
PREPARE = {"filing": (("我想要一辆轮椅，我们住在厚街镇", "同意", "13800000000"), "请核对您的申请")}
#: what the measured message's answer must hold, where it must hold something
EXPECT = {"filing": "已为您登记"}
#: message types whose residents last wrote an hour before (the message opens WeChat's window again: the resident's
#: row is written, as for most messages of real residents, who rarely write twice within a minute)
PAUSED = {"greeting after a pause"}


#: this run's token, in every openid and delivery key (see the module's doc)
RUN = f"{time.time_ns() // 1_000_000 % 10**9:09d}"


def _delivery(openid: str, text: str, n: int) -> Delivery:
    now = datetime.now(UTC)
    return Delivery(
        key=f"msg:{openid}:{RUN}:{n}",
        openid=openid,
        account="gh_bench",
        msg_type="text",
        event=None,
        text=text,
        media={},
        create_time=now,
        raw_xml="",
    )


async def _mix(handler: Any, *, residents: int, messages: int, tag: str, concurrency: int = 1) -> int:
    """The webhook benchmark's conversations (greetings, wishes, projects, queries and the answers that file
    cases), ``concurrency`` residents at a time (one after another by default), each resident's messages in order;
    returns the messages sent."""

    async def one(i: int) -> int:
        rng = random.Random(20200401 * 100_003 + i)
        script = conversation(rng, phone=f"1380000{i % 10_000:04d}")
        text = next(script)
        openid = f"omix{RUN}{tag}x{concurrency}-{i:05d}"
        for k in range(messages):
            text = script.send(await handler.handle(_delivery(openid, text, k)))
        return messages

    sent = 0
    for first in range(0, residents, concurrency):
        done = await asyncio.gather(*(one(i) for i in range(first, min(residents, first + concurrency))))
        sent += sum(done)
    return sent


async def _an_hour_ago(app: web.Application, openids: list[str]) -> None:
    """The residents of ``openids`` last wrote an hour ago (their WeChat window is then opened again)."""
    from sqlalchemy import bindparam, update

    from bot.models import Resident

    table = Resident.__table__  # type: ignore[attr-defined]
    then = datetime.now(UTC) - timedelta(hours=1)
    async with app[keys.ENGINE].begin() as conn:
        await conn.execute(
            update(table).where(table.c.openid == bindparam("o")).values(last_interaction_at=then),
            [{"o": o} for o in openids],
        )


class _GcClock:
    """Time spent in the garbage collector and collections by generation, while ``on``."""

    def __init__(self) -> None:
        self.on, self.spent, self.started = False, 0.0, 0.0
        self.collections = [0, 0, 0]
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if not self.on:
            return
        if phase == "start":
            self.started = time.thread_time()
        else:
            self.spent += time.thread_time() - self.started
            self.collections[info["generation"]] += 1

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


async def run(
    *,
    repeat: int,
    rounds: int,
    database_url: str | None,
    profile: str | None = None,
    concurrency: int = 1,
) -> dict[str, Any]:
    best: dict[str, tuple[float, float]] = {}
    gc_clock, gc_share = _GcClock(), dict[str, tuple[float, list[float]]]()
    profiler = cProfile.Profile(time.thread_time) if profile else None
    with tempfile.TemporaryDirectory(prefix="bench-hot-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'hot.sqlite3'}"
        settings = bot_settings(
            db_url=url, data_dir=Path(tmp), rasa_url="http://127.0.0.1:9", sim_port=9, bot_port=9
        )
        app = create_app(Settings(**settings), run_migrations=True, with_scheduler=False)
        app.cleanup_ctx.append(_keyword_nlu)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        eventloop.settle()  # as `python -m bot serve` does once the app is up
        handler = app[WEBHOOK_HANDLER]
        n = 0
        try:
            for r in range(rounds):
                for kind in (*TEXTS, "new resident"):
                    openids = [f"ohot{RUN}{r}{kind[:3]}{i:05d}" for i in range(repeat)]
                    if kind != "new resident":
                        said, wanted = PREPARE.get(kind, ((), ""))
                        for o in openids:  # known residents, idle conversation (or as ``PREPARE`` leaves it)
                            for text in ("你好", *said):
                                n += 1
                                reply = await handler.handle(_delivery(o, text, n))
                            if wanted not in str(reply):
                                raise RuntimeError(f"{kind}: {wanted!r} not in the answer {reply!r}")
                    if kind in PAUSED:
                        await _an_hour_ago(app, openids)
                    text = TEXTS.get(kind, "你好")
                    p0, t0 = time.process_time(), time.thread_time()
                    replies = []
                    for o in openids:
                        n += 1
                        replies.append(await handler.handle(_delivery(o, text, n)))
                    p, t = (
                        (time.process_time() - p0) * 1000 / repeat,
                        (time.thread_time() - t0) * 1000 / repeat,
                    )
                    if kind in EXPECT and not all(EXPECT[kind] in str(a) for a in replies):
                        raise RuntimeError(f"{kind}: not every answer holds {EXPECT[kind]!r}")
                    if kind not in best or p < best[kind][0]:
                        best[kind] = (p, t)
                # the benchmark's mix of messages (each resident's conversation from its start)
                p0, t0 = time.process_time(), time.thread_time()
                if profiler is not None and concurrency == 1:
                    profiler.enable()
                sent = await _mix(handler, residents=max(1, repeat // 15), messages=15, tag=str(r))
                if profiler is not None:
                    profiler.disable()
                p, t = (time.process_time() - p0) * 1000 / sent, (time.thread_time() - t0) * 1000 / sent
                if "mix" not in best or p < best["mix"][0]:
                    best["mix"] = (p, t)
                if concurrency > 1:  # the same mix, many residents at once, with the collector's share
                    gc_clock.on, gc_clock.spent, gc_clock.collections = True, 0.0, [0, 0, 0]
                    p0, t0 = time.process_time(), time.thread_time()
                    if profiler is not None:
                        profiler.enable()
                    sent = await _mix(
                        handler,
                        residents=max(concurrency, repeat // 15 * 2),
                        messages=15,
                        tag=str(r),
                        concurrency=concurrency,
                    )
                    if profiler is not None:
                        profiler.disable()
                    p, t = (time.process_time() - p0) * 1000 / sent, (time.thread_time() - t0) * 1000 / sent
                    gc_clock.on = False
                    key = f"mix x{concurrency}"
                    if key not in best or p < best[key][0]:
                        best[key] = (p, t)
                        gc_share[key] = (
                            gc_clock.spent * 1000 / sent,
                            [c / sent for c in gc_clock.collections],
                        )
        finally:
            gc_clock.close()
            await runner.cleanup()
    if profiler is not None and profile:
        profiler.dump_stats(profile)
    for kind, (p, t) in best.items():
        print(f"{kind:22s} process CPU {p:6.3f} ms/msg   event loop {t:6.3f} ms/msg")
        if kind in gc_share:
            spent, per = gc_share[kind]
            print(
                f"{'':22s} of which the collector {spent:6.3f} ms/msg; collections per message "
                + " ".join(f"gen{g} {c:.3f}" for g, c in enumerate(per))
            )
    return {k.replace(" ", "_"): round(p, 3) for k, (p, _) in best.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hotpath", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the event loop (a worker's EVENT_LOOP)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="also run the mix with this many residents at once"
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="write a cProfile (event-loop CPU) of the mix (with --concurrency, of the mix at once) to this file",
    )
    args = parser.parse_args(argv)
    result = eventloop.run(
        run(
            repeat=args.repeat,
            rounds=args.rounds,
            database_url=args.database_url,
            profile=args.profile,
            concurrency=max(1, args.concurrency),
        ),
        args.loop,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
