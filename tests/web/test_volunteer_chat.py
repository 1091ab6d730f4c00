"""The chat hook for volunteers (``bot.pool.volunteer_chat``) over the database, without the webhook."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

import bot.pool as pool
from bot.cases.lifecycle import Actor
from bot.db import transaction
from bot.models import Case, Offer, Resource
from tests.factories import NOW, mk_resource, mk_staff, mk_wish


@pytest.fixture(autouse=True)
def _fresh_cache():
    pool.POOL_CACHE.clear()
    yield
    pool.POOL_CACHE.clear()


async def _two_wishes_offered(sessions):
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj")
        await mk_resource(db, "V1", openid="o-v1", capacity_open=3)
        await mk_resource(db, "V2", openid="o-v2", declines=3)
        a = await mk_wish(db, owner=staff.id)
        b = await mk_wish(db, owner=staff.id, category="助残", item=None)
        for c in (a, b):
            await pool.offer(db, case=c, actor=Actor.of_staff(staff), now=NOW, keys=["V1"])
    return a, b


async def chat(sessions, openid: str, text: str, now=NOW, **kw):
    async with transaction(sessions) as db:
        return await pool.volunteer_chat(db, openid=openid, text=text, now=now, **kw)


@pytest.mark.parametrize("text", ["你好", "我想申请轮椅", "查询进度", ""])
async def test_messages_not_for_volunteers_pass_through(sessions, text):
    await _two_wishes_offered(sessions)
    assert await chat(sessions, "o-v1", text) is None
    assert await chat(sessions, "o-resident", "接受") is None  # not a volunteer at all


async def test_several_pending_offers_need_the_case_number(sessions):
    a, b = await _two_wishes_offered(sessions)
    reply = await chat(sessions, "o-v1", "接受")
    assert "多个邀请" in reply and a.case_no in reply and b.case_no in reply
    async with sessions() as db:
        assert {o.status for o in (await db.exec(select(Offer))).all()} == {"offered"}
    reply = await chat(sessions, "o-v1", f"接受 {b.case_no}")
    assert "感谢认领" in reply and b.case_no in reply
    reply = await chat(sessions, "o-v1", "没空！")
    assert "已收到" in reply  # the only one left: a
    async with sessions() as db:
        assert (await db.get(Case, b.id)).status == "in_progress"
        statuses = {
            o.case_id: o.status
            for o in (await db.exec(select(Offer).where(Offer.resource_id != 0))).all()
            if o.case_id in (a.id, b.id) and o.status != "offered"
        }
    assert statuses[b.id] == "accepted" and statuses[a.id] == "declined"


async def test_tasks_reply_carries_a_signed_link_when_settings_are_given(sessions):
    from bot.settings import Settings

    await _two_wishes_offered(sessions)
    settings = Settings(
        environment="test", link_secret="l" * 40, session_secret="s" * 40, base_url="https://dgj.example"
    )
    reply = await chat(sessions, "o-v1", "我的任务", settings=settings)
    assert "待答复" in reply and "https://dgj.example/v/tasks?t=tasks." in reply
    assert "13912345678" not in reply


async def test_late_answer_after_timeout_is_told_it_expired(sessions):
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj")
        await mk_resource(db, "V1", openid="o-v1")
        c = await mk_wish(db, owner=staff.id)
        await pool.offer(db, case=c, actor=Actor.of_staff(staff), now=NOW)
    from bot.deadlines.sweeps import offer_timeouts

    await offer_timeouts(sessions=sessions, now=NOW + timedelta(hours=25), hook=pool.on_offer_timeout)
    reply = await chat(sessions, "o-v1", "我接了", now=NOW + timedelta(hours=26))
    assert "超过回复时限" in reply
    async with sessions() as db:
        assert (await db.get(Case, c.id)).flag == "match_exhausted"


async def test_guessing_bind_codes_is_limited_per_hour(sessions):
    from bot.models import InboundMessage

    async with transaction(sessions) as db:
        await mk_resource(db, "V9")
        row = (await db.exec(select(Resource).where(Resource.key == "V9"))).one()
        code = await pool.new_volunteer_bind_code(db, resource=row, now=NOW)
    wrong = "000000" if code != "000000" else "111111"
    # each attempt is a recorded message (the webhook records it before the dialogue runs)
    for i in range(5):  # five wrong tries are answered
        async with transaction(sessions) as db:
            db.add(
                InboundMessage(
                    delivery_key=f"msg:g{i}",
                    openid="o-guess",
                    msg_type="text",
                    text=f"志愿者绑定 {wrong}",
                    received_at=NOW - timedelta(minutes=10 - i),
                )
            )
        reply = await chat(sessions, "o-guess", f"志愿者绑定 {wrong}")
        assert "不正确" in reply
    async with transaction(sessions) as db:
        db.add(
            InboundMessage(
                delivery_key="msg:g-right",
                openid="o-guess",
                msg_type="text",
                text=f"志愿者绑定 {code}",
                received_at=NOW,
            )
        )
    reply = await chat(sessions, "o-guess", f"志愿者绑定 {code}")
    assert "太多" in reply  # the sixth try in the hour waits, even with the right code
    later = NOW + timedelta(hours=2)
    reply = await chat(sessions, "o-guess", f"志愿者绑定 {code}", now=later)
    assert "绑定成功" in reply
