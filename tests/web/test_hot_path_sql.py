"""The webhook's hot path: one transaction per message, the resident read once, nothing for rare states.

The real app on a real port (SQLite file); SQLAlchemy's engine events count the statements and commits of each
message (the same counting as ``python -m benchmarks.sql_count``)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import event

from bot import keys
from bot.app import create_app
from tests.helpers import SIM_TOKEN, make_settings, serve, wechat_sender
from webhooks.testing import message_xml


async def test_a_known_residents_message_is_one_transaction_and_reads_the_resident_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = create_app(
        make_settings(sqlite_url, tmp_path, wechat_encoding_aes_key=""),
        run_migrations=False,
        with_scheduler=False,
    )
    runner, base = await serve(app)
    statements: list[str] = []
    commits = [0]
    engine = app[keys.CHAT_ENGINE].sync_engine  # the webhook's engine (on SQLite its own, statements inline)
    event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: statements.append(stmt))
    event.listen(engine, "commit", lambda c: commits.__setitem__(0, commits[0] + 1))
    sender = wechat_sender(SIM_TOKEN, mode="plain")
    msgid = int(time.time() * 1000)
    seen: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as http:
            for words in ("你好", "你好", "查询进度"):
                msgid += 1
                xml = message_xml(
                    {
                        "ToUserName": "gh_sql0001",
                        "FromUserName": "oSql-1",
                        "CreateTime": int(time.time()),
                        "MsgType": "text",
                        "Content": words,
                        "MsgId": msgid,
                    }
                )
                req = sender.build(xml)
                statements.clear()
                commits[0] = 0
                async with http.post(f"{base}/wechat", params=req.params, data=req.body) as resp:
                    assert sender.open_reply(await resp.text())
                    # WeChat's servers get XML, no session: no cookie is made (or encrypted) for a message
                    assert "Set-Cookie" not in resp.headers
                kinds = [re.split(r"\s+", s.strip(), maxsplit=1)[0].upper() for s in statements]
                seen.append({"commits": commits[0], "kinds": kinds, "sql": list(statements)})
    finally:
        await runner.cleanup()
    for turn in seen[1:]:  # the resident is known from the first message on
        assert turn["commits"] == 1, turn["sql"]
        resident_reads = [
            s for s in turn["sql"] if s.lstrip().upper().startswith("SELECT") and "FROM resident" in s
        ]
        assert len(resident_reads) == 1, resident_reads
        assert sum(k == "INSERT" for k in turn["kinds"]) == 1  # the inbound record, nothing else
        assert not any("ON CONFLICT" in s and "resident" in s for s in turn["sql"])
    # a known resident's greeting with nothing waiting: read resident ⟕ conversation, insert the record, store its
    # outcome — no ORM flush of the record, no UPDATE of an idle conversation that stays idle
    assert [k for k in seen[1]["kinds"] if k not in ("BEGIN", "PRAGMA")] == ["SELECT", "INSERT", "UPDATE"], (
        seen[1]["sql"]
    )
    assert "UPDATE inboundmessage" in seen[1]["sql"][-1]
