"""The open API's status callbacks keep the schedule the README promises: a callback that fails is tried again
after 30 s, 2 min, 10 min, 1 h and 6 h, and then parked in the dead-letter list — not sooner, not more often.

The receiver is a real HTTP server that always answers 500; the dispatcher is run by hand one second before and
exactly at each due time, on the real app's database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlmodel import select

from bot.api import callbacks
from bot.api.clients import create_client
from bot.db import make_engine, make_sessions, transaction
from bot.models import ApiCallback
from tests.helpers import app_client

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 China time
# the promise, written out (README, "Other platforms"): the waits after the 1st … 5th failed try
WAITS = [
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
]


async def test_a_failing_callback_is_retried_on_the_promised_schedule_then_parked(
    db_url: str, tmp_path: Any, aiohttp_client: Any, aiohttp_server: Any
) -> None:
    tries: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        tries.append(request.headers["X-DGJ-Event-Id"])
        return web.Response(status=500)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    server = await aiohttp_server(receiver)
    api = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)

    engine = make_engine(db_url)
    sessions = make_sessions(engine)
    try:
        async with transaction(sessions) as s:
            _, key = await create_client(
                s, name="回调", scopes=["cases:read", "cases:write", "webhooks"], town=None, now=NOW
            )
        auth = {"Authorization": f"Bearer {key}"}
        subscribed = await api.post(
            "/api/v1/subscriptions", json={"url": str(server.make_url("/hook"))}, headers=auth
        )
        assert subscribed.status == 201, await subscribed.text()
        new = {
            "external_id": "12345-0099",
            "kind": "micro_project",
            "town": "厚街镇",
            "description": "路灯坏了",
        }
        created = await api.post("/api/v1/cases", json=new, headers=auth)
        assert created.status == 201, await created.text()
        async with transaction(sessions) as s:
            assert await callbacks.collect(s, now=NOW) == 1

        due = NOW
        await callbacks.dispatch(sessions=sessions, http=api.session, now=due)
        assert len(tries) == 1
        for n, wait in enumerate(WAITS, start=2):
            due += wait
            early = await callbacks.dispatch(
                sessions=sessions, http=api.session, now=due - timedelta(seconds=1)
            )
            assert (early.sent, early.retried, early.dead) == (0, 0, 0), f"try {n} came before its time"
            assert len(tries) == n - 1
            stats = await callbacks.dispatch(sessions=sessions, http=api.session, now=due)
            assert len(tries) == n, f"try {n} did not come {wait} after the one before"
            assert (stats.retried, stats.dead) == ((1, 0) if n < 6 else (0, 1))

        # six tries in all, then parked: nothing more, however late
        later = await callbacks.dispatch(sessions=sessions, http=api.session, now=due + timedelta(days=30))
        assert (later.sent, later.retried, later.dead) == (0, 0, 0)
        assert len(tries) == 6
        async with transaction(sessions) as s:
            (row,) = (await s.exec(select(ApiCallback))).all()
            assert (row.status, row.attempts, row.last_error) == ("dead", 6, "HTTP 500")
            dead = await callbacks.dead_letters(s)
            assert [d["id"] for d in dead] == [row.id]
    finally:
        await engine.dispose()
