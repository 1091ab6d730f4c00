"""数据图表 through the real app: the numbers under each chart checked against values counted in the test from the
seeded rows; ECharts served by the app from its npm package (no CDN); a town's staff see only their town."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot import keys
from bot.models import Survey
from tests.factories import OTHER as B
from tests.factories import STATS_NOW as NOW
from tests.factories import TOWN as A
from tests.factories import add_rows, add_staff, case_row
from tests.helpers import sign_in, signed_in_admin, stats_app

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)


def table(html: str, ident: str) -> list[list[str]]:
    m = re.search(rf'<table id="{ident}">(.*?)</table>', html, re.S)
    assert m, ident
    body = m.group(1).split("<tbody>", 1)[1]
    return [[c.strip() for c in CELL.findall(r)] for r in ROW.findall(body)]


def monday(dt: datetime) -> date:
    d = dt.astimezone(SHANGHAI).date()
    return d - timedelta(days=d.isoweekday() - 1)


async def _seed(sessions: Any) -> list[Any]:
    d = timedelta(days=1)
    rows = [
        case_row(town=A, category="助老", created=NOW - 2 * d, completed=NOW - 1 * d, status="completed"),
        case_row(town=A, category="助老", created=NOW - 9 * d),
        case_row(town=A, category="助学", created=NOW - 9 * d, completed=NOW - 2 * d, status="completed"),
        case_row(town=B, category="助老", created=NOW - 16 * d),
        case_row(town=B, category=None, created=NOW - 30 * d),
        case_row(town=A, category="助老", created=NOW - 400 * d),  # more than a year back: in no chart
    ]
    await add_rows(sessions, *rows)
    await add_rows(
        sessions,
        Survey(case_id=rows[0].id, status="answered", score=5, sent_at=NOW - d),
        Survey(case_id=rows[2].id, status="answered", score=4, sent_at=NOW - d),
        Survey(case_id=rows[3].id, status="expired", sent_at=NOW - d),
    )
    return rows


async def test_the_chart_tables_hold_the_seeded_figures(tmp_path: Path, aiohttp_client: Any) -> None:
    app = await stats_app(tmp_path, NOW)
    client = await aiohttp_client(app)
    sessions = app[keys.SESSIONS]
    rows = await _seed(sessions)
    await signed_in_admin(client, sessions)
    resp = await client.get("/staff/stats/charts")
    html = await resp.text()
    assert resp.status == 200, html[:300]

    year_back = monday(NOW) - timedelta(weeks=51)
    inside = [r for r in rows if monday(r.created_at) >= year_back]
    received = Counter(monday(r.created_at).isoformat() for r in inside)
    completed = Counter(monday(r.completed_at).isoformat() for r in inside if r.completed_at)
    weekly = table(html, "table-weekly")
    assert (
        len(weekly) == 52
        and weekly[0][0] == year_back.isoformat()
        and weekly[-1][0] == monday(NOW).isoformat()
    )
    assert {w: int(n) for w, n, _ in weekly if int(n)} == dict(received)
    assert {w: int(n) for w, _, n in weekly if int(n)} == dict(completed)

    by_town = Counter((r.town, r.category or "未分类") for r in inside)
    towns = table(html, "table-towns")
    header = re.findall(
        r'<th scope="col">(.*?)</th>',
        re.search(r'<table id="table-towns">(.*?)</thead>', html, re.S).group(1),
    )  # type: ignore[union-attr]
    got = {(t[0], cat): int(n) for t in towns for cat, n in zip(header[1:], t[1:], strict=True) if int(n)}
    assert got == dict(by_town)

    scores = {int(s.rstrip("分")): int(n) for s, n in table(html, "table-scores")}
    assert scores == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}

    # the chart library from the npm package, through the app; nothing loaded from elsewhere
    assert re.findall(r'<script src="([^"]+)"', html) == ["/assets/echarts.min.js", "/static/charts.js"]
    lib = await client.get("/assets/echarts.min.js")
    body = await lib.read()
    assert lib.status == 200 and lib.content_type == "text/javascript" and len(body) > 500_000
    assert b"echarts" in body[:2000]
    script = await client.get("/static/charts.js")
    assert script.status == 200 and "http" not in await script.text()


async def test_town_staff_see_only_their_town(tmp_path: Path, aiohttp_client: Any) -> None:
    app = await stats_app(tmp_path, NOW)
    client = await aiohttp_client(app)
    sessions = app[keys.SESSIONS]
    await _seed(sessions)
    await add_staff(sessions, "tw", "town_staff", town=B)
    assert (await sign_in(client, "tw")).status == 302
    html = await (await client.get(f"/staff/stats/charts?town={A}")).text()
    assert [t[0] for t in table(html, "table-towns")] == [B]
    weekly = table(html, "table-weekly")
    assert sum(int(n) for _, n, _ in weekly) == 2
