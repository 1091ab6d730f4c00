"""`python -m bot communities import FILE [--dry-run] | unmapped | map | list [--town T]`: the registry of
villages and communities (村/社区).

``import`` adds the valid rows of a CSV (columns town,name,kind or 镇街,名称,类型), skips rows already present and
lists every refused row with its line and reason (exit status 1 when any row was refused, 2 when the file is
unusable); ``unmapped`` lists the free-text community values of cases and staff accounts that match no registry
row (exit status 1 when there are any); ``map`` maps again what the registry now knows (after an import)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot communities", description="村（社区）名单")
    parser.add_argument("--database-url", default="", help="default: DATABASE_URL or the local SQLite")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("import", help="add the rows of a CSV file")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="only check the file")
    sub.add_parser("unmapped", help="free-text community values that match no registry row")
    sub.add_parser("map", help="map free-text community values to registry rows again")
    p = sub.add_parser("list", help="the registry, one line per community")
    p.add_argument("--town", default="")
    return parser


def _print_unmapped(unmapped: list[Any]) -> None:
    table_label = {"case": "诉求", "staff": "工作人员"}
    for u in unmapped:
        print(f"未匹配\t{table_label.get(u.table, u.table)}\t{u.town}\t{u.value}\t{u.rows}条")
    print(
        f"共{len(unmapped)}个自由填写的村（社区）名称不在名单中"
        if unmapped
        else "所有村（社区）名称都已对应到名单"
    )


async def _run(args: argparse.Namespace, url: str) -> int:
    # the database and the registry load SQLAlchemy and the models: only when a command runs, so --help stays fast
    from bot.cases import communities
    from bot.db import make_engine, make_sessions, migrate  # as above
    from bot.models import utcnow  # as above

    await migrate(url)
    engine = make_engine(url)
    try:
        sessions = make_sessions(engine)
        async with sessions() as db:  # closing without commit rolls back (a dry run, a read)
            if args.command == "import":
                report = await communities.import_csv(db, data=args.file.read_bytes(), now=utcnow())
                if report.fatal is None and not args.dry_run:
                    await db.commit()
                print(("校验完成（未写入）：" if args.dry_run else "") + report.text())
                return 0 if report.ok else (2 if report.fatal else 1)
            if args.command == "list":
                towns = [args.town] if args.town else None
                for town, rows in (await communities.by_town(db, towns=towns)).items():
                    for c in rows:
                        print(f"{c.id}\t{town}\t{c.name}\t{c.kind}")
                return 0
            unmapped = await communities.map_free_text(db, write=args.command == "map")
            if args.command == "map":
                await db.commit()
            _print_unmapped(unmapped)
            return 1 if unmapped else 0
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "import" and not args.file.is_file():
        print(f"file not found: {args.file}", file=sys.stderr)
        return 2
    url = args.database_url or Settings().db_url
    return asyncio.run(_run(args, url))
