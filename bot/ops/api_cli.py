"""`python -m bot api-key create --name NAME --scopes cases:read,cases:write [--town 厚街镇]` (the key is printed
once, on the last line), `api-key list`, `api-key revoke --name NAME`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.api.clients import SCOPES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot api-key", description="开放接口的调用方与密钥")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="创建调用方，打印新密钥（只显示这一次）")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help=f"逗号分隔：{', '.join(SCOPES)}")
    create.add_argument("--town", default="", help="只允许访问这个镇街（默认全市）")
    revoke = sub.add_parser("revoke", help="吊销密钥")
    revoke.add_argument("--name", required=True)
    sub.add_parser("list", help="列出调用方")
    return parser


async def _run(args: argparse.Namespace) -> int:
    # lazy: a command loads only what it runs, so `python -m bot --help` starts fast
    from sqlmodel import select

    # lazy: a command loads only what it runs, so `python -m bot --help` starts fast
    from bot.api.clients import ClientError, create_client, list_clients, revoke
    from bot.db import make_engine, make_sessions, migrate, transaction  # lazy: as above
    from bot.models import ApiClient, utcnow  # lazy: as above
    from bot.settings import Settings  # lazy: as above

    settings = Settings()
    await migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        async with transaction(make_sessions(engine)) as db:
            if args.command == "create":
                scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
                client, key = await create_client(
                    db, name=args.name, scopes=scopes, town=args.town or None, now=utcnow()
                )
                print(
                    f"created API client {client.name} ({', '.join(client.scopes)}; {client.town or '全市'})"
                )
                print(key)
            elif args.command == "revoke":
                found = (await db.exec(select(ApiClient).where(ApiClient.name == args.name))).first()
                if (
                    found is None
                    or found.id is None
                    or not await revoke(db, client_id=found.id, now=utcnow())
                ):
                    print(f"no active API client named {args.name}", file=sys.stderr)
                    return 1
                print(f"revoked {args.name}")
            else:
                for c in await list_clients(db):
                    state = "active" if c.active else "revoked"
                    print(f"{c.name}\t{','.join(c.scopes)}\t{c.town or '-'}\tdgj_{c.key_prefix}_…\t{state}")
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_run(_parser().parse_args(argv)))
