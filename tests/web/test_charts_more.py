"""数据图表, the charts added for 档案 and 需求分析: the on-time rate of each stage month by month, the pool at work week
by week, the league (city roles only) and the open cases at each town's centroid — the numbers in each chart's
table checked against values counted by hand from the seeded rows, through the real app."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot import keys
from bot.db import transaction
from bot.models import CaseEvent, Offer
from reference.towns import BY_NAME, TOWNS
from tests.factories import OTHER as B
from tests.factories import STATS_NOW as NOW
from tests.factories import TOWN as A
from tests.factories import add_rows, add_staff, case_row, mk_resource
from tests.helpers import sign_in, signed_in_admin, stats_app

ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
D = timedelta(days=1)
UTC_CN = timedelta(hours=8)


def table(html: str, ident: str) -> tuple[list[str], list[list[str]]]:
    m = re.search(rf'<table id="{ident}">(.*?)</table>', html, re.S)
    assert m, ident
    head, body = m.group(1).split("<tbody>", 1)
    header = re.findall(r'<th scope="col">(.*?)</th>', head)
    return header, [[c.strip() for c in CELL.findall(r)] for r in ROW.findall(body)]


def at(day: str, hour: int = 12) -> datetime:
    """China-time noon of ``day`` as an aware UTC instant."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00")


async def _seed(sessions: Any) -> dict[str, Any]:
    # NOW is Wednesday 2026-03-18 12:00 China time; its week starts Monday 2026-03-16
    cases = [
        case_row(town=A, status="submitted", created=at("2026-03-10")),  # open
        case_row(town=A, status="verified", created=at("2026-02-20")),  # open
        case_row(town=A, status="completed", created=at("2026-02-10"), completed=at("2026-03-01")),
        case_row(town=B, status="submitted", created=at("2026-03-12")),  # open
        case_row(town=B, status="cancelled", created=at("2026-03-11")),
    ]
    await add_rows(sessions, *cases)
    a0, a1, a2, b0, _ = cases
    # stage moves with their lateness: community verification (submitted → verified)
    moves = [
        (a1, "2026-02-21", False),
        (a2, "2026-02-11", True),  # February: 1 of 2 on time
        (a0, "2026-03-11", False),
        (b0, "2026-03-13", False),  # March: 2 of 2 on time
    ]
    await add_rows(
        sessions,
        *[
            CaseEvent(
                case_id=c.id,
                at=at(day),
                actor_type="staff",
                kind="transition",
                from_status="submitted",
                to_status="verified",
                data={"late": late},
            )
            for c, day, late in moves
        ],
    )
    async with transaction(sessions) as db:
        r = await mk_resource(db, "R1")
        rid = r.id
    offers = [
        Offer(case_id=a0.id, resource_id=rid, status="accepted", offered_at=at("2026-03-09")),
        Offer(case_id=a1.id, resource_id=rid, status="declined", offered_at=at("2026-03-10")),
        Offer(
            case_id=a2.id,
            resource_id=rid,
            status="done",
            offered_at=at("2026-03-02"),
            finished_at=at("2026-03-10"),
        ),
        Offer(case_id=b0.id, resource_id=rid, status="timeout", offered_at=at("2026-03-17")),
        Offer(case_id=b0.id, resource_id=rid, status="offered", offered_at=at("2026-03-17", 9)),
    ]
    await add_rows(sessions, *offers)
    return {"cases": cases}


async def test_new_chart_tables_hold_the_seeded_figures(tmp_path: Path, aiohttp_client: Any) -> None:
    app = await stats_app(tmp_path, NOW)
    client = await aiohttp_client(app)
    sessions = app[keys.SESSIONS]
    await _seed(sessions)
    await signed_in_admin(client, sessions)
    html = await (await client.get("/staff/stats/charts")).text()

    header, rows = table(html, "table-stage-months")
    assert header[0] == "月份" and "社区核实" in header
    col = header.index("社区核实")
    by_month = {r[0]: r[col] for r in rows}
    assert len(rows) == 12 and rows[-1][0] == "2026-03" and rows[0][0] == "2025-04"
    assert by_month["2026-02"] == "50.0%（1/2）" and by_month["2026-03"] == "100.0%（2/2）"
    assert by_month["2026-01"] == "—"  # no moves: no rate, not 0%

    _, pool = table(html, "table-pool")
    weeks = {r[0]: [int(x) for x in r[1:]] for r in pool}
    assert len(pool) == 26 and pool[-1][0] == "2026-03-16"
    # (sent, accepted, declined or timed out, finished) by the Monday of each week, counted from the offers above
    assert weeks["2026-03-02"] == [1, 1, 0, 0]
    assert weeks["2026-03-09"] == [2, 1, 1, 1]
    assert weeks["2026-03-16"] == [2, 0, 1, 0]
    assert sum(sum(v) for w, v in weeks.items() if w not in ("2026-03-02", "2026-03-09", "2026-03-16")) == 0

    _, league = table(html, "table-league")
    assert len(league) == len(TOWNS)
    received = {r[0]: int(r[1]) for r in league}
    # created within 90 days of NOW (2025-12-18 onwards): all five seeded cases
    assert received[A] == 3 and received[B] == 2 and sum(received.values()) == 5

    _, points = table(html, "table-map")
    open_cases = {r[0]: int(r[3]) for r in points}
    assert open_cases[A] == 2 and open_cases[B] == 1 and sum(open_cases.values()) == 3
    lon_lat = {r[0]: (float(r[1]), float(r[2])) for r in points}
    assert lon_lat[A] == (BY_NAME[A].lon, BY_NAME[A].lat) and len(points) == len(TOWNS)
    for ident in ("chart-stage-months", "chart-pool", "chart-league", "chart-map"):
        assert f'id="{ident}"' in html


async def test_town_staff_see_their_town_and_no_league(tmp_path: Path, aiohttp_client: Any) -> None:
    app = await stats_app(tmp_path, NOW)
    client = await aiohttp_client(app)
    sessions = app[keys.SESSIONS]
    await _seed(sessions)
    await add_staff(sessions, "tw", "town_staff", town=B)
    assert (await sign_in(client, "tw")).status == 302
    html = await (await client.get(f"/staff/stats/charts?town={A}")).text()
    assert 'id="table-league"' not in html
    _, points = table(html, "table-map")
    assert [(r[0], int(r[3])) for r in points] == [(B, 1)]
    _, pool = table(html, "table-pool")
    weeks = {r[0]: [int(x) for x in r[1:]] for r in pool}
    assert weeks["2026-03-16"] == [2, 0, 1, 0] and weeks["2026-03-09"] == [0, 0, 0, 0]
