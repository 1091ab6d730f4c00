"""A flood and its drain: ``python -m benchmarks.flood [--rate 300] [--seconds 8] [--database-url URL]``.

The keyword bot runs in a child process (``benchmarks.webhook.serving``, a fresh SQLite file unless
``--database-url``); ``benchmarks.full.paced`` sends ``--rate`` messages a second for ``--seconds`` (open loop, each
from an idle resident), more than the process can answer, so it sheds to its journal. Then the bot's ``/readyz`` is
read every second until nothing is in hand or journalled: one line per second (journalled and waiting, in hand,
guarded), the drain time, and the audit of lost and duplicated deliveries. Last line: one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.full import paced
from benchmarks.webhook import bot_settings, count_effects, free_port, read_recorded, serving, warm_up


async def flood(*, rate: float, seconds: float, database_url: str | None, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        db_url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'flood.sqlite3'}"
        sim_port, bot_port = free_port(), free_port()
        settings = bot_settings(
            db_url=db_url,
            data_dir=Path(tmp),
            rasa_url="http://127.0.0.1:9",
            sim_port=sim_port,
            bot_port=bot_port,
        )
        async with serving(
            "keyword", port=bot_port, options={"sim_port": sim_port, "settings": settings}
        ) as bot:
            await warm_up(bot.url)
            base = bot.url.removesuffix("/wechat")
            run = await paced(url=bot.url, label=f"flood@{rate:g}", rate=rate, seconds=seconds, seed=20200401)
            started = time.monotonic()
            first: dict[str, Any] = {}
            async with aiohttp.ClientSession() as http:
                while time.monotonic() - started < timeout:
                    async with http.get(f"{base}/readyz") as resp:
                        journal = (await resp.json())["checks"]["journal"]
                    first = first or journal
                    print(
                        f"{time.monotonic() - started:5.1f} s  waiting {journal.get('waiting')}  in hand "
                        f"{journal.get('in_flight')}  guarded {journal.get('guarded')}",
                        flush=True,
                    )
                    if not journal.get("pending") and not journal.get("in_flight"):
                        break
                    await asyncio.sleep(1.0)
            drain = time.monotonic() - started
            effects = count_effects(run.deliveries, await read_recorded(db_url, run.openids))
    return {
        "database": db_url.split(":", 1)[0],
        "rate": rate,
        "seconds": seconds,
        "sent": run.messages,
        "p50_ms": round(run.latency_ms(50), 1),
        "p99_ms": round(run.latency_ms(99), 1),
        "errors": run.errors,
        "shed": first.get("shed"),
        "journalled_at_end_of_load": first.get("waiting"),
        "drain_s": round(drain, 1),
        "lost": effects.lost,
        "duplicated": effects.duplicated,
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="messages per second offered")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the flood lasts")
    parser.add_argument(
        "--database-url", default=None, help="a migrated database (default: a new SQLite file)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the drain (seconds)")
    args = parser.parse_args(argv)
    result = asyncio.run(
        flood(rate=args.rate, seconds=args.seconds, database_url=args.database_url, timeout=args.timeout)
    )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
