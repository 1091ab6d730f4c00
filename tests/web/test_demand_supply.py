"""需求分析 against supply on a pool with a known shortage (SQLite and PostgreSQL): the figures of each category ×
town and the ranked recruitment targets, worked out by hand from the seeded rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import AuditLog, Resource
from bot.reporting.scope import Scope
from bot.reporting.supply import demand_supply
from tests.factories import OTHER as B
from tests.factories import STATS_NOW as NOW
from tests.factories import TOWN as A
from tests.factories import add_rows, case_row
from tests.helpers import csrf, signed_in_admin, stats_app

D = timedelta(days=1)


def res(
    key: str, *, cats: list[str], town: str, serves: list[str], month: int, active: bool = True
) -> Resource:
    return Resource(
        key=key,
        kind="individual",
        name=f"资源{key}",
        home_town=town,
        categories=cats,
        towns_served=serves,
        capacity_month=month,
        capacity_open=2,
        active=active,
    )


async def test_gaps_ranked_with_recruitment_targets(sessions: Any) -> None:
    wishes = [
        case_row(town=A, category="助老", status="verified", created=NOW - (i + 1) * D) for i in range(10)
    ]
    wishes += [  # fulfilled: waited 2, 4 and 9 days
        case_row(town=A, category="助老", status="completed", created=NOW - 20 * D, completed=NOW - 18 * D),
        case_row(town=A, category="助老", status="completed", created=NOW - 30 * D, completed=NOW - 26 * D),
        case_row(town=A, category="助老", status="completed", created=NOW - 40 * D, completed=NOW - 31 * D),
    ]
    wishes += [
        case_row(town=A, category="助老", status="rejected", created=NOW - 5 * D),  # not demand
        case_row(
            town=A, category="助老", status="verified", created=NOW - 200 * D
        ),  # waiting, received long ago
        case_row(town=B, category="助学", status="verified", created=NOW - 3 * D),
    ]
    await add_rows(sessions, *wishes)
    await add_rows(
        sessions,
        res("R1", cats=["助老"], town=A, serves=[], month=4),  # city-wide
        res("R2", cats=["助老", "助学"], town=A, serves=[A], month=4),
        res("R3", cats=["助老"], town=B, serves=[B], month=2),  # does not serve A
        res("R4", cats=["助老"], town=A, serves=[A], month=9, active=False),  # inactive
    )
    async with transaction(sessions) as db:
        gaps = await demand_supply(db, scope=Scope(town=None), now=NOW, days=90)
    by_cell = {(g.town, g.category): g for g in gaps}
    old = by_cell[(A, "助老")]
    # received in 90 days: 10 open + 3 completed (the rejected one and the one from 200 days ago are not)
    assert (old.received, old.fulfilled, old.waiting) == (13, 3, 11)
    assert old.median_wait_days == 4.0
    assert (old.resources, old.monthly_capacity) == (2, 8)
    # a month's need: 11 waiting + ceil(13 / 3) = 16; supply 8; shortfall 8; median capacity of 助老 resources
    # (4, 4, 2; the inactive one not counted) is 4 → 2 to recruit
    assert (old.shortfall, old.recruit) == (8, 2)
    assert "还需约 2 个" in old.sentence and A in old.sentence
    young = by_cell[(B, "助学")]
    # 1 waiting + ceil(1 / 3) = 2; R2 offers 助学 but serves only A; only resource of 助学 has capacity 4 → 1
    assert (young.resources, young.monthly_capacity, young.shortfall, young.recruit) == (0, 0, 2, 1)
    assert [(g.town, g.category) for g in gaps] == [(A, "助老"), (B, "助学")]

    async with transaction(sessions) as db:
        mine = await demand_supply(db, scope=Scope(town=B), now=NOW, days=90)
    assert [(g.town, g.category) for g in mine] == [(B, "助学")]


async def test_the_charts_page_ranks_the_gaps_and_exports_them(tmp_path: Any, aiohttp_client: Any) -> None:
    app = await stats_app(tmp_path, NOW)
    client = await aiohttp_client(app)
    sessions = app[keys.SESSIONS]
    await add_rows(
        sessions, *[case_row(town=A, category="助老", status="verified", created=NOW - D) for _ in range(6)]
    )
    await add_rows(sessions, res("R1", cats=["=HYPERLINK(1)", "助老"], town=A, serves=[A], month=2))
    await add_rows(sessions, case_row(town=A, category="=HYPERLINK(1)", status="verified", created=NOW - D))
    await signed_in_admin(client, sessions)
    html = await (await client.get("/staff/stats/charts")).text()
    # 6 waiting + ceil(6 / 3) = 8 a month; supply 2; shortfall 6; unit 2 → 3 to recruit
    assert f"{A}还需约 3 个提供「助老」" in html
    token = await csrf(client, "/staff/stats/charts")
    resp = await client.post("/staff/stats/gaps.csv", data={"csrf_token": token})
    text = (await resp.read()).decode("utf-8-sig")
    assert resp.status == 200, text
    lines = [line.split(",") for line in text.splitlines()]
    assert lines[0][0] == "镇街" and lines[1][:2] == [A, "助老"] and lines[1][-1] == "3"
    assert all(not cell.startswith("=") for line in lines for cell in line)
    async with sessions() as db:
        audits = (await db.exec(select(AuditLog).where(AuditLog.action == "stats_export"))).all()
    assert len(audits) == 1
