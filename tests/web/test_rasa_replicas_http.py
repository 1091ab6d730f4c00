"""Two Rasa replicas on real ports, one of them refusing connections or stalling: the bot's parses reach the one
that answers within the budget, the whole app's replies come from Rasa (not the keyword fallback), and /readyz
lists each replica with its state.

The replicas are stand-in servers that answer like Rasa's HTTP API (``GET /status``, ``POST /model/parse``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text as sql

from bot import keys
from bot.app import create_app
from bot.conversation.nlu.replicas import RasaReplicas
from tests.helpers import RASA_TOKEN, RasaStandIn, free_port, make_settings, say_text, serve


@pytest.fixture
async def two() -> Any:
    a, b = RasaStandIn(), RasaStandIn()  # two replicas of one model
    runners = []
    bases = []
    for replica in (a, b):
        runner, base = await serve(replica.app())
        runners.append(runner)
        bases.append(base)
    yield (a, bases[0]), (b, bases[1])
    for replica in (a, b):
        replica.released.set()
    for runner in runners:
        await runner.cleanup()


async def test_a_stalled_replica_leaves_the_parse_to_the_other_within_the_budget(two: Any) -> None:
    (a, a_base), (b, b_base) = two
    a.mode = "stall"
    async with aiohttp.ClientSession() as http:
        nlu = RasaReplicas.from_urls([a_base, b_base], token=RASA_TOKEN, session=http, timeout=1.0)
        started = time.monotonic()
        parse = await nlu.parse("你好")
        took = time.monotonic() - started
        assert parse.source == "rasa" and parse.intent == "greet"
        assert a.parsed["你好"] == 1 and b.parsed["你好"] == 1  # a was asked first, b answered
        assert 0.4 < took < 1.0  # a's half of the budget, then b at once
        for i in range(3):  # a rests: the next parses go straight to b
            started = time.monotonic()
            await nlu.parse(f"再问{i}")
            assert time.monotonic() - started < 0.4
        assert sum(a.parsed.values()) == 1
        report = nlu.report()
        assert [r["ok"] for r in report["replicas"]] == [False, True]
        assert "timed out" in report["replicas"][0]["last_error"]  # the client's own timeout: its share


async def test_a_refusing_replica_is_skipped_and_both_are_used_when_both_answer(two: Any) -> None:
    (a, a_base), _ = two
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused
    async with aiohttp.ClientSession() as http:
        nlu = RasaReplicas.from_urls([closed, a_base], token=RASA_TOKEN, session=http, timeout=2.0)
        started = time.monotonic()
        for i in range(4):
            assert (await nlu.parse(f"第{i}句")).intent == "greet"
        assert time.monotonic() - started < 1.0  # a refusal costs nothing like the budget
        assert sum(a.parsed.values()) == 4
        assert not (await nlu.status()).get("mixed_models")
        assert [r["ok"] for r in nlu.report()["replicas"]] == [False, True]


async def test_parses_are_spread_over_two_live_replicas(two: Any) -> None:
    (a, a_base), (b, b_base) = two
    async with aiohttp.ClientSession() as http:
        nlu = RasaReplicas.from_urls([a_base, b_base], token=RASA_TOKEN, session=http)
        for i in range(10):
            await nlu.parse(f"第{i}句")
    assert sum(a.parsed.values()) == 5 and sum(b.parsed.values()) == 5


async def _say(base: str, openid: str, words: str, msg_id: int) -> str:
    async with aiohttp.ClientSession() as http:
        return (await say_text(http, base, openid, words, msgid=msg_id, account="gh_replica01")).reply


async def test_the_app_answers_with_rasa_past_a_stalled_replica_and_readyz_lists_both(
    two: Any, sqlite_url: str, tmp_path: Path
) -> None:
    (a, a_base), (b, b_base) = two
    a.mode = "stall"
    settings = make_settings(
        sqlite_url,
        tmp_path,
        rasa_url=f"{a_base},{b_base}",
        rasa_timeout=1.0,
        wechat_encoding_aes_key="",
        messages_per_minute=1000,
    )
    app = create_app(settings, run_migrations=False, with_scheduler=False)
    runner, base = await serve(app)
    try:
        msg_id = int(time.time() * 1000)
        for i, words in enumerate(["我家老人想申请上门理发服务", "查询进度我上周提交的申请"]):
            assert await _say(base, f"oReplica-{i}", words, msg_id + i)
        async with app[keys.SESSIONS]() as s:
            rows = (await s.exec(sql("SELECT nlu_source FROM inboundmessage ORDER BY id"))).all()
        assert [r[0] for r in rows] == ["rasa", "rasa"]  # not the keyword fallback
        assert sum(b.parsed.values()) == 2

        async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as resp:
            assert resp.status == 200
            body = await resp.json()
        nlu = body["checks"]["nlu"]
        assert body["degraded"] is True  # one replica down is said, the bot stays in rotation
        assert nlu["fallback"] is None and nlu["models_agree"] is True
        assert [(r["url"], r["ok"]) for r in nlu["replicas"]] == [(a_base, False), (b_base, True)]
    finally:
        await runner.cleanup()
