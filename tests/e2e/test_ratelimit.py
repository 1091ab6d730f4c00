"""Flooding: a resident over the per-minute limit is told to slow down; the messages are kept, not processed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import keys
from bot.conversation.inbound import TOO_FAST
from bot.conversation.ratelimit import RateLimiter
from bot.models import InboundMessage
from tests.helpers import TEST_REDIS_URL, running_system


async def test_memory_windows() -> None:
    rl = RateLimiter(limit=2, window=60)
    assert [await rl.allow("a", now=0), await rl.allow("a", now=1), await rl.allow("a", now=2)] == [
        True,
        True,
        False,
    ]
    assert await rl.allow("b", now=2) is True  # per sender
    assert await rl.allow("a", now=61) is True  # a new window


@pytest.mark.redis
async def test_redis_windows_are_shared() -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(TEST_REDIS_URL)
    key = uuid.uuid4().hex
    try:
        one, two = RateLimiter(limit=2, redis=client), RateLimiter(limit=2, redis=client)  # two workers
        assert [await one.allow(key, now=0), await two.allow(key, now=1), await one.allow(key, now=2)] == [
            True,
            True,
            False,
        ]
        assert await two.allow(key, now=60) is True
    finally:
        await client.aclose()


async def test_flooding_is_answered_and_kept(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_system(sqlite_url, tmp_path, messages_per_minute=3) as system:
        # the app's clock, not the wall clock, decides the window: every message at 1 s into a minute, so the four
        # cannot straddle a minute boundary however slowly the machine runs
        start = system.clock().replace(second=1, microsecond=0) + timedelta(minutes=1)

        def at(t: datetime) -> None:
            system.clock.offset = t - datetime.now(UTC)

        user = system.user()
        replies = []
        for i in range(4):
            at(start)
            replies.append((await user.send_text(f"你好{i}")).text)
        assert all(r != TOO_FAST for r in replies[:3]) and replies[3] == TOO_FAST
        async with system.app[keys.SESSIONS]() as s:
            rows = (await s.exec(select(InboundMessage).order_by(InboundMessage.id))).scalars().all()
        assert (
            [r.reply_mode for r in rows][-1] == "limited"
            and rows[-1].text == "你好3"
            and rows[-1].intent is None
        )
        # a minute later (by the app's clock) the resident is heard again
        at(start + timedelta(minutes=1))
        assert (await user.send_text("你好5")).text != TOO_FAST
