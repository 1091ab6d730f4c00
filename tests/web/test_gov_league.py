"""The league table of towns through the real app over HTTP: figures checked against values the test computes
itself, in plain Python, from the cases it seeds (not by the same query); sorting, the CSV export, access."""

from __future__ import annotations

import csv
import io
import re
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from bot import keys
from bot.models import AuditLog, Case, CaseEvent, PolicyReferral, Project, ProjectRound, Survey
from tests.factories import OTHER, TOWN, add_rows, add_staff
from tests.helpers import build_app, sign_in

NOW = datetime(2026, 3, 20, 4, 0, tzinfo=UTC)
START = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # 2026-03-01 00:00 China time
END = datetime(2026, 3, 31, 16, 0, tzinfo=UTC)  # 2026-04-01 00:00 China time
PERIOD = "from=2026-03-01&to=2026-03-31"


def d(month: int, day: int, hour: int = 2) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


#: micro-projects: (town, status, accepted at, due date) — on time means accepted on or before the due date in
#: China's calendar: 2026-03-31 20:00 UTC is already 1 April in Dongguan
PROJECTS = [
    (TOWN, "accepted", d(3, 20), date(2026, 3, 31)),  # on time
    (TOWN, "accepted", d(3, 25), date(2026, 3, 24)),  # late
    (TOWN, "accepted", d(2, 20), date(2026, 3, 31)),  # accepted before the period
    (OTHER, "accepted", datetime(2026, 3, 31, 15, 0, tzinfo=UTC), date(2026, 3, 31)),  # 23:00 China: on time
    (
        OTHER,
        "accepted",
        datetime(2026, 3, 30, 17, 0, tzinfo=UTC),
        date(2026, 3, 30),
    ),  # 01:00 on the 31st: late
    (OTHER, "in_progress", None, date(2026, 3, 1)),
]


@dataclass
class Seed:
    town: str
    created: datetime
    status: str
    kind: str = "micro_wish"
    moves: list[tuple[str, str, str, bool, datetime]] = field(
        default_factory=list
    )  # from, to, action, late, at
    completed: datetime | None = None
    score: int | None = None
    deadline: datetime | None = None
    waiting: bool = False
    granted: datetime | None = None


SEEDS = [
    Seed(
        TOWN,
        d(3, 2),
        "closed",
        completed=d(3, 5, 12),
        score=5,
        moves=[
            ("submitted", "verified", "verify", False, d(3, 2, 3)),
            ("verified", "accepted", "accept", False, d(3, 3)),
            ("accepted", "claimed", "claim", True, d(3, 4)),
            ("in_progress", "completed", "complete", False, d(3, 5, 12)),
        ],
    ),
    Seed(
        TOWN,
        d(3, 3),
        "matching",
        deadline=d(3, 10),
        moves=[("submitted", "verified", "verify", True, d(3, 6))],
    ),
    Seed(TOWN, d(3, 4), "submitted", deadline=d(3, 25)),
    Seed(
        TOWN,
        d(3, 5),
        "completed",
        kind="micro_project",
        completed=d(3, 15),
        score=3,
        moves=[
            ("submitted", "verified", "verify", False, d(3, 5, 5)),
            ("verified", "accepted", "accept", False, d(3, 6)),
            ("accepted", "claimed", "claim", False, d(3, 6, 5)),
            ("dispatched", "in_progress", "start", False, d(3, 7)),
            ("in_progress", "completed", "complete", True, d(3, 15)),
        ],
    ),
    Seed(
        TOWN,
        d(2, 20),
        "completed",
        completed=d(3, 2, 8),
        score=4,
        moves=[
            ("submitted", "verified", "verify", False, d(2, 20, 5)),
            ("in_progress", "completed", "complete", False, d(3, 2, 8)),
        ],
    ),
    Seed(
        TOWN,
        d(3, 6),
        "closed",
        completed=d(3, 12),
        granted=d(3, 12),
        moves=[
            ("submitted", "verified", "verify", False, d(3, 6, 4)),
            ("verified", "accepted", "accept", True, d(3, 10)),
            ("accepted", "claimed", "claim", False, d(3, 10, 3)),
            ("claimed", "policy", "route_policy", False, d(3, 10, 4)),
            ("policy", "completed", "policy_grant", False, d(3, 12)),
        ],
    ),
    Seed(
        OTHER,
        d(3, 2),
        "rejected",
        moves=[
            ("submitted", "verified", "verify", False, d(3, 2, 6)),
            ("verified", "rejected", "reject", True, d(3, 9)),
        ],
    ),
    Seed(OTHER, d(3, 8), "in_progress", deadline=d(3, 10), waiting=True),
    Seed(
        OTHER,
        d(3, 9),
        "cancelled",
        deadline=d(3, 1),
        moves=[("submitted", "cancelled", "cancel", True, d(3, 11))],
    ),
    Seed(
        OTHER,
        d(3, 10),
        "accepted",
        deadline=d(3, 15),
        moves=[
            ("submitted", "verified", "verify", False, d(3, 10, 5)),
            ("verified", "accepted", "accept", False, d(3, 11)),
        ],
    ),
    Seed(OTHER, d(4, 5), "submitted"),
]

