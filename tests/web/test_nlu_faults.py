"""Rasa slow, failing or talking nonsense: the keyword path answers within the reply budget; repeated short texts
are answered from the parse cache of the model's fingerprint, and a new model empties it.

The whole app runs on a real port; Rasa is a stand-in server on another real port that answers like Rasa's HTTP
API, stalls, answers 500 or garbage on request, and counts what it was asked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text as sql

from bot import keys
from bot.app import create_app
from tests.helpers import RasaStandIn, make_settings, say_text, serve


@pytest.fixture
async def running(sqlite_url: str, tmp_path: Path) -> Any:
    rasa = RasaStandIn()
    rasa_runner, rasa_base = await serve(rasa.app())
    settings = make_settings(
        sqlite_url,
        tmp_path,
        rasa_url=rasa_base,
        wechat_encoding_aes_key="",
        nlu_cache_refresh=0.2,
        messages_per_minute=1000,
    )
    app = create_app(settings, run_migrations=False, with_scheduler=False)
    runner, base = await serve(app)
    yield rasa, app, base
    rasa.released.set()
    await runner.cleanup()
    await rasa_runner.cleanup()


async def say(base: str, openid: str, words: str) -> tuple[str, float]:
    async with aiohttp.ClientSession() as http:
        said = await say_text(http, base, openid, words, account="gh_nlu0001")
    return said.reply, said.seconds


async def sources(app: web.Application) -> list[str]:
    async with app[keys.SESSIONS]() as s:
        return [r[0] for r in (await s.exec(sql("SELECT nlu_source FROM inboundmessage ORDER BY id"))).all()]


@pytest.mark.parametrize("mode", ["stall", "500", "garbage", "wrong_shape"])
async def test_a_failing_rasa_leaves_the_answer_to_the_keyword_path_within_the_budget(
    running: Any, mode: str
) -> None:
    rasa, app, base = running
    rasa.mode = mode
    reply, took = await say(base, "oNlu-1", "查询进度")
    assert reply, "a passive reply, not 'success'"
    assert took < app[keys.SETTINGS].wechat_reply_budget
    assert rasa.parsed["查询进度"] == 1  # Rasa was asked (and failed), the keyword rules answered
    assert await sources(app) == ["keyword"]


async def test_repeated_short_texts_come_from_the_cache_until_the_model_changes(running: Any) -> None:
    rasa, app, base = running
    for who in ("oNlu-1", "oNlu-2", "oNlu-3"):
        assert (await say(base, who, "1"))[0]
        assert (await say(base, who, "确认"))[0]
    assert rasa.parsed["1"] == 1 and rasa.parsed["确认"] == 1
    assert await sources(app) == ["rasa"] * 6  # still Rasa's answer, from its cache

    long_text = "我家老人腿脚不便想申请上门理发服务"
    await say(base, "oNlu-1", long_text)
    await say(base, "oNlu-2", long_text)
    assert rasa.parsed[long_text] == 2  # long texts are never cached

    rasa.fingerprint = "model-2"  # a newly trained model is loaded
    await asyncio.sleep(0.3)  # past the fingerprint's refresh interval
    await say(base, "oNlu-4", "1")
    await say(base, "oNlu-5", "1")
    assert rasa.parsed["1"] == 2  # asked afresh once, then cached again
