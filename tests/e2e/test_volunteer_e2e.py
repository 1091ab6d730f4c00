"""The volunteer flow end to end: the simulator, the bot on real ports and the real Rasa. A wish is offered to two
volunteers at once; both receive the invitation in WeChat; the first to answer “接受” wins, the second hears that
someone else was faster; the winner asks for their tasks, reports completion in chat, and the resident hears."""

from __future__ import annotations

import re

import pytest
from sqlmodel import col, select

import bot.pool as pool
from bot import keys
from bot.cases.lifecycle import Actor
from bot.db import transaction
from bot.delivery.dispatcher import dispatch_all
from bot.models import Case, Offer, Outbox
from bot.ops.scheduler import delivery_config
from tests.factories import NOW, mk_resource, mk_staff, mk_wish

pytestmark = pytest.mark.rasa


async def _dispatch(system) -> None:
    from bot.models import utcnow

    await dispatch_all(
        sessions=system.app[keys.SESSIONS],
        api=system.app[keys.WECHAT],
        clock=utcnow,
        concurrency=4,
        config=delivery_config(system.settings),
    )


def _texts(system, openid: str) -> list[str]:
    out = []
    for m in system.sim.sent:
        if m.openid == openid:
            out.append(m.content or " ".join((m.data or {}).values()) + f" {getattr(m, 'url', '') or ''}")
    return out


async def test_two_volunteers_answer_in_chat_exactly_one_wins(system) -> None:
    pool.POOL_CACHE.clear()
    sessions = system.app[keys.SESSIONS]
    v1, v2 = system.user(), system.user()
    resident = system.user()
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj-e2e")
        await mk_resource(db, "E1", openid=v1.openid, name="热心市民甲")
        await mk_resource(db, "E2", openid=v2.openid, name="热心市民乙")
        case = await mk_wish(db, owner=staff.id, resident_openid=resident.openid, now=NOW)
        from bot.models import utcnow

        out = await pool.offer(db, case=case, actor=Actor.of_staff(staff), mode="top_k", k=2, now=utcnow())
    assert len(out.sent) == 2
    await _dispatch(system)
    for v in (v1, v2):
        received = _texts(system, v.openid)
        assert received and any(case.case_no in t for t in received), received

    r = await v1.send_text("接受")
    assert r.status == 200 and r.text and "感谢认领" in r.text and case.case_no in r.text
    r = await v2.send_text("我接了")
    assert r.text and "其他爱心人士认领" in r.text

    async with sessions() as db:
        statuses = sorted((await db.exec(select(Offer.status).where(Offer.case_id == case.id))).all())
        assert statuses == ["accepted", "withdrawn"]
        assert (await db.get(Case, case.id)).status == "in_progress"

    r = await v1.send_text("我的任务")
    assert r.text and case.case_no in r.text and "已接受" in r.text
    r = await v1.send_text("已完成")
    assert r.text and "已记录完成" in r.text
    async with sessions() as db:
        assert (await db.get(Case, case.id)).status == "completed"
        resident_msgs = (
            await db.exec(
                select(Outbox.text).where(Outbox.openid == resident.openid).order_by(col(Outbox.id))
            )
        ).all()
    assert any("已有爱心人士认领" in t for t in resident_msgs) and any("已办结" in t for t in resident_msgs)
    await _dispatch(system)
    assert any("已办结" in t or case.case_no in t for t in _texts(system, resident.openid))


async def test_volunteer_binds_wechat_with_the_code_in_chat(system) -> None:
    pool.POOL_CACHE.clear()
    sessions = system.app[keys.SESSIONS]
    async with transaction(sessions) as db:
        r = await mk_resource(db, "B1", name="爱心协会")
        from bot.models import utcnow

        code = await pool.new_volunteer_bind_code(db, resource=r, now=utcnow())
    v = system.user()
    reply = await v.send_text(f"志愿者绑定 {code}")
    assert reply.text and "绑定成功" in reply.text and "爱心协会" in reply.text
    reply = await v.send_text("我的任务")
    assert reply.text and "没有任务" in reply.text
    assert re.fullmatch(r"\d{6}", code)
