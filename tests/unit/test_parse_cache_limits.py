"""The README's parse cache promises (NLU_CACHE_SIZE, NLU_CACHE_REFRESH): parses of texts of at most 12 characters
are kept per model, 0 turns the cache off, the model's fingerprint is asked for at most once per refresh period
(never per message), and a failure is never kept. A small stand-in for Rasa counts what it is asked."""

from __future__ import annotations

from typing import Any

import pytest

from bot.conversation.nlu.cache import CachedNLU
from bot.conversation.nlu.types import NLUUnavailable, Parse


class Rasa:
    def __init__(self) -> None:
        self.parsed: list[str] = []
        self.status_calls = 0
        self.model = "m1"
        self.down = False

    async def parse(self, text: str) -> Parse:
        self.parsed.append(text)
        if self.down:
            raise NLUUnavailable("down")
        return Parse(text=text, intent="greet", confidence=0.9, entities=(), source="rasa")

    async def status(self) -> dict[str, Any]:
        self.status_calls += 1
        return {"model_file": f"{self.model}.tar.gz", "model_id": self.model}

    async def ready(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("1", True),
        ("查询进度", True),
        ("你好你好你好你好你好你好", True),  # 12 characters
        ("你好你好你好你好你好你好呀", False),  # 13
        ("abcdefghijkl", True),
        ("abcdefghijklm", False),
    ],
)
async def test_only_texts_of_at_most_twelve_characters_are_kept(text: str, kept: bool) -> None:
    rasa = Rasa()
    cache = CachedNLU(rasa, clock=Clock())
    first, second = await cache.parse(text), await cache.parse(text)
    assert first == second
    assert rasa.parsed == ([text] if kept else [text, text])
    assert len(cache) == (1 if kept else 0)


async def test_size_zero_turns_the_cache_off() -> None:
    rasa = Rasa()
    cache = CachedNLU(rasa, max_entries=0, clock=Clock())
    for _ in range(3):
        await cache.parse("确认")
    assert rasa.parsed == ["确认"] * 3
    assert len(cache) == 0
    assert rasa.status_calls == 0  # no cache, no reason to ask for the model


async def test_the_model_is_asked_for_at_most_once_per_refresh_period() -> None:
    rasa = Rasa()
    clock = Clock()
    cache = CachedNLU(rasa, refresh=10.0, clock=clock)
    for i in range(50):
        await cache.parse(f"{i % 5}")
        clock.now += 0.1  # 50 messages within 5 seconds
    assert rasa.status_calls == 1
    clock.now = 109.9  # 9.9 s after the first check: still within the period
    await cache.parse("确认")
    assert rasa.status_calls == 1
    clock.now = 110.0  # the period is over: one more check
    await cache.parse("确认")
    await cache.parse("确认")
    assert rasa.status_calls == 2


async def test_a_new_model_is_noticed_at_the_next_check_and_empties_the_cache() -> None:
    rasa = Rasa()
    clock = Clock()
    cache = CachedNLU(rasa, refresh=10.0, clock=clock)
    await cache.parse("确认")
    rasa.model = "m2"
    clock.now += 5
    await cache.parse("确认")  # within the period: the old answer still stands
    assert rasa.parsed == ["确认"]
    clock.now += 5
    await cache.parse("确认")  # checked: a new model, asked afresh
    assert rasa.parsed == ["确认", "确认"]
    assert cache.fingerprint == "m2"


async def test_a_failure_is_not_kept() -> None:
    rasa = Rasa()
    cache = CachedNLU(rasa, clock=Clock())
    rasa.down = True
    with pytest.raises(NLUUnavailable):
        await cache.parse("确认")
    rasa.down = False
    parse = await cache.parse("确认")
    assert parse.intent == "greet"
    assert rasa.parsed == ["确认", "确认"]
