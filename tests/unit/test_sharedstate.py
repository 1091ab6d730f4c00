"""The per-process stand-in for Redis: NX, expiry, INCR windows, the owner-only lock release, the bound; and the
switch between Redis and it."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bot.sharedstate import RELEASE_LOCK, DegradableRedis, LocalStore


async def test_local_store_set_nx_expiry_incr_and_lock_release() -> None:
    now = [0.0]
    store = LocalStore(max_keys=3, clock=lambda: now[0])
    assert await store.set("lock", "me", nx=True, px=1000)
    assert await store.set("lock", "you", nx=True, px=1000) is None
    assert await store.eval(RELEASE_LOCK, 1, "lock", "you") is None  # not the owner
    assert await store.get("lock") == b"me"
    assert await store.eval(RELEASE_LOCK, 1, "lock", "me") == 1
    assert await store.incr("w") == 1 and await store.incr("w") == 2
    await store.expire("w", 60)
    now[0] = 61
    assert await store.incr("w") == 1  # the window expired
    for k in ("a", "b", "c", "d"):
        await store.set(k, 1)
    assert await store.get("w") is None and await store.get("d") == b"1"  # bounded: the oldest went


class FlakyRedis:
    def __init__(self) -> None:
        self.up = True
        self.data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        if not self.up:
            raise RedisConnectionError("refused")
        return self.data.get(key)

    async def set(self, key: str, value: Any, **_: Any) -> bool:
        if not self.up:
            raise RedisConnectionError("refused")
        if key == "bad":
            raise ResponseError("WRONGTYPE")
        self.data[key] = value
        return True

    async def ping(self) -> bool:
        if not self.up:
            raise RedisConnectionError("refused")
        return True


async def test_falls_back_while_away_retries_later_and_shares_again() -> None:
    now = [0.0]
    redis = FlakyRedis()
    shared = DegradableRedis(redis, retry_after=5, clock=lambda: now[0])
    await shared.set("k", "v1")
    assert shared.mode == "shared" and redis.data == {"k": "v1"}
    redis.up = False
    await shared.set("k", "v2")
    assert shared.mode == "per-process" and await shared.get("k") == b"v2"
    redis.up = True
    now[0] = 1  # before the retry time: still local, Redis not asked
    await shared.set("k", "v3")
    assert redis.data == {"k": "v1"}
    now[0] = 6
    await shared.set("k", "v4")
    assert shared.mode == "shared" and redis.data == {"k": "v4"}
    with pytest.raises(ResponseError):  # a wrong command is not "Redis is away"
        await shared.set("bad", "x")
    assert shared.mode == "shared"