STAGE_OF = {
    "submitted": ("submitted", {"verify", "reject"}),
    "verified": ("verified", {"accept", "reject"}),
    "accepted": ("accepted", {"claim", "assign"}),
    "in_progress": ("completion", {"complete"}),
}


def expected(seeds: list[Seed]) -> dict[str, str]:
    """The table's cells for these seeds, computed case by case from the definitions on the page."""
    inside = [s for s in seeds if START <= s.created < END]
    out = {"received": str(len(inside))}
    for stage in ("submitted", "verified", "accepted", "completion"):
        flags = [
            not late
            for s in seeds
            for (frm, _to, action, late, at) in s.moves
            if START <= at < END
            and frm in STAGE_OF
            and STAGE_OF[frm][0] == stage
            and action in STAGE_OF[frm][1]
        ]
        out[f"ontime_{stage}"] = f"{100 * sum(flags) / len(flags):.1f}%" if flags else "—"
    ended = {"completed", "closed", "rejected", "cancelled", "merged"}
    out["overdue"] = str(
        sum(1 for s in seeds if s.deadline and s.deadline < NOW and s.status not in ended and not s.waiting)
    )
    done = [s for s in seeds if s.completed and START <= s.completed < END]
    days = [(s.completed - s.created).total_seconds() / 86400 for s in done]
    out["median_days"] = f"{statistics.median(days):.1f}" if days else "—"
    scores = [s.score for s in done if s.score is not None]
    out["satisfaction"] = f"{sum(scores) / len(scores):.2f}" if scores else "—"
    verified = [s for s in inside if s.kind == "micro_wish" and any(m[2] == "verify" for m in s.moves)]
    fulfilled = [s for s in verified if s.status in ("completed", "closed")]
    out["dream_rate"] = f"{100 * len(fulfilled) / len(verified):.1f}%" if verified else "—"
    out["policy"] = str(sum(1 for s in seeds if s.granted and START <= s.granted < END))
    towns = {s.town for s in seeds}
    china = timedelta(hours=8)
    out["projects_ontime"] = str(
        sum(
            1
            for town, status, at, due in PROJECTS
            if town in towns
            and status == "accepted"
            and at
            and START <= at < END
            and (at + china).date() <= due
        )
    )
    return out


async def _seed(sessions) -> None:
    rows: list = []
    for i, s in enumerate(SEEDS, 1):
        case = Case(
            id=1000 + i,
            case_no=f"MS20260301-{i:04d}",
            kind=s.kind,
            status=s.status,
            town=s.town,
            description="测试诉求",
            created_at=s.created,
            updated_at=s.created,
            completed_at=s.completed,
            stage_deadline=s.deadline,
            awaiting_resident=s.waiting,
        )
        rows.append(case)
    await add_rows(sessions, *rows)
    more: list = []
    for i, s in enumerate(SEEDS, 1):
        for frm, to, action, late, at in s.moves:
            more.append(
                CaseEvent(
                    case_id=1000 + i,
                    at=at,
                    actor_type="staff",
                    kind="transition",
                    from_status=frm,
                    to_status=to,
                    data={"action": action, "late": late},
                )
            )
        if s.score is not None:
            more.append(Survey(case_id=1000 + i, status="answered", score=s.score, answered_at=s.completed))
        if s.granted:
            more.append(
                PolicyReferral(
                    case_id=1000 + i,
                    policy_name="残疾人辅助器具适配",
                    department="镇街残联",
                    applied_for="轮椅",
                    outcome="granted",
                    decided_at=s.granted,
                )
            )
    await add_rows(sessions, *more)
    rounds = [ProjectRound(id=900 + i, town=t, name="第一批") for i, t in enumerate((TOWN, OTHER))]
    await add_rows(sessions, *rounds)
    await add_rows(
        sessions,
        *(
            Project(
                round_id=900 + (town == OTHER),
                town=town,
                title="项目",
                source="staff",
                status=status,
                accepted_at=at,
                due_date=due,
                budget_fen=100,
            )
            for town, status, at, due in PROJECTS
        ),
    )


