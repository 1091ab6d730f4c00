"""Redis when it answers, this process's memory when it does not.

What the workers share through Redis (rate-limit windows, webhook nonces, the WeChat token and its refresh lock)
must not stop the bot when Redis goes away. :class:`DegradableRedis` stands in for the Redis client: it passes the
few commands the bot uses (GET, SET with NX/EX/PX, INCR, EXPIRE, the lock-release EVAL, PING) to Redis, and when a
command fails for want of a connection it answers it from a small in-process store instead ("per-process" mode,
logged once, shown by ``/readyz``). Redis is tried again after ``retry_after`` seconds (and by every ``/readyz``
probe); the first command that succeeds ends the per-process mode ("shared" again). Keys written in per-process mode
are not copied to Redis: they are short-lived by nature (windows, nonces, a token) and expire on their own."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

RELEASE_LOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


def _unavailable(exc: BaseException) -> bool:
    try:
        # lazy: redis is optional: imported only when a Redis URL is configured
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout  # lazy: as above
    except ImportError:  # pragma: no cover - redis is a dependency
        return isinstance(exc, OSError | asyncio.TimeoutError)
    return isinstance(exc, RedisConnectionError | RedisTimeout | OSError | asyncio.TimeoutError)


class LocalStore:
    """The subset of Redis the bot uses, in memory, with expiry and a bound on the number of keys."""

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self.max_keys = max_keys
        self._clock = clock

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        found = self._data.get(key)
        if found is not None and found[1] is not None and found[1] <= self._clock():
            del self._data[key]
            return None
        return found

    def _put(self, key: str, value: bytes, expires: float | None) -> None:
        self._data[key] = (value, expires)
        self._data.move_to_end(key)
        while len(self._data) > self.max_keys:
            self._data.popitem(last=False)

    @staticmethod
    def _bytes(value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        return str(value).encode("utf-8")

    async def get(self, key: str) -> bytes | None:
        found = self._live(key)
        return None if found is None else found[0]

    async def set(
        self, key: str, value: Any, *, nx: bool = False, ex: int | None = None, px: int | None = None
    ) -> bool | None:
        if nx and self._live(key) is not None:
            return None
        ttl = ex if ex is not None else (px / 1000 if px is not None else None)
        self._put(key, self._bytes(value), None if ttl is None else self._clock() + ttl)
        return True

    async def incr(self, key: str) -> int:
        found = self._live(key)
        count = int(found[0]) + 1 if found is not None else 1
        self._put(key, str(count).encode(), found[1] if found is not None else None)
        return count

    async def expire(self, key: str, seconds: int) -> bool:
        found = self._live(key)
        if found is None:
            return False
        self._put(key, found[0], self._clock() + seconds)
        return True

    async def delete(self, *keys: str) -> int:
        return sum(1 for k in keys if self._data.pop(k, None) is not None)

    async def eval(self, script: str, numkeys: int, *args: Any) -> Any:
        if script.strip() != RELEASE_LOCK or numkeys != 1:
            raise NotImplementedError("only the lock-release script runs without Redis")
        key, owner = args[0], self._bytes(args[1])
        found = self._live(key)
        if found is not None and found[0] == owner:
            return await self.delete(key)
        return None

    async def ping(self) -> bool:
        return True


class DegradableRedis:
    """A Redis client that falls back to :class:`LocalStore` while Redis does not answer."""

    def __init__(
        self, client: Any, *, retry_after: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.local = LocalStore(clock=clock)
        self.retry_after = retry_after
        self._clock = clock
        self.down_since: float | None = None
        self._retry_at = 0.0
        self.last_error: str | None = None

    @property
    def mode(self) -> str:
        return "shared" if self.down_since is None else "per-process"

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "Redis unavailable (%s): rate limits, nonces and the token lock are per process until it returns",
                type(exc).__name__,
            )
        self.last_error = type(exc).__name__
        self._retry_at = now + self.retry_after

    def _succeeded(self) -> None:
        if self.down_since is not None:
            log.warning("Redis answers again: shared state across workers restored")
        self.down_since = None
        self.last_error = None

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        local: Callable[..., Awaitable[Any]] = getattr(self.local, name)
        if self.down_since is not None and self._clock() < self._retry_at:
            return await local(*args, **kwargs)
        try:
            result = await getattr(self.client, name)(*args, **kwargs)
        except Exception as exc:
            if not _unavailable(exc):
                raise
            self._failed(exc)
            return await local(*args, **kwargs)
        self._succeeded()
        return result

    async def get(self, key: str) -> Any:
        return await self._call("get", key)

    async def set(self, key: str, value: Any, **kwargs: Any) -> Any:
        return await self._call("set", key, value, **kwargs)

    async def incr(self, key: str) -> int:
        return int(await self._call("incr", key))

    async def expire(self, key: str, seconds: int) -> Any:
        return await self._call("expire", key, seconds)

    async def delete(self, *keys: str) -> Any:
        return await self._call("delete", *keys)

    async def eval(self, script: str, numkeys: int, *args: Any) -> Any:
        return await self._call("eval", script, numkeys, *args)

    async def ping(self) -> bool:
        """Always asks Redis (the readiness probe is what notices its return); raises when it does not answer."""
        try:
            result = await self.client.ping()
        except Exception as exc:
            if _unavailable(exc):
                self._failed(exc)
            raise
        self._succeeded()
        return bool(result)

    async def aclose(self) -> None:
        await self.client.aclose()


__all__ = ["DegradableRedis", "LocalStore"]
