"""`python -m bot archive verify`: check the hash chain of every case's timeline.

Exit status 0 when every chain holds, 1 when one is broken (each broken case named with its first broken event),
so a cron job or a monitoring check can alarm on it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.cases.chain import verify_chains
from bot.db import make_engine, make_sessions, migrate
from bot.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot archive", description="档案留存：时间线哈希链")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="逐案核对时间线哈希链，指出第一处断链")
    return parser


async def _verify() -> int:
    settings = Settings()  # type: ignore[call-arg]
    await migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        async with make_sessions(engine)() as db:
            report = await verify_chains(db)
    finally:
        await engine.dispose()
    for b in report.broken:
        print(f"断链: 诉求 {b.case_no} (case {b.case_id}) 事件 {b.event_id}: {b.reason}")
    status = "完好" if not report.broken else f"{len(report.broken)} 件诉求断链"
    print(f"核对 {report.cases} 件诉求、{report.events} 个事件: {status}")
    return 1 if report.broken else 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "verify":
        return asyncio.run(_verify())
    return 2  # pragma: no cover - argparse refuses other commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