@pytest.fixture
async def client(db_url, aiohttp_client):
    """The whole app on a fresh migrated database: SQLite, and PostgreSQL when it runs."""
    return await aiohttp_client(build_app(db_url, clock=lambda: NOW))


def _cells(page: str) -> dict[str, dict[str, str]]:
    table = page.split('id="league"')[1].split("</table>")[0]
    out = {}
    for m in re.finditer(r'<tr[^>]*data-town="([^"]+)">(.*?)</tr>', table, re.S):
        out[m.group(1)] = dict(re.findall(r'<td data-key="([a-z_]+)"[^>]*>([^<]*)</td>', m.group(2)))
    return out


async def test_league_figures_match_values_computed_from_the_seeded_cases(client):
    sessions = client.app[keys.SESSIONS]
    await _seed(sessions)
    await add_staff(sessions, "city", "city_supervisor", town=None)
    assert (await sign_in(client, "city")).status == 302
    resp = await client.get(f"/staff/league?{PERIOD}")
    assert resp.status == 200
    cells = _cells(await resp.text())
    for town in (TOWN, OTHER):
        assert cells[town] == expected([s for s in SEEDS if s.town == town]), town
    assert cells["全市"] == expected(SEEDS)
    assert cells["莞城街道"]["received"] == "0" and cells["莞城街道"]["dream_rate"] == "—"
    # spot values written out by hand, so a shared mistake in expected() and the page would still show
    assert cells[TOWN]["received"] == "5" and cells[TOWN]["overdue"] == "1" and cells[TOWN]["policy"] == "1"
    assert cells[TOWN]["dream_rate"] == "66.7%"  # of 3 verified wishes created in March, 2 fulfilled
    assert cells[OTHER]["dream_rate"] == "0.0%" and cells[OTHER]["overdue"] == "1"
    assert (
        cells[TOWN]["projects_ontime"],
        cells[OTHER]["projects_ontime"],
        cells["全市"]["projects_ontime"],
    ) == (
        "1",
        "1",
        "2",
    )


async def test_league_sorts_exports_and_is_for_supervisors_only(client):
    sessions = client.app[keys.SESSIONS]
    await _seed(sessions)
    await add_staff(sessions, "city", "city_supervisor", town=None)
    await add_staff(sessions, "hj-staff", "town_staff")
    assert (await sign_in(client, "hj-staff")).status == 302
    assert (await client.get(f"/staff/league?{PERIOD}", allow_redirects=False)).status in (302, 403)
    assert (await sign_in(client, "city")).status == 302
    page = await (await client.get(f"/staff/league?{PERIOD}&sort=received&dir=desc")).text()
    order = re.findall(r'<tr[^>]*data-town="([^"]+)"', page.split('id="league"')[1])
    assert order[:3] == ["全市", TOWN, OTHER]
    page = await (await client.get(f"/staff/league?{PERIOD}&sort=overdue&dir=asc")).text()
    order = re.findall(r'<tr[^>]*data-town="([^"]+)"', page.split('id="league"')[1])
    assert order.index(TOWN) > 2 and order[-1] in (
        TOWN,
        OTHER,
    )  # the two towns with an overdue case come last
    assert (await client.get(f"/staff/league?{PERIOD}&sort=bogus")).status == 400
    assert (await client.get("/staff/league?from=2026-13-01")).status == 400
    resp = await client.get(f"/staff/league?{PERIOD}&format=csv")
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert table[0][0] == "镇街" and table[-1][0] == "全市"
    hj = next(r for r in table if r[0] == TOWN)
    assert hj[1] == "5" and "66.7%" in hj
    async with client.app[keys.SESSIONS]() as db:  # every export is audited, town figures included
        [row] = (await db.exec(select(AuditLog).where(AuditLog.action == "league_export"))).all()
    assert row.staff_id is not None and "导出镇街排名" in row.detail


def test_seed_dates_fall_where_the_test_says():
    assert START + timedelta(hours=8) == datetime(2026, 3, 1, tzinfo=UTC)
