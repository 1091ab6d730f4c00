"""SQL statements and transactions per message type on the webhook's hot path.

``python -m benchmarks.sql_count [--database-url URL]`` starts the real app (``bot.app.create_app``, keyword NLU:
Rasa pointed at a closed port, so the fallback answers at once) on 127.0.0.1, listens to the engine with SQLAlchemy
events (``before_cursor_execute`` for statements, ``commit`` for transactions) and sends one resident's
conversation over HTTP: a subscribe event, a greeting, a menu digit, a progress query, a wish and the answers to
what the bot asks, then a second resident's greeting (a new resident's first message). Prints a table and ends with
one JSON line ({message type: statements}). ``--show`` prints the statements themselves.

On PostgreSQL the count also takes what goes to the driver past SQLAlchemy's cursor (``asyncpg``'s
``Connection.execute``: BEGIN, COMMIT, and several statements sent in one simple query, as ``bot.driver.begin_locked``
does), and the round trips: the writes to the database server's socket (each is answered before the next)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import event

from bot import keys
from bot.app import create_app
from bot.settings import Settings
from webhooks.testing import WeChatSender, message_xml

TOKEN = "bench-token"
STEPS = [
    ("subscribe (new resident)", "event", "subscribe", "o-bench-1"),
    ("greeting", "text", "你好", "o-bench-1"),
    ("greeting again", "text", "你好", "o-bench-1"),
    ("menu digit", "text", "1", "o-bench-1"),
    ("progress query", "text", "查询进度", "o-bench-1"),
    ("wish", "text", "我想要一辆轮椅，我们住在厚街镇", "o-bench-1"),
    ("answer 1", "text", None, "o-bench-1"),
    ("answer 2", "text", None, "o-bench-1"),
    ("answer 3", "text", None, "o-bench-1"),
    ("after filing: query", "text", "查询进度", "o-bench-1"),
    ("first message of a new resident", "text", "你好", "o-bench-2"),
]


def answer(reply: str) -> str:
    if "“同意”" in reply:
        return "同意"
    if "镇街" in reply and ("哪个" in reply or "名字" in reply):
        return "厚街镇"
    if "联系电话" in reply:
        return "不用"
    if "回复“确认”" in reply:
        return "确认"
    return "确认"


async def run(db_url: str, *, show: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = db_url or f"sqlite+aiosqlite:///{Path(tmp) / 'count.sqlite3'}"
        settings = Settings(
            environment="development",
            database_url=url,
            data_dir=Path(tmp),
            rasa_url="http://127.0.0.1:9",
            wechat_token=TOKEN,
            wechat_appid="wx00000000simulator",
            wechat_api_base="http://127.0.0.1:9",
            scheduler_enabled=False,
            session_secret="s" * 40,
            link_secret="l" * 40,
            messages_per_minute=0,
        )
        app = create_app(settings, run_migrations=True, with_scheduler=False)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        statements: list[str] = []
        commits = [0]
        engine = app[keys.CHAT_ENGINE].sync_engine  # the webhook's engine
        event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: statements.append(stmt))
        event.listen(engine, "commit", lambda c: commits.__setitem__(0, commits[0] + 1))
        trips = [0]
        undo = _watch_driver(statements, trips, port=app[keys.CHAT_ENGINE].url.port or 5432)
        sender = WeChatSender(token=TOKEN, appid="wx00000000simulator")
        results: dict[str, dict[str, Any]] = {}
        reply = ""
        msgid = int(time.time() * 1000)
        try:
            async with aiohttp.ClientSession() as http:
                for name, msg_type, text, openid in STEPS:
                    msgid += 1
                    words = text if text is not None else answer(reply)
                    fields: dict[str, Any] = {
                        "ToUserName": "gh_bench",
                        "FromUserName": openid,
                        "CreateTime": int(time.time()) + msgid % 1000,
                        "MsgType": msg_type,
                    }
                    if msg_type == "event":
                        fields["Event"] = words
                    else:
                        fields |= {"Content": words, "MsgId": msgid}
                    request = sender.build(message_xml(fields))
                    statements.clear()
                    commits[0] = 0
                    trips[0] = 0
                    async with http.post(
                        f"http://127.0.0.1:{port}/wechat", params=request.params, data=request.body
                    ) as resp:
                        body = await resp.text()
                    opened = sender.open_reply(body)
                    reply = opened["Content"] if opened else ""
                    kinds = [re.split(r"\s+", s.strip(), maxsplit=1)[0].upper() for s in statements]
                    results[name] = {
                        "text": words,
                        "statements": sum(k not in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA") for k in kinds),
                        "selects": kinds.count("SELECT"),
                        "writes": sum(k in ("INSERT", "UPDATE", "DELETE") for k in kinds),
                        "transactions": commits[0],
                        "round_trips": trips[0],
                        "reply": reply[:30],
                        "sql": list(statements),
                    }
        finally:
            undo()
            await runner.cleanup()
    return results


def _watch_driver(statements: list[str], trips: list[int], *, port: int) -> Any:
    """asyncpg's simple queries into ``statements`` (one per statement), and each write to the database's socket
    counted in ``trips``; returns what undoes it. On SQLite nothing goes through either."""
    execute = asyncpg.Connection.execute
    fetch = asyncpg.Connection.fetch
    fetchrow = asyncpg.Connection.fetchrow
    write = asyncio.selector_events._SelectorSocketTransport.write  # type: ignore[attr-defined]

    async def counted_execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        if not args:  # the simple query protocol: what SQLAlchemy's cursor events do not see
            statements.extend(s.strip() for s in query.split(";") if s.strip())
        else:  # a statement on asyncpg's own API (``bot.driver.on_driver``)
            statements.append(query)
        return await execute(self, query, *args, **kw)

    async def counted_fetch(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        statements.append(query)  # a statement on asyncpg's own API (``bot.driver``)
        return await fetch(self, query, *args, **kw)

    async def counted_fetchrow(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        statements.append(query)
        return await fetchrow(self, query, *args, **kw)

    def counted_write(self: Any, data: Any) -> None:
        peer = self.get_extra_info("peername")
        if peer is not None and peer[1] == port:
            trips[0] += 1
        write(self, data)

    asyncpg.Connection.execute = counted_execute  # type: ignore[method-assign]
    asyncpg.Connection.fetch = counted_fetch  # type: ignore[method-assign]
    asyncpg.Connection.fetchrow = counted_fetchrow  # type: ignore[method-assign]
    asyncio.selector_events._SelectorSocketTransport.write = counted_write  # type: ignore[attr-defined]

    def undo() -> None:
        asyncpg.Connection.execute = execute  # type: ignore[method-assign]
        asyncpg.Connection.fetch = fetch  # type: ignore[method-assign]
        asyncpg.Connection.fetchrow = fetchrow  # type: ignore[method-assign]
        asyncio.selector_events._SelectorSocketTransport.write = write  # type: ignore[attr-defined]

    return undo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="a migrated database (default: a new SQLite file)")
    parser.add_argument("--show", action="store_true", help="print every statement")
    args = parser.parse_args(argv)
    # the standard loop: round trips are counted on its socket transport (``_watch_driver``)
    results = asyncio.run(run(args.database_url, show=args.show))
    print(f"{'message':34} {'text':16} stmts selects writes txns trips  reply")
    for name, r in results.items():
        print(
            f"{name:34} {r['text'][:14]:16} {r['statements']:5} {r['selects']:7} {r['writes']:6} "
            f"{r['transactions']:4} {r['round_trips']:5}  {r['reply']}"
        )
        if args.show:
            for s in r["sql"]:
                print("      ", " ".join(s.split())[:160])
    print(json.dumps({name: r["statements"] for name, r in results.items()}, ensure_ascii=False))


if __name__ == "__main__":
    main()
