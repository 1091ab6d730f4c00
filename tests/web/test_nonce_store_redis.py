"""webhooks.nonces.RedisNonceStore on a real Redis: the replay memory every worker shares.

What it promises (webhooks/views.py, step 8): the first claim of a (nonce, timestamp) pair records its fingerprint
for ``ttl`` seconds and answers None; every later claim answers the first fingerprint; the key is
``<prefix><timestamp>:<nonce>``, so workers of one deployment (and of the next version, during a rolling restart)
find each other's nonces. The race where the key expires between the failed SET and the GET is driven here with a
real Redis client whose calls are interleaved by hand.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis_asyncio

from tests.helpers import TEST_REDIS_URL
from webhooks import RedisNonceStore

pytestmark = pytest.mark.redis


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    # reachability is checked by tests/conftest.py require_redis (the module's `redis` marker)
    redis = redis_asyncio.Redis.from_url(TEST_REDIS_URL)
    yield redis
    await redis.aclose()


@pytest.fixture
def nonce() -> str:
    return f"nonce-{time.time_ns()}"


@pytest.fixture
async def cleanup(client: Any) -> AsyncIterator[list[str]]:
    keys: list[str] = []
    yield keys
    if keys:
        await client.delete(*keys)


async def test_first_claim_records_the_fingerprint_under_the_shared_key(
    client: Any, nonce: str, cleanup: list[str]
) -> None:
    store = RedisNonceStore(client)
    key = f"wechat:nonce:1409735669:{nonce}"
    cleanup.append(key)
    assert await store.claim(nonce, "1409735669", "fp-first", ttl=30) is None
    assert await client.get(key) == b"fp-first"
    assert 25 <= await client.ttl(key) <= 30


async def test_later_claims_answer_the_first_fingerprint_as_text(
    client: Any, nonce: str, cleanup: list[str]
) -> None:
    prefix = f"test:{nonce}:"
    cleanup.append(f"{prefix}1:{nonce}")
    store = RedisNonceStore(client, prefix=prefix)
    assert await store.claim(nonce, "1", "fp-a", ttl=30) is None
    assert await store.claim(nonce, "1", "fp-a", ttl=30) == "fp-a"  # WeChat retrying
    assert await store.claim(nonce, "1", "fp-b", ttl=30) == "fp-a"  # a replay with another body
    assert await client.get(f"{prefix}1:{nonce}") == b"fp-a"  # not overwritten


async def test_a_client_that_decodes_answers_the_same(nonce: str) -> None:
    decoding = redis_asyncio.Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    try:
        prefix = f"test:{nonce}:"
        store = RedisNonceStore(decoding, prefix=prefix)
        assert await store.claim(nonce, "7", "指纹", ttl=30) is None
        assert await store.claim(nonce, "7", "other", ttl=30) == "指纹"
        await decoding.delete(f"{prefix}7:{nonce}")
    finally:
        await decoding.aclose()


@pytest.mark.parametrize("ttl", [0, -5])
async def test_a_ttl_below_one_second_still_expires_after_one(
    client: Any, nonce: str, cleanup: list[str], ttl: int
) -> None:
    prefix = f"test:{nonce}:"
    cleanup.append(f"{prefix}1:{nonce}")
    store = RedisNonceStore(client, prefix=prefix)
    assert await store.claim(nonce, "1", "fp", ttl=ttl) is None
    assert await client.ttl(f"{prefix}1:{nonce}") == 1


async def test_pairs_are_told_apart_by_nonce_and_by_timestamp(
    client: Any, nonce: str, cleanup: list[str]
) -> None:
    prefix = f"test:{nonce}:"
    cleanup.extend([f"{prefix}1:{nonce}", f"{prefix}2:{nonce}", f"{prefix}1:{nonce}x"])
    store = RedisNonceStore(client, prefix=prefix)
    assert await store.claim(nonce, "1", "a", ttl=30) is None
    assert await store.claim(nonce, "2", "b", ttl=30) is None
    assert await store.claim(nonce + "x", "1", "c", ttl=30) is None
    assert await store.claim(nonce, "2", "z", ttl=30) == "b"


async def test_seen_is_a_claim_without_a_fingerprint(client: Any, nonce: str, cleanup: list[str]) -> None:
    prefix = f"test:{nonce}:"
    cleanup.extend([f"{prefix}1:{nonce}", f"{prefix}2:{nonce}"])
    store = RedisNonceStore(client, prefix=prefix)
    assert await store.seen(nonce, "1", ttl=30) is False
    assert await store.seen(nonce, "1", ttl=30) is True
    assert await store.seen(nonce, "2", ttl=30) is False
    assert await client.get(f"{prefix}1:{nonce}") == b""
    assert 25 <= await client.ttl(f"{prefix}1:{nonce}") <= 30


class Interleaved:
    """The real client, with a hook run before the n-th call of a command (another worker acting meanwhile)."""

    def __init__(self, redis: Any, hooks: dict[tuple[str, int], Callable[[], Awaitable[Any]]]) -> None:
        self._redis = redis
        self._hooks = hooks
        self._calls: dict[str, int] = {}

    def _wrap(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] = self._calls.get(name, 0) + 1
            hook = self._hooks.get((name, self._calls[name]))
            if hook is not None:
                await hook()
            return await getattr(self._redis, name)(*args, **kwargs)

        return call

    @property
    def set(self) -> Callable[..., Awaitable[Any]]:
        return self._wrap("set")

    @property
    def get(self) -> Callable[..., Awaitable[Any]]:
        return self._wrap("get")


async def test_a_key_that_expires_between_set_and_get_makes_this_request_the_first(
    client: Any, nonce: str, cleanup: list[str]
) -> None:
    prefix = f"test:{nonce}:"
    key = f"{prefix}1:{nonce}"
    cleanup.append(key)
    await client.set(key, "fp-old", ex=30)
    raced = Interleaved(client, {("get", 1): lambda: client.delete(key)})
    store = RedisNonceStore(raced, prefix=prefix)  # type: ignore[arg-type]
    assert await store.claim(nonce, "1", "fp-new", ttl=30) is None
    assert await client.get(key) == b"fp-new"
    assert 25 <= await client.ttl(key) <= 30


async def test_when_another_worker_wins_the_second_set_its_fingerprint_is_answered(
    client: Any, nonce: str, cleanup: list[str]
) -> None:
    prefix = f"test:{nonce}:"
    key = f"{prefix}1:{nonce}"
    cleanup.append(key)
    await client.set(key, "fp-old", ex=30)
    raced = Interleaved(
        client,
        {
            ("get", 1): lambda: client.delete(key),  # expired after our first SET
            ("set", 2): lambda: client.set(
                key, "fp-other", ex=30
            ),  # another worker claims before our second SET
        },
    )
    store = RedisNonceStore(raced, prefix=prefix)  # type: ignore[arg-type]
    assert await store.claim(nonce, "1", "fp-mine", ttl=30) == "fp-other"
    assert await client.get(key) == b"fp-other"


async def test_a_key_gone_for_good_after_the_second_set_answers_an_empty_fingerprint(
    client: Any, nonce: str, cleanup: list[str]
) -> None:
    # another worker's key exists at both SETs and has expired at both GETs: neither first nor a known message
    prefix = f"test:{nonce}:"
    key = f"{prefix}1:{nonce}"
    cleanup.append(key)
    await client.set(key, "fp-old", ex=30)
    raced = Interleaved(
        client,
        {
            ("get", 1): lambda: client.delete(key),
            ("set", 2): lambda: client.set(key, "fp-other", ex=30),
            ("get", 2): lambda: client.delete(key),
        },
    )
    store = RedisNonceStore(raced, prefix=prefix)  # type: ignore[arg-type]
    assert await store.claim(nonce, "1", "fp-mine", ttl=30) == ""


async def test_the_race_path_keeps_the_one_second_floor(client: Any, nonce: str, cleanup: list[str]) -> None:
    prefix = f"test:{nonce}:"
    key = f"{prefix}1:{nonce}"
    cleanup.append(key)
    await client.set(key, "fp-old", ex=30)
    raced = Interleaved(client, {("get", 1): lambda: client.delete(key)})
    store = RedisNonceStore(raced, prefix=prefix)  # type: ignore[arg-type]
    assert await store.claim(nonce, "1", "fp-new", ttl=0) is None
    assert await client.ttl(key) == 1


async def test_a_stored_value_that_is_not_utf8_is_answered_not_raised(
    client: Any, nonce: str, cleanup: list[str]
) -> None:
    # whatever another writer left under the key, the claim answers a fingerprint (which then matches no message)
    prefix = f"test:{nonce}:"
    key = f"{prefix}1:{nonce}"
    cleanup.append(key)
    await client.set(key, b"fp\xff\xfe", ex=30)
    store = RedisNonceStore(client, prefix=prefix)
    assert await store.claim(nonce, "1", "fp", ttl=30) == "fp\ufffd\ufffd"
