"""A per-sender rate limit on chat messages: fixed one-minute windows, in Redis when configured (shared by every
worker), else in this process's memory."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class RateLimiter:
    def __init__(self, *, limit: int, window: int = 60, redis: Any = None, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.redis, self.max_keys = limit, window, redis, max_keys
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()

    async def allow(self, key: str, *, now: float) -> bool:
        """Counts one event for `key` at `now` (the app's clock, seconds); False once `limit` events fell in the
        current window."""
        if self.limit <= 0:
            return True
        slot = int(now // self.window)
        if self.redis is not None:
            name = f"dgj:rate:{key}:{slot}"
            count = await self.redis.incr(name)
            if count == 1:
                await self.redis.expire(name, self.window * 2)
            return int(count) <= self.limit
        seen_slot, count = self._counts.pop(key, (slot, 0))
        count = count + 1 if seen_slot == slot else 1
        self._counts[key] = (slot, count)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        return count <= self.limit
