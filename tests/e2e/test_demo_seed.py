"""The demo of `make run`: the seed on a fresh SQLite file, twice (nothing duplicated), then every page of the printed
guide (bot.ops.demo_guide) opened through the real app as its demo account: 200 and the seeded content on it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.db import make_engine, make_sessions, transaction
from bot.models import ApiClient, Case, FundEntry, Outbox, Project, Resource, Staff, WallClaim, WallWish
from bot.ops.demo_cases import DEMO_API_KEY
from bot.ops.demo_guide import demo_pages, guide_text
from bot.ops.scheduler import dispatch_now
from bot.ops.seed import DEMO_STAFF, seed
from tests.helpers import build_app, login, test_settings
from wechat_sim.server import create_sim_app

#: what each page of the guide must show: text from the demo content, not an empty list
CONTENT = {
    "/wall": "一位行动不便的老人需要一辆轮椅",
    "/wall/group": "一名初中生需要一盏护眼台灯",
    "/donate": "csrf_token",
    "/public": "厚街镇",
    "/public/projects": "新围村巷口修复路灯",
    "/api/docs": "/api/v1/cases",
    "/open311/v2/discovery.json": "open311/v2",
    "/staff/cases": "冬被",
    "/staff/calls": "微信和短信都无法送达",
    "/staff/wall": "厚街爱心党支部",
    "/staff/leads": "厚街爱心粮油店",
    "/staff/pool": "爱心",
    "/staff/communities": "新围社区",
    "/staff/projects": "学校门口增设减速带",
    "/staff/funds": "镇慈善会拨付",
    "/staff/town-supervision": "逾期未办结",
    "/staff/duties": "助残",
    "/staff/warnings": "建议合并办理",
    "/staff/stats": "厚街镇",
    "/staff/stats/charts": "生活物资",
    "/staff/league": "虎门镇",
    "/staff/policies": "残疾",
    "/staff/audit": "houjie",
    "/staff/erasure": "csrf_token",
    "/staff/admin/staff": "houjie_lead",
    "/phone": "扫一扫",
    "/sms": "progress：MS",  # a texted case number (MS and the day it was filed), after the outbox was dispatched
    "/query": "csrf_token",
}
#: pages whose path carries a token or id, by the start of the path
CONTENT_PREFIX = {
    "/wall/claims/": "厚街爱心党支部|助听器很好用",
    "/wall/groups/": "厚街某社区党支部",
    "/wall/": "一位行动不便的老人需要一辆轮椅",
    "/staff/projects/rounds/": "新围村巷口修复路灯",
    "/staff/projects/": "新围",
    "/public/projects/": "新围|学校门口增设减速带",
    "/vote/": "公交站增设候车座椅",
}


def _expected(path: str) -> list[str]:
    bare = path.split("?")[0]
    if bare in CONTENT:
        return [CONTENT[bare]]
    for prefix, text in CONTENT_PREFIX.items():
        if bare.startswith(prefix):
            return text.split("|")
    raise AssertionError(f"no expected content for {path}")


async def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with transaction(make_sessions(engine)) as db:
            return {
                m.__name__: (await db.exec(select(func.count()).select_from(m))).scalar_one()
                for m in (Case, WallWish, WallClaim, Project, FundEntry, Staff, ApiClient, Resource)
            }
    finally:
        await engine.dispose()


@pytest.mark.slow  # starts whole processes of the bot (seconds each): run by make test, left out of make test-fast
async def test_demo_seed_twice_and_every_guide_page(
    tmp_path: Path, aiohttp_client: Any, aiohttp_server: Any
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}"
    settings = test_settings(url, data_dir=tmp_path, environment="development")
    first = await seed(settings, pool_size=200)
    assert "demo content (" in first
    once = await _counts(url)
    assert once["Case"] > 300 and once["Project"] >= 7 and once["WallWish"] >= 7 and once["FundEntry"] >= 3
    second = await seed(settings, pool_size=200)
    assert "demo content unchanged" in second
    assert await _counts(url) == once

    pages = await demo_pages(settings)
    text = guide_text(
        pages, bot_url="http://bot", sim_url="http://sim", passwords={u: p for u, *_, p in DEMO_STAFF}
    )
    assert DEMO_API_KEY in text and "以 houjie_lead / " in text
    assert "诉求查询：MS" in text  # the 12345 case to try /query with
    # every family of the guide is there: the brief's list
    paths = [p.path for p in pages]
    for needed in (
        "/wall/claims/",
        "/wall/groups/",
        "/vote/",
        "/public/projects/",
        "/staff/projects/rounds/",
    ):
        assert any(p.startswith(needed) for p in paths), needed
    assert {p.account for p in pages} >= {None, "houjie", "houjie_lead", "city", "admin"}

    now = datetime.now(UTC)
    sim = create_sim_app(
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        aes_key=None,
        mode="plain",
        webhook_url="http://127.0.0.1:1/",
        secret=settings.wechat_secret,
    )
    sim_server = await aiohttp_server(sim)
    sim_base = str(sim_server.make_url("")).rstrip("/")
    sim_client = await aiohttp_client(sim_server)
    app = build_app(
        url,
        clock=lambda: now,
        api_base=sim_base,
        sms_api_base=f"{sim_base}/sms/tencent",
        link_secret=settings.link_secret,
        environment="development",
    )
    server = await aiohttp_server(app)  # one app, one client (own cookies) per demo account
    await dispatch_now(app)  # the seeded outbox goes out, the 12345 caller's text to the simulator
    clients: dict[str | None, Any] = {None: await aiohttp_client(server)}
    passwords = {u: p for u, _r, _t, p in DEMO_STAFF}
    for page in pages:
        if page.path.startswith("sim:"):
            client, path = sim_client, page.path[4:]
        else:
            if page.account not in clients:
                clients[page.account] = await aiohttp_client(server)
                await login(clients[page.account], page.account, passwords[page.account])
            client, path = clients[page.account], page.path
        resp = await client.get(path)
        body = await resp.text()
        assert resp.status == 200, (page, body[:300])
        assert any(t in body for t in _expected(path)), (page, _expected(path), body[:500])

    # 预警 shows all three kinds; the charts reach back a year
    body = await (await clients["houjie_lead"].get("/staff/warnings")).text()
    for kind in ("明显增多", "建议合并办理", "同一居民多次提交"):
        assert kind in body, kind
    year_ago = f"{now.year - 1}-{now.month:02d}"
    assert year_ago in await (await clients["city"].get("/staff/stats/charts")).text(), year_ago

    # the 12345 case without WeChat is texted: its outbox row carries the phone (sent by SMS once dispatched)
    engine = make_engine(url)
    try:
        async with transaction(make_sessions(engine)) as db:
            texted = [
                r[0] for r in (await db.exec(select(Outbox).where(Outbox.phone == "13655556666"))).all()
            ]
            assert texted and "专门负责跟进" in texted[0].text, [r.text for r in texted]
    finally:
        await engine.dispose()

    # the printed key works on the open API, limited to its town
    resp = await clients[None].get("/api/v1/cases", headers={"Authorization": f"Bearer {DEMO_API_KEY}"})
    assert resp.status == 200, await resp.text()
    assert "厚街镇" in await resp.text() and "虎门镇" not in await resp.text()
