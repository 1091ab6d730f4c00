"""`python -m bot archive verify`: check the hash chain of every case's timeline; `archive erase`: a resident's
written request to delete their data, carried out by a named staff member and audited; `archive retention`:
the retention sweep by hand (the scheduler runs it every night).

Exit status 0 when every chain holds, 1 when one is broken (each broken case named with its first broken event),
so a cron job or a monitoring check can alarm on it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from sqlmodel import select

from bot.cases.chain import verify_chains
from bot.cases.rights import erase_on_written_request
from bot.db import make_engine, make_sessions, migrate, transaction
from bot.models import Case, Staff
from bot.ops.scheduler import retention_job
from bot.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot archive", description="档案留存：时间线哈希链")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="逐案核对时间线哈希链，指出第一处断链")
    erase = sub.add_parser("erase", help="按居民书面申请删除其个人信息（撤销在办诉求，记审计日志）")
    erase.add_argument("--case", required=True, help="该居民任一诉求的编号")
    erase.add_argument("--by", required=True, help="经办工作人员的用户名")
    erase.add_argument("--ground", required=True, help="书面申请的编号或说明（写入审计日志）")
    retention = sub.add_parser("retention", help="按保存期限匿名化已办结诉求的个人信息")
    retention.add_argument("--years", type=int, default=None, help="保存年限（默认取 RETENTION_YEARS）")
    return parser


async def _verify() -> int:
    settings = Settings()
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


async def _erase(case_no: str, username: str, ground: str) -> int:
    settings = Settings()
    await migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        async with transaction(make_sessions(engine)) as db:
            staff = (await db.exec(select(Staff).where(Staff.username == username))).first()
            case = (await db.exec(select(Case).where(Case.case_no == case_no.strip().upper()))).first()
            if staff is None or case is None:
                print("没有这个工作人员或诉求编号", file=sys.stderr)
                return 1
            if not ground.strip():
                print("请写明书面申请", file=sys.stderr)
                return 1
            done, _ = await erase_on_written_request(
                db, case=case, staff=staff, ground=ground, now=datetime.now(UTC)
            )
    finally:
        await engine.dispose()
    print(done)
    return 0


async def _retention(years: int | None) -> int:
    settings = Settings()
    await migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        n = await retention_job(
            sessions=make_sessions(engine),
            clock=lambda: datetime.now(UTC),
            years=settings.retention_years if years is None else years,
        )
    finally:
        await engine.dispose()
    print(f"匿名化诉求 {n} 件")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "verify":
        return asyncio.run(_verify())
    if args.command == "erase":
        return asyncio.run(_erase(args.case, args.by, args.ground))
    if args.command == "retention":
        return asyncio.run(_retention(args.years))
    return 2  # pragma: no cover - argparse refuses other commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
