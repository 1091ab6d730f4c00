"""`python -m bot pool import FILE [--dry-run] | export FILE`: the 爱心资源库 as CSV or Excel (.xlsx).

Import validates the whole file first and writes nothing when any row is wrong (the report lists row, column and
problem, exit status 1); re-importing updates records by their 编号. Export picks the format from the extension."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot pool", description="爱心资源库 import/export")
    parser.add_argument("--database-url", default="", help="default: DATABASE_URL or the local SQLite")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("import", help="import a CSV/XLSX file (all or nothing)")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="only validate")
    p = sub.add_parser("export", help="export to FILE (.csv or .xlsx)")
    p.add_argument("file", type=Path)
    return parser


async def _run(args: argparse.Namespace, url: str) -> int:
    # the database and the pool load SQLAlchemy and the models: only when a command runs, so --help stays fast
    from bot.db import make_engine, make_sessions, migrate
    from bot.models import utcnow  # as above
    from bot.pool.transfer import export_pool, import_pool  # as above

    await migrate(url)
    engine = make_engine(url)
    try:
        sessions = make_sessions(engine)
        now = utcnow()
        if args.command == "export":
            fmt = "xlsx" if args.file.suffix.lower() == ".xlsx" else "csv"
            async with sessions() as db:
                export = await export_pool(db, staff=None, now=now, fmt=fmt)
            args.file.write_bytes(export.body)
            print(f"exported {export.rows} records to {args.file} ({len(export.body)} bytes)")
            return 0
        data = args.file.read_bytes()
        async with sessions() as db:  # closing without commit rolls back (dry run, or a bad file)
            outcome = await import_pool(db, data=data, filename=args.file.name, now=now)
            if outcome.ok and not args.dry_run:
                await db.commit()
        if not outcome.ok:
            print(outcome.report, file=sys.stderr)
            return 1
        print(("校验通过（未写入）：" if args.dry_run else "") + outcome.report)
        return 0
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "import" and not args.file.is_file():
        print(f"file not found: {args.file}", file=sys.stderr)
        return 2
    url = args.database_url or Settings().db_url
    return asyncio.run(_run(args, url))
