"""Two bot workers on one PostgreSQL and one Redis, as deployed past one machine: a WeChat retry that lands on the
other worker, concurrently, still has exactly one effect."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot import keys
from bot.models import Case, InboundMessage
from tests.helpers import (
    NOWHERE,
    TEST_REDIS_URL,
    bound_socket,
    make_settings,
    port_of,
    start_system,
    stop_system,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def pg_url(pg_template):  # type: ignore[no-untyped-def]
    return await pg_template.copy()


async def test_a_retry_on_the_other_worker_has_one_effect(pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import redis.asyncio as aioredis

    r = aioredis.from_url(TEST_REDIS_URL)
    await r.flushdb()
    await r.aclose()
    sim_sock = bound_socket()
    # keyword NLU (Rasa unreachable): this test is about the workers, not the model
    settings = make_settings(
        pg_url, tmp_path, rasa_url=NOWHERE, sim_port=port_of(sim_sock), redis_url=TEST_REDIS_URL
    )
    a = await start_system(settings, sim_sock=sim_sock, bot_sock=bound_socket())
    # worker B: a second app process on the same database and Redis (its own simulator instance is unused)
    b = await start_system(settings, sim_sock=bound_socket(), bot_sock=bound_socket())
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
