"""`python -m bot`: the web app and every other job of the project."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.ops.eventloop import loop_factory, run, settle
from bot.settings import Settings


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="大莞家助手: WeChat bot, staff views, jobs"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the web app (webhook, views, scheduler)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--no-scheduler", action="store_true", help="leave the sweeps to `python -m bot scheduler`"
    )

    p = sub.add_parser("run", help="everything locally: simulator, Rasa, bot on SQLite, demo data")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)

    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser("train", help="train the Rasa model when nlu_data/ changed")
    p = sub.add_parser("seed", help="demo data: categories, deadlines, staff accounts, the resource pool")
    p.add_argument("--pool-size", type=int, default=1900)
    sub.add_parser("simulator", help="the WeChat simulator (API + resident phone page)", add_help=False)
    sub.add_parser("scheduler", help="run only the sweeps and the outbox dispatcher", add_help=False)
    sub.add_parser(
        "staff",
        help="staff accounts: `staff create --username U --password P --role R --town T`",
        add_help=False,
    )
    sub.add_parser(
        "nlu",
        help="`nlu eval`: train, evaluate on the held-out set, compare with the baseline; "
        "`nlu conversations`: play the scripted conversations through the webhook",
        add_help=False,
    )
    sub.add_parser("pool", help="resource pool import/export", add_help=False)
    sub.add_parser(
        "communities", help="村（社区）名单: `communities import FILE`, unmapped, map, list", add_help=False
    )
    sub.add_parser("archive", help="`archive verify`: check every case timeline's hash chain", add_help=False)
    sub.add_parser(
        "api-key",
        help="open API keys: `api-key create --name N --scopes cases:read,cases:write [--town T]`, list, revoke",
        add_help=False,
    )

    if not argv or argv[0] in {"-h", "--help"}:
        parser.print_help()
        return 0
    command, rest = argv[0], argv[1:]
    # subcommands with their own parsers
    if command == "simulator":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from wechat_sim.server import main as sim_main

        _configure_logging()
        sim_main(rest)
        return 0
    if command == "scheduler":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.scheduler import main as sched_main

        _configure_logging()
        return sched_main(rest)
    if command == "staff":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.staff_cli import main as staff_main

        return staff_main(rest)
    if command == "api-key":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.api_cli import main as api_main

        return api_main(rest)
    if command == "pool":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.pool_cli import main as pool_main

        return pool_main(rest)
    if command == "communities":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.communities_cli import main as communities_main

        return communities_main(rest)
    if command == "archive":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.archive_cli import main as archive_main

        return archive_main(rest)
    if command == "nlu":
        if rest and rest[0] == "conversations":
            # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
            from bot.conversation.nlu.conversations import main as conversations_main

            return conversations_main(rest[1:])
        if rest and rest[0] == "agree":
            # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
            from bot.conversation.nlu.agreement import main as agree_main

            return agree_main(rest[1:])
        if not rest or rest[0] != "eval":
            print(
                "usage: python -m bot nlu eval | python -m bot nlu conversations [--min RATE] | "
                "python -m bot nlu agree A.yml B.yml",
                file=sys.stderr,
            )
            return 2
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.conversation.nlu.evaluate import main as eval_main

        return eval_main(rest[1:])

    args = parser.parse_args(argv)
    _configure_logging()
    settings = Settings()  # from the environment
    if args.command == "serve":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from aiohttp import web

        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.app import create_app

        app = create_app(settings, with_scheduler=False if args.no_scheduler else None)
        settle()
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            access_log=None,
            print=None,
            loop=loop_factory(settings.event_loop)(),
        )
        return 0
    if args.command == "run":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.launcher import run_all

        return run(run_all(settings, host=args.host, port=args.port), settings.event_loop)
    if args.command == "migrate":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.db import migrate

        asyncio.run(migrate(settings.db_url))
        print("database is up to date:", _safe_url(settings.db_url))
        return 0
    if args.command == "train":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.rasa_service import train_if_needed

        model = train_if_needed(
            project_dir=settings.nlu_project_dir,
            models_dir=settings.nlu_project_dir / "models",
            rasa_bin=settings.rasa_bin,
        )
        print("model:", model)
        return 0
    if args.command == "seed":
        # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
        from bot.ops.seed import seed

        summary = asyncio.run(seed(settings, pool_size=args.pool_size))
        print(summary)
        return 0
    parser.print_help()
    return 2


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in (
        "aiohttp.access",
        "apscheduler.executors.default",
        "apscheduler.scheduler",
        "jieba",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _safe_url(url: str) -> str:
    # lazy: each command loads only what it runs, so `python -m bot --help` and small commands start fast
    import re

    return re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", url)
