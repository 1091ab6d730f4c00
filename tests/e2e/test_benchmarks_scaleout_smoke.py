"""The scale-out benchmark and the rising-rate driver stay runnable: a tiny load through two real bot workers on
PostgreSQL with Redis (their audit finds every message), and the open-loop driver keeps its rate."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.full import paced
from benchmarks.scaleout import _crypto_app, run_scaleout
from benchmarks.webhook import free_port
from tests.helpers import postgres_reachable, redis_reachable

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def test_two_workers_share_the_load_and_lose_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    if not (postgres_reachable() and redis_reachable()):
        pytest.skip("PostgreSQL and Redis are needed")
    args = argparse.Namespace(
        workers=[2], senders=4, messages=3, seed=7, rasa=False, rasa_replicas=[], rasa_model=None
    )
    results = await run_scaleout(args)
    assert results["crypto_rps"] > 0 and results["bot2_rps"] > 0
    assert results["bot2_lost"] == 0 and results["bot2_duplicated"] == 0
    assert results["bot2_rss_mb"] > 0
    out = capsys.readouterr().out
    assert "CPU split over the workers" in out  # both workers measured


async def test_the_open_loop_driver_sends_at_the_rate_asked() -> None:
    from aiohttp import web

    runner = web.AppRunner(_crypto_app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        run = await paced(url=f"http://127.0.0.1:{port}/wechat", label="echo", rate=40, seconds=1.5, seed=3)
    finally:
        await runner.cleanup()
    assert 50 <= run.messages <= 70  # 40/s for 1.5 s
    assert run.errors == 0 and all(d.reply for d in run.deliveries)  # the echo decrypted and answered each
