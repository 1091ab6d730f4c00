"""The replicas client in front of the real Rasa server: with one replica refusing connections, every parse is the
real model's answer, `/status` names the real model (no mixed models), and the parse cache keys on it."""

from __future__ import annotations

import aiohttp
import pytest

from bot.conversation.nlu.cache import CachedNLU
from bot.conversation.nlu.rasa import RasaNLU
from bot.conversation.nlu.replicas import RasaReplicas
from tests.helpers import RASA_TOKEN, free_port

pytestmark = pytest.mark.rasa


async def test_real_rasa_behind_the_replicas_client_with_one_replica_refusing(rasa_url: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with aiohttp.ClientSession() as http:
        direct = RasaNLU(base_url=rasa_url, token=RASA_TOKEN, session=http, timeout=10.0)
        nlu = RasaReplicas.from_urls([closed, rasa_url], token=RASA_TOKEN, session=http, timeout=10.0)
        texts = ["查询进度", "我爸中风后走不了路，想要一辆轮椅，我们住在厚街镇", "你好"]
        for text in texts:
            through, alone = await nlu.parse(text), await direct.parse(text)
            assert through.source == "rasa"
            assert (through.intent, through.entities) == (alone.intent, alone.entities)

        status = await nlu.status()
        assert status["model_file"] == (await direct.status())["model_file"]
        assert not status.get("mixed_models") and status["replicas"] == 1
        report = nlu.report()
        assert [r["ok"] for r in report["replicas"]] == [False, True]
        assert report["replicas"][1]["parses"] == len(texts)

        cache = CachedNLU(nlu)
        await cache.parse("查询进度")
        await cache.parse("查询进度")
        assert cache.fingerprint and len(cache) == 1 and cache.hits == 1
