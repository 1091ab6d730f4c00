"""项目公示: completed work is shown city-wide and per town, and nothing that could identify a person."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot import keys
from bot.db import transaction
from bot.models import Resident
from tests.factories import OTHER as B
from tests.factories import add_rows as add
from tests.factories import case_row as mk
from tests.helpers import stats_app

NOW = datetime(2026, 3, 18, 4, 0, tzinfo=UTC)
DONE = datetime(2026, 2, 20, 4, 0, tzinfo=UTC)


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    return await aiohttp_client(await stats_app(tmp_path, NOW))


@pytest.fixture
def sessions(client):
    return client.app[keys.SESSIONS]


SECRETS = [
    "13812345678",
    "陈美玲",
    "幸福路88号",
    "双腿残疾",
    "需要一台电动轮椅",
    "o-secret-openid",
    "0769-22334455",
]


async def seed(sessions):
    async with transaction(sessions) as db:
        r = Resident(openid="o-secret-openid", phone="13812345678")
        db.add(r)
        await db.flush()
        rid = r.id
    wish = mk(
        status="completed",
        completed=DONE,
        category="助残",
        item="电动轮椅",
        description="我叫陈美玲，双腿残疾，需要一台电动轮椅，电话13812345678，座机0769-22334455",
    )
    wish.beneficiary, wish.address, wish.contact_phone, wish.resident_id = (
        "陈美玲",
        "幸福路88号",
        "13812345678",
        rid,
    )
    closed_wish = mk(status="closed", completed=DONE, category=None, town=B)
    project = mk(
        kind="micro_project",
        status="completed",
        completed=DONE,
        category="照明",
        item="新围村口路灯维修",
        community="新围社区",
        description="电话13812345678 陈美玲反映村口路灯坏了",
    )
    project.address, project.beneficiary = "幸福路88号", "陈美玲"
    open_wish = mk(status="in_progress", category="助学", description="open 秘密内容")
    cancelled = mk(status="cancelled", category="助医", completed=None)
    reopened = mk(status="reopened", category="助老", completed=None)
    await add(sessions, wish, closed_wish, project, open_wish, cancelled, reopened)


async def test_public_page_shows_completed_work_and_no_personal_data(client, sessions):
    await seed(sessions)
    resp = await client.get("/public")
    html = await resp.text()
    assert resp.status == 200
    for secret in SECRETS:
        assert secret not in html, secret
    assert not re.search(r"1[3-9]\d{9}", html)
    assert "秘密内容" not in html
    assert re.search(r'id="wishes-done">2<', html) and re.search(r'id="projects-done">1<', html)
    assert "新围村口路灯维修" in html and "新围社区" in html  # public works may be named
    wishes = html.split('id="wishes"', 1)[1]
    assert "助残" in wishes and "2026年2月" in wishes and "已完成" in wishes and "其他" in wishes
    assert "电动轮椅" not in wishes  # a wish's item says too much about the person


async def test_public_page_per_town(client, sessions):
    await seed(sessions)
    html = await (await client.get("/public", params={"town": B})).text()
    assert re.search(r'id="wishes-done">1<', html) and re.search(r'id="projects-done">0<', html)
    assert "新围村口路灯维修" not in html
    resp = await client.get("/public", params={"town": "<script>"})  # unknown town: a 400, not the whole city
    assert resp.status == 400 and "<script>" not in await resp.text()


@pytest.mark.parametrize(
    "path",
    [
        "/public/notices/abc",
        "/public/notices/999",
        "/public/notices/99999999999999",
        "/public/notices/²",
        "/public/notices/" + "9" * 30,
    ],
)
async def test_unknown_notice_is_404(client, path):
    assert (await client.get(path)).status == 404


async def test_public_lists_paginate(client, sessions):
    await add(
        sessions,
        *[mk(status="completed", completed=DONE - timedelta(hours=i), category="助学") for i in range(31)],
    )
    html = await (await client.get("/public")).text()
    wishes = html.split('id="wishes"', 1)[1]
    assert wishes.count("<td>助学</td>") == 30 and "下一页" in html
    html = await (await client.get("/public", params={"page": "2"})).text()
    wishes = html.split('id="wishes"', 1)[1]
    assert wishes.count("<td>助学</td>") == 1 and "上一页" in html
