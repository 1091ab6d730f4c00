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


class _Chat:
    """One resident writing to the app's webhook (plain mode), with the statements and commits each message cost on
    the webhook's engine."""

    def __init__(self, app: Any, base: str, openid: str) -> None:
        self.base, self.openid = base, openid
        self.sender = wechat_sender(SIM_TOKEN, mode="plain")
        self.msgid = int(time.time() * 1000)
        self.statements: list[str] = []
        self.commits = 0
        engine = app[
            keys.CHAT_ENGINE
        ].sync_engine  # the webhook's engine (on SQLite its own, statements inline)
        event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: self.statements.append(stmt))
        event.listen(engine, "commit", self._committed)

    @classmethod
    async def started(cls, sqlite_url: str, tmp_path: Path, openid: str) -> tuple[Any, _Chat]:
        """The app on ``sqlite_url`` served on a port (plain mode), and ``openid``'s chat with it."""
        app = create_app(
            make_settings(sqlite_url, tmp_path, wechat_encoding_aes_key=""),
            run_migrations=False,
            with_scheduler=False,
        )
        runner, base = await serve(app)
        return runner, cls(app, base, openid)

    def _committed(self, _conn: Any) -> None:
        self.commits += 1

    async def say(self, http: aiohttp.ClientSession, words: str) -> tuple[dict[str, str] | None, Any]:
        """The passive reply's fields and the response's headers; the statements and commits are this message's."""
        self.msgid += 1
        xml = message_xml(
            {
                "ToUserName": "gh_sql0001",
                "FromUserName": self.openid,
                "CreateTime": int(time.time()),
                "MsgType": "text",
                "Content": words,
                "MsgId": self.msgid,
            }
        )
        req = self.sender.build(xml)
        self.statements.clear()
        self.commits = 0
        async with http.post(f"{self.base}/wechat", params=req.params, data=req.body) as resp:
            return self.sender.open_reply(await resp.text()), resp.headers


async def test_a_known_residents_message_is_one_transaction_and_reads_the_resident_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    runner, chat = await _Chat.started(sqlite_url, tmp_path, "oSql-1")
    seen: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as http:
            for words in ("你好", "你好", "查询进度"):
                reply, headers = await chat.say(http, words)
                assert reply
                # WeChat's servers get XML, no session: no cookie is made (or encrypted) for a message
                assert "Set-Cookie" not in headers
                kinds = [re.split(r"\s+", s.strip(), maxsplit=1)[0].upper() for s in chat.statements]
                seen.append({"commits": chat.commits, "kinds": kinds, "sql": list(chat.statements)})
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


async def test_a_broadcasts_bare_digit_looks_up_no_case_unless_one_is_finished(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The "reply 1" of a broadcast from a resident with nothing finished: the numbered menu, found with the rare
    states' read (one EXISTS more in that statement), not by loading the resident's cases; once a case of theirs is
    done, the same digit rates it (the case is looked up then)."""
    from sqlalchemy import select, update

    from bot.cases.numbering import create_case
    from bot.conversation.dialogue import texts
    from bot.db import transaction
    from bot.models import Case, Feedback, Resident

    runner, chat = await _Chat.started(sqlite_url, tmp_path, "oSql-digit")
    app = runner.app

    async def say(http: aiohttp.ClientSession, words: str) -> tuple[str, list[str]]:
        reply, _ = await chat.say(http, words)
        assert reply is not None
        return reply["Content"], list(chat.statements)

    def case_loads(sql: list[str]) -> list[str]:
        return [s for s in sql if s.lstrip().upper().startswith("SELECT") and '"case".case_no' in s]

    try:
        async with aiohttp.ClientSession() as http:
            await say(http, "你好")
            reply, sql = await say(http, "1")
            assert texts.MENU_ASK in reply, reply
            assert case_loads(sql) == [], sql
            rare = [s for s in sql if "EXISTS" in s.upper()]
            assert len(rare) == 1 and rare[0].upper().count("EXISTS") == 3, rare
            reply, sql = await say(http, "算了")  # the menu closed again
            sessions = app[keys.SESSIONS]
            now = app[keys.CLOCK]()
            async with transaction(sessions) as session:
                rid = (await session.exec(select(Resident.id).where(Resident.openid == "oSql-digit"))).one()[
                    0
                ]
                case = await create_case(
                    session, kind="micro_wish", description="轮椅", town="石龙镇", resident_id=rid, now=now
                )
                await session.exec(update(Case).where(Case.id == case.id).values(status="completed"))
            reply, sql = await say(http, "5")
            assert reply == texts.FEEDBACK_THANKS, reply
            assert len(case_loads(sql)) == 1, sql
            async with sessions() as session:
                rated = (await session.exec(select(Feedback.case_id, Feedback.score))).all()
            assert [tuple(r) for r in rated] == [(case.id, 5)]
    finally:
        await runner.cleanup()
