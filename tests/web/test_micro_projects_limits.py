"""Rate limits of the public micro-project forms through the real app: the 公示 objection form per address, the
vote link per address and per resident; past a limit the page answers 429 in Chinese and nothing is written.
Two apps on one database (SQLite and PostgreSQL) and one Redis count together."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlmodel import select

from bot import keys
from bot.cases.actors import Actor
from bot.db import transaction
from bot.delivery.links import sign_link
from bot.projects import service as svc
from bot.projects.tables import Project, ProjectObjection, ProjectVote
from bot.projects.votes import open_vote
from bot.web.views.public_projects import LIMITED, LIMITS
from tests.factories import NOW, TOWN, add_case, add_staff
from tests.helpers import TEST_REDIS_URL, build_app, csrf


async def _projects(sessions, *, approve: bool) -> list[Project]:
    """Two visited proposals of a round; with ``approve``, the first chosen and approved (公示 open)."""
    lead = await add_staff(sessions, "hj-lead", "town_supervisor")
    async with transaction(sessions) as db:
        actor = Actor.of_staff(lead)
        r = await svc.create_round(db, town=TOWN, name="第一批", objection_days=5, actor=actor, now=NOW)
        made = []
        for title in ("修路灯", "装长椅"):
            p = await svc.propose(
                db,
                round_=r,
                title=title,
                summary=title,
                community="新围社区",
                category="其他",
                source="staff",
                actor=actor,
                now=NOW,
            )
            await svc.visit(db, project=p, notes="看过", photos=[], actor=actor, now=NOW)
            made.append(p)
        if approve:
            await svc.hold_meeting(
                db,
                round_=r,
                attendees="各部门",
                minutes="纪要",
                decisions={made[0].id: ("selected", ""), made[1].id: ("rejected", "已有计划")},
                actor=actor,
                now=NOW,
            )
            await svc.approve(
                db,
                project=made[0],
                funding=[svc.FundingLine("city", 100_000)],
                unit="市政所",
                due=date(2026, 6, 30),
                actor=actor,
                now=NOW,
            )
        else:
            await open_vote(db, round_=r, closes_at=NOW + timedelta(days=3), actor=actor, now=NOW)
    return made


async def _object(client, project_id: int, text: str):
    url = f"/public/projects/{project_id}"
    token = await csrf(client, url)
    return await client.post(
        f"{url}/objection", data={"text": text, "csrf_token": token}, allow_redirects=False
    )


async def _count(sessions, table) -> int:
    async with sessions() as db:
        return len((await db.exec(select(table))).all())


async def test_objections_are_limited_per_address(sqlite_url, aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(sqlite_url, data_dir=tmp_path))
    sessions = client.app[keys.SESSIONS]
    project, _ = await _projects(sessions, approve=True)
    limit = LIMITS["objection-ip"]
    for i in range(limit):
        assert (await _object(client, project.id, f"意见{i}")).status == 302
    over = await _object(client, project.id, "再提一条")
    page = await over.text()
    assert over.status == 429 and LIMITED in page and 'id="objection-form"' in page
    assert await _count(sessions, ProjectObjection) == limit


async def test_votes_are_limited_per_resident_and_per_address(sqlite_url, aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(sqlite_url, data_dir=tmp_path))
    sessions = client.app[keys.SESSIONS]
    projects = await _projects(sessions, approve=False)
    case = await add_case(sessions, kind="micro_project")
    secret = client.app[keys.SETTINGS].link_secret
    round_id = projects[0].round_id

    def link(resident_id: int) -> str:
        return f"/vote/{sign_link(secret, 'vote', f'{round_id}-{resident_id}', now=NOW.timestamp())}"

    form = await csrf(client, link(case.resident_id))  # the session's token, read while the form is shown

    async def vote(resident_id: int, project_id: int):
        return await client.post(
            link(resident_id), data={"project_id": str(project_id), "csrf_token": form}, allow_redirects=False
        )

    # one resident: the vote, then refusals up to the limit, then 429 (counting nothing more)
    statuses = [(await vote(case.resident_id, projects[0].id)).status for _ in range(LIMITS["vote-resident"])]
    assert statuses == [302] * LIMITS["vote-resident"]
    over = await vote(case.resident_id, projects[1].id)
    assert over.status == 429 and LIMITED in await over.text()
    assert await _count(sessions, ProjectVote) == 1
    # one address with many links: the address's limit (tries on a project of no round are refused, 302)
    tried = LIMITS["vote-resident"] + 1
    for n in range(LIMITS["vote-ip"] - tried):
        assert (await vote(10_000 + n, 999_999)).status == 302
    over = await vote(case.resident_id + 1, projects[0].id)
    page = await over.text()
    assert over.status == 429 and LIMITED in page
    assert re.search(rf'data-project="{projects[0].id}">1<', page)  # the page still shows the count
    assert await _count(sessions, ProjectVote) == 1


@pytest.mark.redis
async def test_two_workers_share_the_objection_limit_through_redis(db_url, aiohttp_client, tmp_path):
    """Two apps (two workers) on one database and one Redis: the address's count is shared between them."""
    import redis.asyncio as aioredis  # only this test talks to Redis directly

    direct = aioredis.from_url(TEST_REDIS_URL)
    try:
        for key in await direct.keys("dgj:rate:projects:*"):  # the fixed clock's window of an earlier run
            await direct.delete(key)
        first = await aiohttp_client(build_app(db_url, data_dir=tmp_path / "a", redis_url=TEST_REDIS_URL))
        second = await aiohttp_client(build_app(db_url, data_dir=tmp_path / "b", redis_url=TEST_REDIS_URL))
        project, _ = await _projects(first.app[keys.SESSIONS], approve=True)
        limit = LIMITS["objection-ip"]
        statuses = [
            (await _object(first if i % 2 else second, project.id, f"意见{i}")).status
            for i in range(limit + 1)
        ]
        assert statuses == [302] * limit + [429]
        assert await _count(first.app[keys.SESSIONS], ProjectObjection) == limit
        assert await direct.keys("dgj:rate:projects:objection-ip:*")
    finally:
        for key in await direct.keys("dgj:rate:projects:*"):
            await direct.delete(key)
        await direct.aclose()
