"""Issue 11 ("What staff hit"): inviting a donor without WeChat from the case page. The number is masked and shown
in full only through an audited reveal; staff record the donor's answer or withdraw the invitation; other invite
buttons stay while one invitation waits; a finished case shows no pending invitation and no candidate list."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

import bot.pool as pool
from bot import keys
from bot.cases.actors import Actor
from bot.cases.lifecycle import transition
from bot.db import transaction
from bot.models import AuditLog, Case, Offer, Resource, Staff
from tests.factories import NOW, PASSWORD, mk_resource, mk_staff, mk_wish
from tests.helpers import app_client, csrf, login

DONOR_PHONE = "13711112222"


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    pool.POOL_CACHE.clear()
    c = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)
    async with transaction(c.app[keys.SESSIONS]) as db:
        hj = await mk_staff(db, "hj")
        await mk_resource(db, "P1", name="电话联系的米店", phone=DONOR_PHONE)  # no WeChat
        await mk_resource(db, "P2", name="第二位志愿者", openid="o-p2")
        await mk_resource(db, "P3", name="第三位志愿者", openid="o-p3")
        case = await mk_wish(db, owner=hj.id)
        c.case_no = case.case_no
    await login(c, "hj", PASSWORD)
    return c


async def _invite(client, key: str) -> None:
    page = f"/staff/cases/{client.case_no}"
    resp = await client.post(f"{page}/offer", data={"csrf_token": await csrf(client, page), "key": key})
    assert resp.status == 200, await resp.text()


async def _offer_of(client, key: str) -> Offer:
    async with client.app[keys.SESSIONS]() as db:
        offers = (await db.exec(select(Offer))).all()
        rows = {o.id: o for o in offers}
        rid = (await db.exec(select(Resource.id).where(Resource.key == key))).one()
        return next(o for o in rows.values() if o.resource_id == rid)


def _pool_section(page: str) -> str:
    return page.split('id="pool"')[1].split("</section>")[0]


async def test_the_donors_number_only_through_an_audited_reveal(client):
    await _invite(client, "P1")
    page = await (await client.get(f"/staff/cases/{client.case_no}")).text()
    assert DONOR_PHONE not in page and "137****2222" in _pool_section(page)
    offer = await _offer_of(client, "P1")
    path = f"/staff/cases/{client.case_no}/offers/{offer.id}/phone"
    resp = await client.post(path, data={"csrf_token": await csrf(client, f"/staff/cases/{client.case_no}")})
    assert resp.status == 200 and DONOR_PHONE in await resp.text()
    async with client.app[keys.SESSIONS]() as db:
        entries = (await db.exec(select(AuditLog).where(AuditLog.action == "reveal_donor_phone"))).all()
    assert len(entries) == 1 and DONOR_PHONE not in entries[0].detail
    again = await (await client.get(f"/staff/cases/{client.case_no}")).text()
    assert DONOR_PHONE not in again  # shown once, not kept on the page


async def test_staff_record_the_donors_answer_and_other_invites_stay_available(client):
    await _invite(client, "P1")
    page = await (await client.get(f"/staff/cases/{client.case_no}")).text()
    section = _pool_section(page)
    assert len(re.findall(r"只邀请TA", section)) == 2  # P2 and P3 can still be invited while P1 is asked
    await _invite(client, "P2")
    assert (await _offer_of(client, "P2")).status == "offered"
    offer = await _offer_of(client, "P1")
    path = f"/staff/cases/{client.case_no}/offers/{offer.id}/answer"
    token = await csrf(client, f"/staff/cases/{client.case_no}")
    resp = await client.post(path, data={"csrf_token": token, "answer": "accept"})
    assert resp.status == 200
    assert (await _offer_of(client, "P1")).status == "accepted"
    assert (await _offer_of(client, "P2")).status == "withdrawn"  # first to accept wins
    async with client.app[keys.SESSIONS]() as db:
        case = (await db.exec(select(Case).where(Case.case_no == client.case_no))).one()
        assert case.status == "in_progress"


async def test_staff_withdraw_an_invitation(client):
    await _invite(client, "P1")
    offer = await _offer_of(client, "P1")
    path = f"/staff/cases/{client.case_no}/offers/{offer.id}/withdraw"
    resp = await client.post(path, data={"csrf_token": await csrf(client, f"/staff/cases/{client.case_no}")})
    assert resp.status == 200 and "已撤回邀请" in await resp.text()
    assert (await _offer_of(client, "P1")).status == "withdrawn"


async def test_a_finished_case_shows_no_pending_invitation_or_candidates(client):
    await _invite(client, "P1")
    async with transaction(client.app[keys.SESSIONS]) as db:
        case = (await db.exec(select(Case).where(Case.case_no == client.case_no))).one()
        # as cases ended before offers were withdrawn with them: the invitation row still says "offered"
        case.status = "cancelled"
        db.add(case)
    page = await (await client.get(f"/staff/cases/{client.case_no}")).text()
    section = _pool_section(page)
    assert "待答复" not in section and 'id="pool-candidates"' not in section and "只邀请TA" not in section
    assert "撤回邀请" not in section


async def test_a_finished_case_through_the_lifecycle(client):
    await _invite(client, "P1")
    async with transaction(client.app[keys.SESSIONS]) as db:
        hj = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        case = (await db.exec(select(Case).where(Case.case_no == client.case_no))).one()
        await transition(
            db, case=case, action="cancel", actor=Actor.of_staff(hj), note="居民已自行解决", now=NOW
        )
    section = _pool_section(await (await client.get(f"/staff/cases/{client.case_no}")).text())
    assert "待答复" not in section and 'id="pool-candidates"' not in section
