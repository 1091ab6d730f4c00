"""Several Rasa replicas as one NLU: parses go round robin, a failing or slow replica hands the parse to the next
within the same budget and then rests, and replicas that serve different models turn the parse cache off."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.conversation.nlu.cache import CachedNLU, fingerprint_of
from bot.conversation.nlu.replicas import RasaReplicas, replica_report
from bot.conversation.nlu.types import NLUUnavailable, Parse
from bot.settings import Settings


class FakeReplica:
    def __init__(self, name: str, *, model: str | None = "m1") -> None:
        self.base_url = f"http://user:pw@{name}:5005"
        self.name = name
        self.model = model
        self.mode = "ok"  # ok | fail | stall | slow
        self.asked: list[str] = []
        self.timeouts: list[float | None] = []

    async def parse(self, text: str, *, timeout: float | None = None) -> Parse:
        self.asked.append(text)
        self.timeouts.append(timeout)
        if self.mode == "fail":
            raise NLUUnavailable(f"{self.name} refused")
        if self.mode == "stall":
            await asyncio.sleep(30)
        if self.mode == "slow":
            await asyncio.sleep(0.3)
        return Parse(text=text, intent="greet", confidence=0.9, entities=(), source=self.name)

    async def parse_raw(self, text: str, *, timeout: float | None = None) -> dict[str, Any]:
        parse = await self.parse(text, timeout=timeout)
        return {
            "text": text,
            "intent": {"name": parse.intent, "confidence": parse.confidence},
            "by": self.name,
        }

    async def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        if self.mode == "fail":
            raise NLUUnavailable(f"{self.name} refused")
        if self.mode == "stall":
            await asyncio.sleep(30)
        if self.model is None:
            return {"model_file": None, "model_id": None}
        return {"model_file": f"{self.model}.tar.gz", "model_id": self.model}


def replicas(*names: str, clock: Any = None, timeout: float = 2.0) -> tuple[RasaReplicas, list[FakeReplica]]:
    fakes = [FakeReplica(n) for n in names]
    kwargs = {"clock": clock} if clock is not None else {}
    return RasaReplicas(fakes, timeout=timeout, retry_after=5.0, **kwargs), fakes


async def test_parses_go_round_robin() -> None:
    nlu, (a, b, c) = replicas("a", "b", "c")
    answered = [(await nlu.parse(str(i))).source for i in range(6)]
    assert answered == ["a", "b", "c", "a", "b", "c"]
    assert (await nlu.parse_raw("x"))["by"] == "a"


async def test_a_failing_replica_hands_the_parse_to_the_next_and_rests() -> None:
    clock = [100.0]
    nlu, (a, b) = replicas("a", "b", clock=lambda: clock[0])
    a.mode = "fail"
    assert (await nlu.parse("1")).source == "b"  # a refused, b answered the same parse
    assert a.asked == ["1"]
    for i in range(4):  # a rests: every parse goes to b, a is not asked
        assert (await nlu.parse(f"r{i}")).source == "b"
    assert a.asked == ["1"]
    report = nlu.report()
    assert report["ok"] is False
    assert [r["ok"] for r in report["replicas"]] == [False, True]
    assert report["replicas"][0]["url"] == "http://a:5005"  # no user or password shown
    assert "refused" in report["replicas"][0]["last_error"]

    clock[0] += 5.1  # the rest is over: a takes its turn again, and answers
    a.mode = "ok"
    answered = [(await nlu.parse(f"s{i}")).source for i in range(4)]
    assert sorted(answered) == ["a", "a", "b", "b"]
    assert nlu.report()["ok"] is True


async def test_a_resting_replica_is_still_asked_when_the_others_fail() -> None:
    clock = [0.0]
    nlu, (a, b) = replicas("a", "b", clock=lambda: clock[0])
    a.mode = "fail"
    await nlu.parse("1")  # a now rests
    a.mode, b.mode = "ok", "fail"
    assert (await nlu.parse("2")).source == "a"  # b failed; resting a is better than no answer


async def test_all_failing_is_unavailable() -> None:
    nlu, fakes = replicas("a", "b")
    for f in fakes:
        f.mode = "fail"
    with pytest.raises(NLUUnavailable, match="no Rasa replica answered"):
        await nlu.parse("1")
    assert not await nlu.ready()


async def test_a_stalled_replica_gets_its_share_of_the_budget_and_the_next_answers_within_it() -> None:
    nlu, (a, b) = replicas("a", "b", timeout=0.4)
    a.mode = "stall"
    started = time.monotonic()
    parse = await nlu.parse("1")
    took = time.monotonic() - started
    assert parse.source == "b"
    assert 0.15 < took < 0.4  # a had half of the budget, b the rest
    assert a.timeouts[0] == pytest.approx(0.2, abs=0.02)  # the client's own timeout is its share too
    assert b.timeouts[0] is not None and b.timeouts[0] <= 0.21


def test_the_first_attempt_keeps_all_but_a_reserve_for_the_others() -> None:
    nlu, _ = replicas("a", "b", "c")
    assert nlu.share(2.0, untried=2) == pytest.approx(1.5)  # the default budget, two replicas
    assert nlu.share(2.0, untried=3) == pytest.approx(1.0)
    assert nlu.share(0.4, untried=2) == pytest.approx(0.2)  # a small budget: at most an equal split
    assert nlu.share(0.7, untried=1) == pytest.approx(0.7)  # the last one gets all that is left


async def test_a_replica_slower_than_an_equal_split_still_answers() -> None:
    fakes = [FakeReplica("a"), FakeReplica("b")]
    nlu = RasaReplicas(fakes, timeout=0.5, reserve=0.1)
    fakes[0].mode = "slow"  # 0.3 s: more than half of the budget, less than all but the reserve
    assert (await nlu.parse("1")).source == "a"
    assert fakes[1].asked == [] and nlu.report()["replicas"][0]["failures"] == 0


async def test_both_stalled_stay_within_one_budget() -> None:
    nlu, fakes = replicas("a", "b", timeout=0.3)
    for f in fakes:
        f.mode = "stall"
    started = time.monotonic()
    with pytest.raises(NLUUnavailable):
        await nlu.parse("1")
    assert time.monotonic() - started < 0.4


async def test_status_asks_every_replica_and_marks_one_without_a_model() -> None:
    nlu, (a, b) = replicas("a", "b")
    b.model = None
    status = await nlu.status()
    assert status["model_file"] == "m1.tar.gz" and status["replicas"] == 1
    assert [r["ok"] for r in nlu.report()["replicas"]] == [True, False]
    assert (await nlu.parse("1")).source == "a"  # the one without a model rests
    assert (await nlu.parse("2")).source == "a"


async def test_replicas_with_different_models_turn_the_cache_off_until_they_agree() -> None:
    clock = [0.0]
    nlu, (a, b) = replicas("a", "b")
    cache = CachedNLU(nlu, refresh=5, clock=lambda: clock[0])
    for _ in range(4):
        await cache.parse("确认")
    assert len(a.asked) + len(b.asked) == 1  # one model: cached after the first parse
    assert cache.fingerprint == "m1"

    b.model = "m2"  # a rolling update: b serves the new model, a the old one
    clock[0] = 10
    for _ in range(4):
        await cache.parse("确认")
    assert len(a.asked) + len(b.asked) == 5  # nothing cached while they disagree
    assert cache.fingerprint is None and len(cache) == 0
    assert await cache.ready()  # they still answer: the bot is ready, with Rasa
    report = nlu.report()
    assert report["models_agree"] is False and report["ok"] is False
    assert {r["model"] for r in report["replicas"]} == {"m1", "m2"}

    a.model = "m2"  # the update is done
    clock[0] = 20
    for _ in range(4):
        await cache.parse("确认")
    assert len(a.asked) + len(b.asked) == 6
    assert cache.fingerprint == "m2" and nlu.report()["ok"] is True


def test_mixed_models_have_no_fingerprint() -> None:
    assert fingerprint_of({"model_file": "a.tar.gz", "model_id": "a", "mixed_models": True}) is None
    assert fingerprint_of({"model_file": "a.tar.gz", "model_id": "a"}) == "a"


def test_the_report_is_found_through_the_fallback_and_the_cache() -> None:
    from bot.conversation.nlu import FallbackNLU, KeywordNLU

    nlu, _ = replicas("a", "b")
    stack = FallbackNLU(primary=CachedNLU(nlu), fallback=KeywordNLU())
    report = replica_report(stack)
    assert report is not None and len(report["replicas"]) == 2
    assert replica_report(FallbackNLU(primary=CachedNLU(FakeReplica("x")), fallback=KeywordNLU())) is None


def test_rasa_url_names_one_or_several_replicas() -> None:
    assert Settings(rasa_url="").rasa_bases == ["http://127.0.0.1:5005"]
    assert Settings(rasa_url="http://rasa:5005/").rasa_bases == ["http://rasa:5005"]
    several = Settings(rasa_url=" http://rasa-a:5005, http://rasa-b:5005/ ,")
    assert several.rasa_bases == ["http://rasa-a:5005", "http://rasa-b:5005"]
    assert several.rasa_base == "http://rasa-a:5005"
    with pytest.raises(ValueError, match="RASA_URL"):
        Settings(rasa_url="http://rasa-a:5005,rasa-b:5005")
