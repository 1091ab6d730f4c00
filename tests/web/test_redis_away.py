"""Redis away: the bot keeps answering with per-process rate limits and nonces, says so in /readyz, and goes back
to the shared state when Redis returns. The app runs on a real port; Redis is reached through a TCP switch that
cuts and refuses its connections; what is shared is checked in Redis itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.app import create_app
from bot.conversation.inbound import SORRY
from tests.helpers import SIM_TOKEN, TEST_REDIS_URL, TcpSwitch, make_settings, serve, wechat_sender
from webhooks.testing import message_xml

pytestmark = pytest.mark.redis

_msgid = [int(time.time() * 1000)]


def _switched(url: str, port: int) -> str:
    database = url.rsplit("/", 1)[1]
    return f"redis://127.0.0.1:{port}/{database}"


async def say(http: aiohttp.ClientSession, base: str, openid: str, words: str, *, again: Any = None) -> Any:
    sender = wechat_sender(SIM_TOKEN, mode="plain")
    if again is None:
        _msgid[0] += 1
        xml = message_xml(
            {
                "ToUserName": "gh_redis0001",
                "FromUserName": openid,
                "CreateTime": int(time.time()),
                "MsgType": "text",
                "Content": words,
                "MsgId": _msgid[0],
            }
        )
        again = sender.build(xml)
    async with http.post(f"{base}/wechat", params=again.params, data=again.body) as resp:
        assert resp.status == 200
        fields = sender.open_reply(await resp.text())
    return (fields["Content"] if fields else ""), again


async def ready(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{base}/readyz") as resp:
        return resp.status, await resp.json()


@pytest.fixture
async def direct() -> Any:
    client = aioredis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


async def test_redis_away_is_per_process_and_said_in_readyz_then_shared_again(
    sqlite_url: str, tmp_path: Path, direct: Any
) -> None:
    host, port = TEST_REDIS_URL.split("://", 1)[1].split("/", 1)[0].split(":")
    switch = await TcpSwitch(host, int(port)).start()
    settings = make_settings(
        sqlite_url, tmp_path, wechat_encoding_aes_key="", redis_url=_switched(TEST_REDIS_URL, switch.port)
    )
    runner, base = await serve(create_app(settings, run_migrations=False, with_scheduler=False))
    tag = f"oRedis-{time.time_ns()}"
    try:
        async with aiohttp.ClientSession() as http:
            first, _ = await say(http, base, f"{tag}-1", "你好")
            assert first and first != SORRY
            assert await direct.keys(f"dgj:rate:{tag}-1:*")  # the window is shared through Redis
            status, body = await ready(http, base)
            assert status == 200 and body["checks"]["redis"]["mode"] == "shared"

            switch.down()
            reply, request = await say(http, base, f"{tag}-2", "你好")
            assert reply == first  # the same answer as with Redis, not an error and not 'success'
            again, _ = await say(http, base, f"{tag}-2", "你好", again=request)  # WeChat's retry
            assert again == reply
            status, body = await ready(http, base)
            assert status == 200  # still takes traffic
            assert body["degraded"] is True
            assert body["checks"]["redis"] == body["checks"]["redis"] | {"ok": False, "mode": "per-process"}
            assert not await direct.keys(f"dgj:rate:{tag}-2:*")

            switch.up()
            status, body = await ready(http, base)
            assert body["checks"]["redis"]["mode"] == "shared" and body["checks"]["redis"]["ok"] is True
            back, _ = await say(http, base, f"{tag}-3", "你好")
            assert back == first
            assert await direct.keys(f"dgj:rate:{tag}-3:*")  # shared again
    finally:
        await runner.cleanup()
        await switch.close()
