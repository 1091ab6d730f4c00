"""The league table of towns (效能监督): how each town handled its cases over a period, beside the city as a whole.

Per town, for the period [start, end):
- received: cases created in the period;
- on time per stage: of the stage moves made in the period (timeline transitions that carry ``late``), the share
  that left the stage before its deadline — community verification, town review, claiming, completion;
- overdue now: open cases whose stage deadline has passed (not counting those waiting for the resident);
- median days to complete: creation → completion, of the cases completed in the period;
- satisfaction: the mean survey score (1–5) of the cases completed in the period;
- 圆梦率: of the wishes created in the period that passed community verification, the share completed;
- policy: wishes whose policy application was granted in the period;
- projects on time: micro-projects accepted in the period on or before their due date (China's calendar day).
The city row pools every case (not the mean of the towns' rates, which would weigh a town of 2 cases like one of
200). Rates are None when there is nothing to divide by, shown as "—"."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.sla import STAGE_OF_STATUS
from bot.deadlines.workdays import CHINA
from bot.models import Case, CaseEvent, PolicyReferral, Project, Survey
from bot.states import DONE, CaseKind, CaseStatus, EventKind
from reference.towns import TOWN_NAMES

CITY = "全市"
#: the stages the table shows, in the order of the lifecycle, with their column labels
STAGES: dict[str, str] = {"submitted": "核实", "verified": "审核", "accepted": "认领", "completion": "办结"}
#: the moves that finish a stage's work (a resident's cancellation or a merge says nothing about staff's speed;
#: matching → in progress happens inside the completion stage)
STAGE_ACTIONS: dict[str, frozenset[str]] = {
    "submitted": frozenset({"verify", "reject"}),
    "verified": frozenset({"accept", "reject"}),
    "accepted": frozenset({"claim", "assign"}),
    "completion": frozenset({"complete"}),
}
ENDED = (
    CaseStatus.COMPLETED,
    CaseStatus.CLOSED,
    CaseStatus.REJECTED,
    CaseStatus.CANCELLED,
    CaseStatus.MERGED,
)

#: sortable columns: key -> (label, higher is better)
COLUMNS: dict[str, tuple[str, bool]] = {
    "received": ("收到诉求", True),
    **{f"ontime_{s}": (f"{label}按时率", True) for s, label in STAGES.items()},
    "overdue": ("当前超时", False),
    "median_days": ("办结用时中位数（天）", False),
    "satisfaction": ("满意度", True),
    "dream_rate": ("圆梦率", True),
    "policy": ("政策解决", True),
    "projects_ontime": ("微实事按期完成", True),
}


@dataclass(slots=True)
class _Acc:
    received: int = 0
    stage_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stage_ontime: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    overdue: int = 0
    durations: list[float] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    verified_wishes: int = 0
    fulfilled_wishes: int = 0
    policy: int = 0
    projects_accepted: int = 0
    projects_ontime: int = 0


@dataclass(frozen=True, slots=True)
class Row:
    town: str
    values: dict[str, float | int | None]
    counts: dict[str, str]  # the numerator/denominator behind a rate, for the title of its cell


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _row(town: str, a: _Acc) -> Row:
    values: dict[str, float | int | None] = {
        "received": a.received,
        "overdue": a.overdue,
        "policy": a.policy,
        "projects_ontime": a.projects_ontime,
    }
    counts: dict[str, str] = {"projects_ontime": f"{a.projects_ontime}/{a.projects_accepted}"}
    for stage in STAGES:
        values[f"ontime_{stage}"] = _rate(a.stage_ontime[stage], a.stage_total[stage])
        counts[f"ontime_{stage}"] = f"{a.stage_ontime[stage]}/{a.stage_total[stage]}"
    values["median_days"] = round(statistics.median(a.durations), 1) if a.durations else None
    values["satisfaction"] = round(sum(a.scores) / len(a.scores), 2) if a.scores else None
    counts["satisfaction"] = f"{len(a.scores)}份评价"
    values["dream_rate"] = _rate(a.fulfilled_wishes, a.verified_wishes)
    counts["dream_rate"] = f"{a.fulfilled_wishes}/{a.verified_wishes}"
    return Row(town, values, counts)


async def league(
    session: AsyncSession, *, start: datetime, end: datetime, now: datetime
) -> tuple[list[Row], Row]:
    """Every town's row (in the order of the town list) and the city's row."""
    towns: dict[str, _Acc] = {t: _Acc() for t in TOWN_NAMES}
    city = _Acc()

    def accs(town: str) -> tuple[_Acc, ...]:
        return (towns.setdefault(town, _Acc()), city)

    # cases created in the period: received, and the wishes' 圆梦率 (verification from the timeline)
    created = (
        await session.exec(
            select(Case.id, Case.town, Case.kind, Case.status).where(
                col(Case.created_at) >= start, col(Case.created_at) < end
            )
        )
    ).all()
    verified_ids = set(
        (
            await session.exec(
                select(CaseEvent.case_id)
                .join(Case, col(Case.id) == col(CaseEvent.case_id))
                .where(
                    col(Case.created_at) >= start,
                    col(Case.created_at) < end,
                    col(Case.kind) == CaseKind.MICRO_WISH,
                    col(CaseEvent.kind) == EventKind.TRANSITION,
                    col(CaseEvent.from_status) == CaseStatus.SUBMITTED,
                    col(CaseEvent.to_status) == CaseStatus.VERIFIED,
                )
            )
        ).all()
    )
    for case_id, town, kind, status in created:
        for a in accs(town):
            a.received += 1
            if kind == CaseKind.MICRO_WISH and case_id in verified_ids:
                a.verified_wishes += 1
                a.fulfilled_wishes += status in DONE
    # stage moves made in the period
    moves = (
        await session.exec(
            select(Case.town, CaseEvent.from_status, CaseEvent.data)
            .join(Case, col(Case.id) == col(CaseEvent.case_id))
            .where(
                col(CaseEvent.kind) == EventKind.TRANSITION,
                col(CaseEvent.at) >= start,
                col(CaseEvent.at) < end,
            )
        )
    ).all()
    for town, from_status, data in moves:
        stage = STAGE_OF_STATUS.get(from_status or "")
        data = data or {}
        if stage not in STAGES or "late" not in data or data.get("action") not in STAGE_ACTIONS[stage]:
            continue
        for a in accs(town):
            a.stage_total[stage] += 1
            a.stage_ontime[stage] += not data["late"]
    # overdue now
    overdue = (
        await session.exec(
            select(Case.town).where(
                col(Case.stage_deadline) < now,
                col(Case.status).not_in(ENDED),
                col(Case.awaiting_resident).is_(False),
            )
        )
    ).all()
    for town in overdue:
        for a in accs(town):
            a.overdue += 1
    # completed in the period: time to complete and satisfaction
    done = (
        await session.exec(
            select(Case.town, Case.created_at, Case.completed_at, Survey.score)
            .join(
                Survey,
                and_(col(Survey.case_id) == col(Case.id), col(Survey.score).is_not(None)),
                isouter=True,
            )
            .where(col(Case.completed_at) >= start, col(Case.completed_at) < end, col(Case.status).in_(DONE))
        )
    ).all()
    for town, created_at, completed_at, score in done:
        if completed_at is None:
            continue
        for a in accs(town):
            a.durations.append((completed_at - created_at).total_seconds() / 86400)
            if score is not None:
                a.scores.append(score)
    # wishes a policy covered
    granted = (
        await session.exec(
            select(Case.town)
            .join(PolicyReferral, col(PolicyReferral.case_id) == col(Case.id))
            .where(
                col(PolicyReferral.outcome) == "granted",
                col(PolicyReferral.decided_at) >= start,
                col(PolicyReferral.decided_at) < end,
            )
        )
    ).all()
    for town in granted:
        for a in accs(town):
            a.policy += 1
    # micro-projects accepted in the period, and whether on time
    accepted = (
        await session.exec(
            select(Project).where(
                col(Project.status) == "accepted",
                col(Project.accepted_at) >= start,
                col(Project.accepted_at) < end,
            )
        )
    ).all()
    for p in accepted:
        on_time = (
            p.accepted_at is not None
            and p.due_date is not None
            and p.accepted_at.astimezone(CHINA).date() <= p.due_date
        )
        for a in accs(p.town):
            a.projects_accepted += 1
            a.projects_ontime += on_time
    return [_row(t, a) for t, a in towns.items()], _row(CITY, city)


def sort_rows(rows: list[Row], key: str, descending: bool) -> list[Row]:
    """Rows sorted by a column; towns with no value for it always come last."""
    if key == "town":
        return sorted(
            rows, key=lambda r: TOWN_NAMES.index(r.town) if r.town in TOWN_NAMES else 999, reverse=descending
        )
    present = [r for r in rows if r.values.get(key) is not None]
    missing = [r for r in rows if r.values.get(key) is None]
    present.sort(key=lambda r: r.values[key] or 0, reverse=descending)
    return present + missing


def fmt(key: str, value: float | int | None) -> str:
    if value is None:
        return "—"
    if key.startswith("ontime_") or key == "dream_rate":
        return f"{value * 100:.1f}%"
    if key in ("median_days",):
        return f"{value:.1f}"
    if key == "satisfaction":
        return f"{value:.2f}"
    return str(value)


def csv_rows(rows: list[Row], city: Row) -> list[list[str]]:
    """The table as text cells for an export: a header, the towns, the city."""
    out = [["镇街", *(label for label, _ in COLUMNS.values())]]
    for r in [*rows, city]:
        out.append([r.town, *(fmt(k, r.values.get(k)) for k in COLUMNS)])
    return out
