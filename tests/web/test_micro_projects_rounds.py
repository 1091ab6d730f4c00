"""A proposal not visited before its round's 联席会议, carried to a later round through the real app (SQLite and
PostgreSQL): refused while its own meeting is still to come, refused into a round that has met; once carried it
is listed in the later round, its history and the case's timeline say so, the resident is told, and it is
visited and decided at the later round's meeting. A visit in the round that already met is refused."""

from __future__ import annotations

import re

import pytest
from sqlmodel import col, select

from bot import keys
from bot.cases.actors import Actor
from bot.db import transaction
from bot.models import CaseEvent, Outbox, Resident
from bot.projects import service as svc
from bot.projects.tables import Project, ProjectRound
from tests.factories import NOW, TOWN, add_case, add_staff
from tests.helpers import build_app, csrf, sign_in


@pytest.fixture
async def client(db_url, aiohttp_client, tmp_path):
    return await aiohttp_client(build_app(db_url, data_dir=tmp_path))


async def _post(client, url: str, fields: dict[str, str]) -> str:
    token = await csrf(client, url)
    page = await (await client.post(url, data={**fields, "csrf_token": token})).text()
    m = re.search(r'role="status">([^<]*)<', page)
    return m.group(1) if m else ""


async def test_a_proposal_missed_by_its_meeting_is_carried_to_a_later_round(client):
    sessions = client.app[keys.SESSIONS]
    lead = await add_staff(sessions, "hj-lead", "town_supervisor")
    await add_staff(sessions, "hm-lead", "town_supervisor", town="虎门镇")
    case = await add_case(sessions, kind="micro_project", status="accepted", desc="小区门口路面坑洼")
    async with transaction(sessions) as db:
        actor = Actor.of_staff(lead)
        first = await svc.create_round(db, town=TOWN, name="第一批", objection_days=5, actor=actor, now=NOW)
        met = await svc.create_round(db, town=TOWN, name="第一批补充", objection_days=5, actor=actor, now=NOW)
        visited = await svc.propose(
            db,
            round_=first,
            title="修路灯",
            summary="修路灯",
            community="新围社区",
            category="照明",
            source="staff",
            actor=actor,
            now=NOW,
        )
        late = await svc.propose(
            db,
            round_=first,
            title="补路面",
            summary="补坑洼",
            community="新围社区",
            category="道路交通",
            source="chat",
            case=case,
            actor=actor,
            now=NOW,
        )
        other = await svc.propose(
            db,
            round_=met,
            title="装长椅",
            summary="装长椅",
            community="新围社区",
            category="其他",
            source="staff",
            actor=actor,
            now=NOW,
        )
        await svc.visit(db, project=visited, notes="看过", photos=[], actor=actor, now=NOW)
        await svc.visit(db, project=other, notes="看过", photos=[], actor=actor, now=NOW)
        await svc.hold_meeting(
            db,
            round_=met,
            attendees="各部门",
            minutes="纪要",
            decisions={other.id: ("selected", "")},
            actor=actor,
            now=NOW,
        )
    purl = f"/staff/projects/{late.id}"
    assert (await sign_in(client, "hj-lead")).status == 302
    # its own meeting is still to come: nothing to carry
    assert 'id="carry-form"' not in await (await client.get(purl)).text()
    msg = await _post(client, purl, {"op": "carry", "round_id": str(met.id)})
    assert msg == "本批次的联席会议还没开，踏勘后即可上会"

    rurl = f"/staff/projects/rounds/{first.id}"
    msg = await _post(
        client,
        rurl,
        {"op": "meeting", "attendees": "各部门", "minutes": "研究1个提案", f"d{visited.id}": "selected"},
    )
    assert msg == "已记录联席会议：上会1个，入选1个"
    # left behind: no visit in a round that met; no later round yet, then one is made
    msg = await _post(client, purl, {"op": "visit", "notes": "迟到的踏勘"})
    assert msg == "这一批次已开过联席会议，请先把提案转入以后的批次再踏勘"
    page = await (await client.get(purl)).text()
    assert 'id="carry"' in page and 'id="carry-form"' not in page
    msg = await _post(client, "/staff/projects", {"op": "round", "name": "第二批", "objection_days": "5"})
    assert msg == "已建立批次「第二批」"
    async with sessions() as db:
        second = (await db.exec(select(ProjectRound).where(ProjectRound.name == "第二批"))).one()
    page = await (await client.get(purl)).text()
    options = re.findall(r'<option value="(\d+)">', page.split('id="carry-form"')[1].split("</form>")[0])
    assert options == [str(second.id)]  # not the round it is in, not the round that met
    # hostile: a round that met, another town's, a made-up one
    assert await _post(client, purl, {"op": "carry", "round_id": str(met.id)}) == (
        "所选批次已开过联席会议，请选择尚未开会的批次"
    )
    token = await csrf(client, purl)
    for bad in ("999999", "x", ""):
        resp = await client.post(purl, data={"op": "carry", "round_id": bad, "csrf_token": token})
        assert resp.status == 404, bad
    async with sessions() as db:
        assert (await db.get(Project, late.id)).round_id == first.id

    msg = await _post(client, purl, {"op": "carry", "round_id": str(second.id)})
    assert msg == "已转入「第二批」"
    async with sessions() as db:
        moved = await db.get(Project, late.id)
        events = (await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
        openid = (await db.get(Resident, case.resident_id)).openid
        told = (await db.exec(select(Outbox).where(Outbox.openid == openid).order_by(col(Outbox.id)))).all()
    assert moved.round_id == second.id and moved.status == "proposed"
    assert [(h["kind"], h["from_round"], h["to_round"], h["by"]) for h in moved.history] == [
        ("carried", first.id, second.id, lead.id)
    ]
    assert any("「第一批」联席会议前未踏勘，转入「第二批」" in e.note for e in events)
    assert any("转入「第二批」" in o.text for o in told)
    page = await (await client.get(purl)).text()
    history = page.split('id="project-history"')[1].split("</section>")[0]
    assert "2026-03-02：「第一批」联席会议前未踏勘，转入「第二批」" in history
    assert 'id="carry"' not in page
    # carried once: a second carry is refused (its new round has not met)
    assert await _post(client, purl, {"op": "carry", "round_id": str(second.id)}) == (
        "本批次的联席会议还没开，踏勘后即可上会"
    )
    # listed in the later round, gone from the first; visited and decided there
    assert "补路面" in await (await client.get(f"/staff/projects/rounds/{second.id}")).text()
    assert "补路面" not in await (await client.get(rurl)).text()
    assert await _post(client, purl, {"op": "visit", "notes": "坑洼三处"}) == "已记录现场踏勘"
    msg = await _post(
        client,
        f"/staff/projects/rounds/{second.id}",
        {"op": "meeting", "attendees": "各部门", "minutes": "研究1个提案", f"d{late.id}": "selected"},
    )
    assert msg == "已记录联席会议：上会1个，入选1个"
    # another town's supervisor cannot carry it
    assert (await sign_in(client, "hm-lead")).status == 302
    assert (await client.get(purl)).status == 404
