"""`python -m bot staff create --username U --password P --role ROLE --town TOWN [--community C]`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.cases.lifecycle import ROLES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot staff", description="管理工作人员账号")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="创建账号")
    create.add_argument("--username", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--town", default="")
    create.add_argument("--community", default="")
    create.add_argument("--name", default="", help="显示名（默认同用户名）")
    passwd = sub.add_parser("password", help="重置密码并解除锁定")
    passwd.add_argument("--username", required=True)
    passwd.add_argument("--password", required=True)
    sub.add_parser("list", help="列出账号")
    return parser


async def _run(args: argparse.Namespace) -> int:
    # lazy: a command loads only what it runs, so `python -m bot --help` starts fast
    from sqlmodel import col, select

    # lazy: a command loads only what it runs, so `python -m bot --help` starts fast
    from bot.cases.access import StaffError, create_staff, set_password
    from bot.db import make_engine, make_sessions, migrate, transaction  # lazy: as above
    from bot.models import Staff  # lazy: as above
    from bot.settings import Settings  # lazy: as above

    settings = Settings()
    await migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        async with transaction(make_sessions(engine)) as db:
            if args.command == "create":
                staff = await create_staff(
                    db,
                    username=args.username,
                    password=args.password,
                    role=args.role,
                    town=args.town or None,
                    community=args.community or None,
                    display_name=args.name or None,
                )
                print(f"created {staff.username} ({staff.role}, {staff.town or 'city'})")
            elif args.command == "password":
                found = (await db.exec(select(Staff).where(Staff.username == args.username))).first()
                if found is None:
                    print(f"no such user: {args.username}", file=sys.stderr)
                    return 1
                await set_password(db, staff=found, password=args.password)
                print(f"password reset for {found.username}")
            else:
                for s in await db.exec(select(Staff).order_by(col(Staff.town), col(Staff.username))):
                    print(
                        f"{s.username}\t{s.role}\t{s.town or '-'}\t{s.community or '-'}\t{'active' if s.active else 'off'}"
                    )
    except StaffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
