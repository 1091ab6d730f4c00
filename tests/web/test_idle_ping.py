"""A server connection that sat idle in the pool is pinged before use, and replaced when the server dropped it
(a restart, a failover, a proxy's idle timeout); one back in the pool moments ago is used without a ping, so a busy
worker pays no extra round trip per message (bot/db.py ``_ping_after_idle``; the connections the webhook holds,
bot/lanes.py, by the same rule). Through the real app on a real port,
with PostgreSQL dropping the app's connections (``pg_terminate_backend``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

import bot.lanes
import webhooks
from bot import keys
from bot.app import create_app
from tests.helpers import make_settings, pg_dsn, say_text, serve

pytestmark = pytest.mark.postgres


async def _drop_the_apps_connections(database: str) -> int:
    conn = await asyncpg.connect(pg_dsn())
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return len(rows)
    finally:
        await conn.close()


async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    pg_template: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable")
    monkeypatch.setattr(bot.lanes, "PING_AFTER_IDLE", 0.3)
    url = await pg_template.copy()
    app = create_app(
        make_settings(url, tmp_path, wechat_encoding_aes_key=""), run_migrations=False, with_scheduler=False
    )
    runner, base = await serve(app)
    dialect = app[keys.ENGINE].sync_engine.dialect
    pings: list[float] = []
    real_ping = dialect.do_ping

    def counted_ping(dbapi_conn: Any) -> bool:
        pings.append(asyncio.get_running_loop().time())
        return bool(real_ping(dbapi_conn))

    monkeypatch.setattr(dialect, "do_ping", counted_ping)
    try:
        async with aiohttp.ClientSession() as http:
            first = await say_text(http, base, "oPing-1", "你好")
            assert first.reply
            assert await _drop_the_apps_connections(url.rsplit("/", 1)[1]) >= 1
            await asyncio.sleep(0.5)  # idle past PING_AFTER_IDLE
            again = await say_text(http, base, "oPing-1", "你好")
            # answered as usual, not "kept for later": the dead connection was found by the ping and replaced
            assert again.reply == first.reply
            assert app[webhooks.WEBHOOK_HANDLER].spooled == 0
            assert pings
            # back-to-back messages reuse a connection back in the pool moments ago: no ping, no round trip
            pings.clear()
            for _ in range(5):
                await say_text(http, base, "oPing-1", "你好")
            assert not pings
    finally:
        await runner.cleanup()
