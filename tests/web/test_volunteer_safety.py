"""Issue 10, defect 6 (volunteer side) and issue 11 (volunteers hear that a case ended): every volunteer action and
page checks the case's state and the resource's active flag; the resident's phone and address are shown only while
the accepted offer is open; the tasks page hands out stable, short-lived links and shows ended cases as ended."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select

import bot.pool as pool
from bot import keys
from bot.cases.actors import Actor
from bot.cases.lifecycle import transition
from bot.db import migrate, transaction
from bot.delivery.links import sign_link
from bot.models import Case, CaseEvent, Offer, Outbox, Resource, Staff
from tests.factories import NOW, PASSWORD, mk_resource, mk_staff, mk_wish
from tests.helpers import build_app, csrf, login

PHONE, ADDRESS = "13912345678", "新围村三巷8号"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(db_url, aiohttp_client, clock):
    await migrate(db_url)
    return await aiohttp_client(build_app(db_url, clock=clock))


def _sessions(client):
    return client.app[keys.SESSIONS]


async def _offered(client, *, accepted: bool = False) -> tuple[int, int]:
    """A wish offered to V1 (and accepted by V1 when asked): (offer id, case id)."""
    async with transaction(_sessions(client)) as db:
        staff = await mk_staff(db, "hj")
        await mk_resource(db, "V1", openid="o-v1")
        case = await mk_wish(db, owner=staff.id, phone=PHONE)
        out = await pool.offer(db, case=case, actor=Actor.of_staff(staff), now=NOW, keys=["V1"])
        offer_id = out.sent[0].id
        if accepted:
            assert (await pool.accept(db, offer_id=offer_id, now=NOW)).ok
        return offer_id, case.id


def _token(offer_id: int) -> str:
    return sign_link("l" * 40, "offer", offer_id, now=NOW.timestamp())


async def _post(client, path: str, data: dict[str, str]):
    token = await csrf(client, "/staff/login")
    return await client.post(path, data={"csrf_token": token, **data})


async def _state(client, offer_id: int, case_id: int) -> tuple[str, str]:
    async with _sessions(client)() as db:
        offer = await db.get(Offer, offer_id)
        case = await db.get(Case, case_id)
        return offer.status, case.status


async def _set(client, model, row_id: int, **values) -> None:
    async with transaction(_sessions(client)) as db:
        row = await db.get(model, row_id)
        for k, v in values.items():
            setattr(row, k, v)
        db.add(row)
    pool.POOL_CACHE.clear()


async def test_a_deactivated_resource_cannot_accept_by_link(client):
    offer_id, case_id = await _offered(client)
    async with _sessions(client)() as db:
        rid = (await db.exec(select(Resource.id).where(Resource.key == "V1"))).one()
    await _set(client, Resource, rid, active=False)
    page = await (await client.get(f"/v/offer/{_token(offer_id)}")).text()
    assert "已停用" in page and 'id="answer-form"' not in page
    resp = await _post(client, f"/v/offer/{_token(offer_id)}/answer", {"answer": "accept"})
    assert resp.status == 200 and "已停用" in await resp.text()
    assert await _state(client, offer_id, case_id) == ("offered", "matching")


async def test_no_delivered_on_a_cancelled_case_and_the_resident_is_not_told(client):
    offer_id, case_id = await _offered(client, accepted=True)
    # a case cancelled while its offer stayed accepted (as every cancellation left it before offers were withdrawn)
    await _set(client, Case, case_id, status="cancelled")
    resp = await _post(client, f"/v/offer/{_token(offer_id)}/progress", {"stage": "delivered"})
    body = await resp.text()
    assert resp.status == 200 and "已撤销" in body
    assert PHONE not in body and ADDRESS not in body
    assert await _state(client, offer_id, case_id) == ("accepted", "cancelled")
    async with _sessions(client)() as db:
        told = (await db.exec(select(Outbox).where(col(Outbox.text).contains("爱心人士已送达")))).all()
        notes = (await db.exec(select(CaseEvent).where(col(CaseEvent.note).contains("已送达")))).all()
    assert told == [] and notes == []


async def test_contact_details_are_gone_once_the_case_is_completed(client):
    offer_id, case_id = await _offered(client, accepted=True)
    page = await (await client.get(f"/v/offer/{_token(offer_id)}")).text()
    assert PHONE in page and ADDRESS in page  # while the accepted offer is open
    resp = await _post(client, f"/v/offer/{_token(offer_id)}/progress", {"stage": "done"})
    assert resp.status == 200
    assert (await _state(client, offer_id, case_id))[1] == "completed"
    page = await (await client.get(f"/v/offer/{_token(offer_id)}")).text()
    assert PHONE not in page and ADDRESS not in page
    tasks = sign_link("l" * 40, "tasks", (await _resource_id(client)), now=NOW.timestamp())
    page = await (await client.get("/v/tasks", params={"t": tasks})).text()
    assert PHONE not in page and ADDRESS not in page
    assert re.search(r'id="tasks-finished">.*已办结', page, re.S)


async def _resource_id(client) -> int:
    async with _sessions(client)() as db:
        return (await db.exec(select(Resource.id).where(Resource.key == "V1"))).one()


def _links(page: str) -> list[str]:
    return re.findall(r'href="/v/offer/([^"]+)"', page)


async def test_the_tasks_page_does_not_mint_fresh_month_long_links(client, clock):
    await _offered(client, accepted=True)
    tasks = sign_link("l" * 40, "tasks", await _resource_id(client), now=NOW.timestamp())
    first = _links(await (await client.get("/v/tasks", params={"t": tasks})).text())
    clock.now = NOW + timedelta(hours=3)
    second = _links(await (await client.get("/v/tasks", params={"t": tasks})).text())
    assert first and first == second  # the same link on every visit of the day
    expires = datetime.fromtimestamp(int(first[0].rsplit(".", 2)[1]), tz=NOW.tzinfo)
    assert expires - NOW <= timedelta(days=2)


async def test_a_cancelled_case_shows_as_ended_on_the_tasks_page(client):
    offer_id, case_id = await _offered(client, accepted=True)
    async with transaction(_sessions(client)) as db:
        staff = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        case = await db.get(Case, case_id)
        await transition(
            db, case=case, action="cancel", actor=Actor.of_staff(staff), note="居民已自行解决", now=NOW
        )
    tasks = sign_link("l" * 40, "tasks", await _resource_id(client), now=NOW.timestamp())
    page = await (await client.get("/v/tasks", params={"t": tasks})).text()
    active = page.split('id="tasks-active"')[1].split("</section>")[0]
    assert "暂无" in active and PHONE not in page and ADDRESS not in page
    assert re.search(r'id="tasks-ended">.*已撤销', page, re.S)
    page = await (await client.get(f"/v/offer/{_token(offer_id)}")).text()
    assert PHONE not in page and ADDRESS not in page and "已撤销" in page


async def test_the_volunteer_hears_that_a_case_they_help_with_was_cancelled(client):
    offer_id, case_id = await _offered(client, accepted=True)
    async with transaction(_sessions(client)) as db:
        staff = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        case = await db.get(Case, case_id)
        await transition(
            db, case=case, action="cancel", actor=Actor.of_staff(staff), note="居民已自行解决", now=NOW
        )
    async with _sessions(client)() as db:
        told = (await db.exec(select(Outbox).where(Outbox.openid == "o-v1", Outbox.case_id == case_id))).all()
    ended = [m for m in told if "已撤销" in m.text]
    assert len(ended) == 1 and "无需再送达" in ended[0].text
    assert PHONE not in ended[0].text


async def test_deactivating_a_resource_passes_its_pending_invitation_on(client):
    async with transaction(_sessions(client)) as db:
        await mk_resource(db, "V2", openid="o-v2")
    offer_id, case_id = await _offered(client)  # offered to V1 only
    await login(client, "hj", PASSWORD)
    token = await csrf(client, "/staff/pool/V1")
    resp = await client.post("/staff/pool/V1/active", data={"csrf_token": token, "active": "0"})
    assert resp.status == 200
    async with _sessions(client)() as db:
        stmt = select(Resource.key, Offer.status).join(Offer, col(Offer.resource_id) == Resource.id)
        offers = dict((await db.exec(stmt)).all())
    assert offers == {"V1": "withdrawn", "V2": "offered"}
    assert await _state(client, offer_id, case_id) == ("withdrawn", "matching")


async def test_my_tasks_in_chat_shows_an_ended_case_as_ended(client):
    offer_id, case_id = await _offered(client, accepted=True)
    await _set(
        client, Case, case_id, status="cancelled"
    )  # ended while the offer stayed accepted (older rows)
    async with transaction(_sessions(client)) as db:
        reply = await pool.volunteer_chat(db, openid="o-v1", text="我的任务", now=NOW)
    assert reply is not None and "已结束" in reply and "已接受" not in reply
