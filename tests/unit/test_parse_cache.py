"""The parse cache stays within its bound, keeps the recently used, caches nothing without a model fingerprint,
and never keeps a parse made by a model that was replaced while it was asked."""

from __future__ import annotations

from typing import Any

from bot.conversation.nlu.cache import CachedNLU, fingerprint_of
from bot.conversation.nlu.types import NLUUnavailable, Parse


class Primary:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.model: str | None = "m1"
        self.meanwhile: Any = None  # something else running while Rasa is asked (a /readyz check)

    async def parse(self, text: str) -> Parse:
        self.asked.append(text)
        if self.meanwhile is not None:
            job, self.meanwhile = self.meanwhile, None
            await job()
        return Parse(text=text, intent="greet", confidence=0.9, entities=(), source="rasa")

    async def status(self) -> dict[str, Any]:
        if self.model is None:
            raise NLUUnavailable("down")
        return {"model_file": f"{self.model}.tar.gz", "model_id": self.model}

    async def ready(self) -> bool:
        return self.model is not None


async def test_bounded_and_least_recently_used_goes_first() -> None:
    primary = Primary()
    cache = CachedNLU(primary, max_entries=2, refresh=1000)
    for text in ("1", "2", "1", "3", "1", "2"):
        await cache.parse(text)
    assert len(cache) == 2
    assert primary.asked == ["1", "2", "3", "2"]  # "2" was the least recently used when "3" came


async def test_nothing_cached_without_a_fingerprint_and_a_new_model_empties_it() -> None:
    primary = Primary()
    primary.model = None
    clock = [0.0]
    cache = CachedNLU(primary, refresh=5, clock=lambda: clock[0])
    await cache.parse("确认")
    await cache.parse("确认")
    assert primary.asked == ["确认", "确认"] and len(cache) == 0
    primary.model = "m1"
    clock[0] = 10
    await cache.parse("确认")
    await cache.parse("确认")
    assert primary.asked.count("确认") == 3
    primary.model = "m2"
    clock[0] = 20
    await cache.parse("确认")
    assert primary.asked.count("确认") == 4


async def test_a_parse_answered_while_the_model_changed_is_not_kept() -> None:
    primary = Primary()
    cache = CachedNLU(primary, refresh=1000)
    await cache.parse("x")  # model m1 known

    async def new_model_seen() -> None:
        primary.model = "m2"
        await cache.ready()  # learns m2 while the parse of "你好" by m1 is under way

    primary.meanwhile = new_model_seen
    await cache.parse("你好")
    await cache.parse("你好")
    assert cache.fingerprint == "m2"
    assert primary.asked.count("你好") == 2  # m1's answer was not kept under m2


def test_fingerprint_of_rasa_status() -> None:
    assert fingerprint_of({"model_id": "abc", "model_file": "x.tar.gz"}) == "abc"
    assert fingerprint_of({"model_file": "x.tar.gz"}) == "x.tar.gz"
    assert fingerprint_of({}) is None and fingerprint_of("nonsense") is None
