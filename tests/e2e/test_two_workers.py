"""Two bot workers on one PostgreSQL and one Redis, as deployed past one machine: a WeChat retry that lands on the
other worker, concurrently, still has exactly one effect."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot import keys
from bot.models import Case, InboundMessage
from tests.conftest import REDIS_AVAILABLE, free_port, make_settings, start_system, stop_system

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def pg_url(pg_template):  # type: ignore[no-untyped-def]
    if pg_template is None:
        pytest.skip("PostgreSQL is not reachable")
    return await pg_template.copy()


async def test_a_retry_on_the_other_worker_has_one_effect(pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not REDIS_AVAILABLE:
        pytest.skip("Redis is not reachable")
    import redis.asyncio as aioredis

    from tests.conftest import REDIS_URL

    r = aioredis.from_url(REDIS_URL)
    await r.flushdb()
    await r.aclose()
    sim_port, port_a, port_b = free_port(), free_port(), free_port()
    closed = f"http://127.0.0.1:{free_port()}"  # keyword NLU: this test is about the workers, not the model
    settings = make_settings(pg_url, tmp_path, rasa_url=closed, sim_port=sim_port, redis_url=REDIS_URL)
    a = await start_system(settings, sim_port=sim_port, bot_port=port_a)
    # worker B: a second app process on the same database and Redis (its own simulator instance is unused)
    b = await start_system(settings, sim_port=free_port(), bot_port=port_b)
    try:
        user_a = a.user(openid="oTwoWorkers000000000001")
        await user_a.send_text("我想要一辆轮椅，住在厚街")
        await user_a.send_text("同意")
        r = await user_a.send_text("不用")
        assert "请核对" in r.text
        # "确认", delivered to both workers at once (a WeChat retry landing on the other worker): one case
        from wechat_sim import protocol

        xml = protocol.text_message(**user_a._common(), content="确认", msg_id=424242)
        params, body = user_a.sign_request(xml)
        user_b = b.user(openid="oTwoWorkers000000000001")
        results = await asyncio.gather(
            user_a.send_raw(params, body), user_b.send_raw(params, body), user_b.send_raw(params, body)
        )
        assert all(res.status == 200 for res in results)
        texts = [res.text for res in results if res.text]
        assert texts and all("MS" in t for t in texts) and len(set(texts)) == 1
        async with a.app[keys.SESSIONS]() as s:
            n = (
                await s.exec(
                    select(func.count())
                    .select_from(InboundMessage)
                    .where(InboundMessage.delivery_key == "msg:424242")
                )
            ).scalar_one()
            cases = (await s.exec(select(func.count()).select_from(Case))).scalar_one()
        assert n == 1
        assert cases == 1
    finally:
        await stop_system(b)
        await stop_system(a)
