"""Replay memory for webhook requests: in process (bounded, TTL) or shared through Redis."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis


class MemoryNonceStore:
    """One process's memory of recent (nonce, timestamp) pairs; the oldest go first when full."""

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._entries: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def _purge(self, now: float) -> None:
        # Entries are kept in insertion order and all TTLs are alike, so expired ones sit at the front.
        while self._entries:
            _, (_, expires) = next(iter(self._entries.items()))
            if expires > now:
                break
            self._entries.popitem(last=False)

    async def claim(self, nonce: str, timestamp: str, fingerprint: str, ttl: int) -> str | None:
        now = self._clock()
        self._purge(now)
        pair = (nonce, timestamp)
        found = self._entries.get(pair)
        if found is not None and found[1] > now:
            return found[0]
        self._entries[pair] = (fingerprint, now + ttl)
        self._entries.move_to_end(pair)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return None

    async def seen(self, nonce: str, timestamp: str, ttl: int) -> bool:
        return await self.claim(nonce, timestamp, "", ttl) is not None


class RedisNonceStore:
    """Nonces shared by every worker: ``SET key fingerprint NX EX ttl``, then ``GET`` when it existed."""

    def __init__(self, redis: Redis[Any], *, prefix: str = "wechat:nonce:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, nonce: str, timestamp: str) -> str:
        return f"{self._prefix}{timestamp}:{nonce}"

    async def claim(self, nonce: str, timestamp: str, fingerprint: str, ttl: int) -> str | None:
        key = self._key(nonce, timestamp)
        if await self._redis.set(key, fingerprint, nx=True, ex=max(1, ttl)):
            return None
        existing = await self._redis.get(key)
        if existing is None:  # expired between SET and GET: this request is the first again
            if await self._redis.set(key, fingerprint, nx=True, ex=max(1, ttl)):
                return None
            existing = await self._redis.get(key)
        if isinstance(existing, bytes):
            return existing.decode("utf-8", "replace")
        return "" if existing is None else str(existing)

    async def seen(self, nonce: str, timestamp: str, ttl: int) -> bool:
        return await self.claim(nonce, timestamp, "", ttl) is not None
