"""Leads reach staff, through the real app: a chat offer of help appears in the leads inbox (numbers masked) and
reminds staff when its deadline passes; a self sign-up becomes an active resource after review, or is declined with
its reason recorded; another town's staff cannot act on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import Lead, Outbox, Resource
from bot.pool.donor_sweeps import donor_sweeps
from bot.pool.wall import publish
from tests.factories import NOW, PASSWORD, add_staff, mk_wish
from tests.helpers import System, app_client, csrf, login

SIGNUP = {
    "kind": "enterprise",
    "name": "厚街爱心粮油店",
    "contact": "林经理",
    "phone": "13700001234",
    "town": "厚街镇",
    "categories": "生活物资",
    "items": "大米, 食用油",
    "capacity": "3",
    "max_fund": "2000",
}


async def _sign_up(client: Any, **over: str) -> aiohttp.ClientResponse:
    token = await csrf(client, "/donate")
    return await client.post("/donate", data={**SIGNUP, **over, "csrf_token": token}, allow_redirects=False)


async def _lead_action(client: Any, lead_id: int, action: str, **data: str) -> aiohttp.ClientResponse:
    token = await csrf(client, "/staff/leads")
    return await client.post(
        f"/staff/leads/{lead_id}/{action}", data={"csrf_token": token, **data}, allow_redirects=False
    )


async def test_a_sign_up_becomes_an_active_resource_after_review(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "hm-l", "town_staff", town="虎门镇")
    await add_staff(sessions, "hj-l", "town_staff")
    for bad in ({"phone": "123"}, {"town": "火星镇"}, {"categories": "偷东西"}, {"capacity": "九"}):
        r = await _sign_up(client, **bad)
        assert r.status == 400 and 'id="signup-error"' in await r.text(), bad
    r = await _sign_up(client)
    assert r.status == 200 and "报名已收到" in await r.text()
    async with sessions() as db:
        res = (await db.exec(select(Resource).where(Resource.name == "厚街爱心粮油店"))).one()
        lead = (await db.exec(select(Lead).where(Lead.resource_id == res.id))).one()
    assert res.active is False and res.max_fund == 2000 and res.items == ["大米", "食用油"]
    assert lead.state == "new" and lead.town == "厚街镇" and lead.due_at is not None

    await login(client, "hm-l", PASSWORD)  # another town: not in the inbox, cannot activate
    assert "厚街爱心粮油店" not in await (await client.get("/staff/leads")).text()
    await _lead_action(client, lead.id or 0, "activate")
    async with sessions() as db:
        assert (await db.get(Resource, res.id)).active is False  # type: ignore[union-attr]

    client.session.cookie_jar.clear()
    await login(client, "hj-l", PASSWORD)
    inbox = await (await client.get("/staff/leads")).text()
    assert "厚街爱心粮油店" in inbox and "137****1234" in inbox and "13700001234" not in inbox
    assert (await _lead_action(client, lead.id or 0, "activate")).status == 302
    async with sessions() as db:
        assert (await db.get(Resource, res.id, populate_existing=True)).active is True  # type: ignore[union-attr]
        assert (await db.get(Lead, lead.id, populate_existing=True)).state == "joined"  # type: ignore[union-attr]


async def test_a_declined_sign_up_keeps_its_reason(sqlite_url, tmp_path, aiohttp_client) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "hj-d", "town_staff")
    assert (await _sign_up(client)).status == 200
    await login(client, "hj-d", PASSWORD)
    async with sessions() as db:
        lead = (await db.exec(select(Lead))).one()
    await _lead_action(client, lead.id or 0, "decline")  # no reason: refused
    async with sessions() as db:
        assert (await db.get(Lead, lead.id, populate_existing=True)).state == "new"  # type: ignore[union-attr]
    await _lead_action(client, lead.id or 0, "decline", note="电话多次无人接听")
    async with sessions() as db:
        row = await db.get(Lead, lead.id, populate_existing=True)
        res = await db.get(Resource, lead.resource_id)
    assert row is not None and row.state == "declined" and row.note == "电话多次无人接听"
    assert res is not None and res.active is False


async def test_a_chat_offer_of_help_reaches_the_inbox_and_reminds_staff(keyword_system: System) -> None:
    system = keyword_system
    sessions = system.app[keys.SESSIONS]
    staff = await add_staff(sessions, "hj-chat", "town_staff")
    async with transaction(sessions) as db:
        s = await db.get(type(staff), staff.id)
        assert s is not None
        s.openid = "o-staff-chat"
    async with transaction(sessions) as db:
        s = await db.get(type(staff), staff.id)
        assert s is not None
        wish = await mk_wish(db, owner=s.id)
        w = await publish(
            db,
            case=wish,
            staff=s,
            text="一位行动不便的老人需要一辆轮椅",
            handover="community_centre",
            now=NOW,
        )
    user = system.user()
    reply = await user.send_text("我想献爱心，我的电话13812345678")
    assert (
        f"一位行动不便的老人需要一辆轮椅（厚街镇）{system.settings.base_url}/wall/{w.public_id}" in reply.text
    )
    assert f"{system.settings.base_url}/donate" in reply.text
    async with sessions() as db:
        lead = (await db.exec(select(Lead).where(Lead.openid == user.openid))).one()
    assert lead.source == "chat" and lead.state == "new" and lead.due_at is not None
    async with aiohttp.ClientSession(
        base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as web:
        await login(web, "hj-chat", PASSWORD)
        inbox = await (await web.get("/staff/leads")).text()
        assert "微信留言" in inbox and "138****5678" in inbox and "13812345678" not in inbox
        assert "已超期" not in inbox

        now = system.clock()
        assert (await donor_sweeps(sessions=sessions, now=now))["lead_reminders"] == 0
        later = lead.due_at + timedelta(minutes=1)
        assert (await donor_sweeps(sessions=sessions, now=later))["lead_reminders"] == 1
        assert (await donor_sweeps(sessions=sessions, now=later))["lead_reminders"] == 0  # once per deadline
        async with sessions() as db:
            texts = (await db.exec(select(Outbox.text).where(Outbox.openid == "o-staff-chat"))).all()
        assert len(texts) == 1 and "爱心线索" in texts[0]
        system.clock.advance(days=10)
        assert "已超期" in await (await web.get("/staff/leads")).text()

        # staff take it and record the call: the next follow-up gets a new deadline
        token = await csrf(web, "/staff/leads")
        r = await web.post(
            f"/staff/leads/{lead.id}/update",
            data={"csrf_token": token, "state": "contacted", "note": "已电话联系，下周来报名", "take": "1"},
            allow_redirects=False,
        )
        assert r.status == 302
    async with sessions() as db:
        row = await db.get(Lead, lead.id, populate_existing=True)
    assert row is not None and row.state == "contacted" and row.assigned_to_id == staff.id
    assert row.reminded_at is None and row.due_at is not None and row.due_at > later
