"""数据统计: the figures of the statistics page, each a SQL aggregate with the jurisdiction in the WHERE clause.

Counts by status, kind, category, town and channel; timeliness (on-time rate per stage, handling times, cases
overdue now); satisfaction; the resource pool's use; and :func:`dashboard`, which gathers them with the demand
analysis of :mod:`bot.reporting.demand`. No function loads all rows: medians use an ORDER BY … OFFSET on the
sorted durations.

On-time rates per stage read the ``late`` flag of the transition events (``CaseEvent.data["late"]``): the lifecycle
records, when a case leaves a stage that had a deadline, whether it left after ``stage_deadline``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import OPEN_STATES
from bot.deadlines.sla import COMPLETION_STATUSES, STAGE_LABEL, STAGE_OF_STATUS
from bot.models import Case, CaseEvent, Offer, Resource, Survey
from bot.reporting.demand import Demand, demand
from bot.reporting.scope import Scope, dialect, grouped, rate, where

ACCEPTED_OFFERS = ("accepted", "delivered", "done")
ANSWERED_OFFERS = (*ACCEPTED_OFFERS, "declined", "timeout")
PENDING_OFFER = "offered"
LOW_SCORE = 2


# ------------------------------------------------------------------ counts
@dataclass(slots=True)
class Counts:
    total: int = 0
    completed: int = 0  # completed (or completed and archived) within the range, by completion time
    by_status: list[tuple[str, int]] = field(default_factory=list)
    by_kind: list[tuple[str, int]] = field(default_factory=list)
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_town: list[tuple[str, int]] = field(default_factory=list)
    by_channel: list[tuple[str, int]] = field(default_factory=list)


async def counts(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> Counts:
    """Cases created in [start, end) counted by status, kind, category, town and channel."""
    conds = where(town=town, community=community, start=start, end=end)
    out = Counts()
    out.by_status = await grouped(session, col(Case.status), conds)
    out.total = sum(n for _, n in out.by_status)
    out.by_kind = await grouped(session, col(Case.kind), conds)
    out.by_category = await grouped(session, col(Case.category), conds)
    out.by_town = await grouped(session, col(Case.town), conds)
    out.by_channel = await grouped(session, col(Case.channel), conds)
    done = where(town=town, community=community, start=start, end=end, column=col(Case.completed_at))
    out.completed = int((await session.exec(select(func.count()).select_from(Case).where(*done))).one())
    return out


# ------------------------------------------------------------------ timeliness
@dataclass(slots=True)
class StageRate:
    stage: str
    label: str
    finished: int  # stage exits with a known deadline in the range
    on_time: int

    @property
    def rate(self) -> float | None:
        return rate(self.on_time, self.finished)


@dataclass(slots=True)
class KindDuration:
    kind: str
    completed: int
    median_hours: float | None
    mean_hours: float | None


@dataclass(slots=True)
class Timeliness:
    stages: list[StageRate] = field(default_factory=list)
    overdue_now: int = 0
    overdue_by_status: list[tuple[str, int]] = field(default_factory=list)
    durations: list[KindDuration] = field(default_factory=list)


_STAGE_ORDER = ("submitted", "verified", "accepted", "claimed", "completion", "reopened")


async def stage_on_time(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> list[StageRate]:
    """Per stage: how many stage exits in [start, end) happened before the stage's deadline. A stage ends when
    the case leaves it; moves between matching / dispatched / in_progress continue the completion stage."""
    late = CaseEvent.data["late"].as_boolean()
    conds = [
        col(CaseEvent.kind) == "transition",
        col(CaseEvent.from_status).is_not(None),
        col(CaseEvent.at) >= start,
        col(CaseEvent.at) < end,
        late.is_not(None),
        *where(town=town, community=community, start=None, end=None),
    ]
    q = (
        sa_select(
            col(CaseEvent.from_status),
            col(CaseEvent.to_status),
            func.count(),
            func.sum(case((late, 0), else_=1)),
        )
        .join(Case, col(Case.id) == col(CaseEvent.case_id))
        .where(*conds)
        .group_by(col(CaseEvent.from_status), col(CaseEvent.to_status))
    )
    finished: Counter[str] = Counter()
    on_time: Counter[str] = Counter()
    for from_status, to_status, n, ok in await session.exec(q):  # type: ignore[call-overload]
        stage = STAGE_OF_STATUS.get(from_status)
        if stage is None:
            continue
        if from_status in COMPLETION_STATUSES and to_status in COMPLETION_STATUSES:
            continue  # the completion clock keeps running
        finished[stage] += int(n)
        on_time[stage] += int(ok or 0)
    return [
        StageRate(stage, STAGE_LABEL.get(stage, stage), finished[stage], on_time[stage])
        for stage in _STAGE_ORDER
        if finished[stage]
    ]


def _seconds(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


async def handling_times(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> list[KindDuration]:
    """Per kind: median and mean hours from creation to completion, over cases completed in [start, end)."""
    conds = [
        *where(town=town, community=community, start=start, end=end, column=col(Case.completed_at)),
        col(Case.completed_at).is_not(None),
    ]
    secs = _seconds(session, col(Case.completed_at), col(Case.created_at))
    out: list[KindDuration] = []
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.kind), func.count(), func.avg(secs)).where(*conds).group_by(col(Case.kind))
    )
    for kind, n, mean in list(rows):
        n = int(n)
        middle = list(
            await session.exec(  # type: ignore[call-overload]
                sa_select(secs)
                .where(*conds, col(Case.kind) == kind)
                .order_by(secs)
                .offset((n - 1) // 2)
                .limit(1 if n % 2 else 2)
            )
        )
        values = [float(v) for (v,) in middle]
        median = sum(values) / len(values) if values else None
        out.append(
            KindDuration(
                kind,
                n,
                round(median / 3600, 2) if median is not None else None,
                round(float(mean) / 3600, 2) if mean is not None else None,
            )
        )
    out.sort(key=lambda d: d.kind, reverse=True)  # micro_wish first
    return out


async def overdue_now(
    session: AsyncSession, *, town: str | None, now: datetime, community: str | None = None
) -> list[tuple[str, int]]:
    """Open cases whose current stage deadline has passed, by status."""
    conds = [
        *where(town=town, community=community, start=None, end=None),
        col(Case.status).in_(sorted(OPEN_STATES)),
        col(Case.stage_deadline) < now,
    ]
    return await grouped(session, col(Case.status), conds)


async def timeliness(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
    community: str | None = None,
) -> Timeliness:
    overdue = await overdue_now(session, town=town, now=now, community=community)
    return Timeliness(
        stages=await stage_on_time(session, town=town, start=start, end=end, community=community),
        overdue_now=sum(n for _, n in overdue),
        overdue_by_status=overdue,
        durations=await handling_times(session, town=town, start=start, end=end, community=community),
    )


# ------------------------------------------------------------------ satisfaction
@dataclass(slots=True)
class Satisfaction:
    sent: int = 0
    answered: int = 0
    expired: int = 0
    average: float | None = None
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    low: int = 0  # answers with score ≤ LOW_SCORE

    @property
    def response_rate(self) -> float | None:
        return rate(self.answered, self.sent)


async def satisfaction(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime, community: str | None = None
) -> Satisfaction:
    """Surveys sent in [start, end): response rate, average score, the 1–5 distribution, low scores."""
    conds = [
        *where(town=town, community=community, start=start, end=end, column=col(Survey.sent_at)),
    ]
    base = sa_select(col(Survey.status), col(Survey.score), func.count()).join(
        Case, col(Case.id) == col(Survey.case_id)
    )
    out = Satisfaction()
    total_score = 0
    rows = await session.exec(  # type: ignore[call-overload]
        base.where(*conds).group_by(col(Survey.status), col(Survey.score))
    )
    for status, score, n in rows:
        n = int(n)
        out.sent += n
        if status == "expired":
            out.expired += n
        if status == "answered" and score is not None:
            out.answered += n
            out.distribution[int(score)] = out.distribution.get(int(score), 0) + n
            total_score += int(score) * n
            if score <= LOW_SCORE:
                out.low += n
    out.average = round(total_score / out.answered, 2) if out.answered else None
    return out


# ------------------------------------------------------------------ the resource pool
@dataclass(slots=True)
class PoolUsage:
    offers: int = 0
    by_status: list[tuple[str, int]] = field(default_factory=list)
    accepted: int = 0
    answered: int = 0  # accepted (and later delivered or done), declined or timed out
    pending: int = 0  # still waiting for an answer: not part of the accept rate either way
    top: list[tuple[str, int]] = field(default_factory=list)  # resource name, completed cases

    @property
    def accept_rate(self) -> float | None:
        """Accepted of answered invitations; pending and withdrawn ones count neither way."""
        return rate(self.accepted, self.answered)


async def pool_usage(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    community: str | None = None,
    top: int = 10,
) -> PoolUsage:
    """Offers made in [start, end) for cases in scope, the accept rate (accepted of answered offers), and the
    resources with most cases completed in the range."""
    conds = where(town=town, community=community, start=start, end=end, column=col(Offer.offered_at))
    out = PoolUsage()
    n = func.count()
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Offer.status), n)
        .join(Case, col(Case.id) == col(Offer.case_id))
        .where(*conds)
        .group_by(col(Offer.status))
        .order_by(n.desc())
    )
    out.by_status = [(s, int(c)) for s, c in rows]
    out.offers = sum(c for _, c in out.by_status)
    out.accepted = sum(c for s, c in out.by_status if s in ACCEPTED_OFFERS)
    out.answered = sum(c for s, c in out.by_status if s in ANSWERED_OFFERS)
    out.pending = sum(c for s, c in out.by_status if s == PENDING_OFFER)
    done = [
        *where(town=town, community=community, start=start, end=end, column=col(Case.completed_at)),
        col(Offer.status).in_(ACCEPTED_OFFERS),
    ]
    cases_done = func.count(func.distinct(col(Offer.case_id)))
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Resource.name), cases_done)
        .select_from(Offer)
        .join(Case, col(Case.id) == col(Offer.case_id))
        .join(Resource, col(Resource.id) == col(Offer.resource_id))
        .where(*done)
        .group_by(col(Resource.id), col(Resource.name))
        .order_by(cases_done.desc(), col(Resource.name))
        .limit(top)
    )
    out.top = [(name, int(c)) for name, c in rows]
    return out


# ------------------------------------------------------------------ the dashboard
@dataclass(slots=True)
class Dashboard:
    scope: Scope
    start: datetime
    end: datetime
    now: datetime
    counts: Counts
    timeliness: Timeliness
    satisfaction: Satisfaction
    pool: PoolUsage
    demand: Demand


async def dashboard(
    session: AsyncSession, *, scope: Scope, start: datetime, end: datetime, now: datetime
) -> Dashboard:
    kw: dict[str, Any] = {"town": scope.town, "community": scope.community}
    return Dashboard(
        scope=scope,
        start=start,
        end=end,
        now=now,
        counts=await counts(session, start=start, end=end, **kw),
        timeliness=await timeliness(session, start=start, end=end, now=now, **kw),
        satisfaction=await satisfaction(session, start=start, end=end, **kw),
        pool=await pool_usage(session, start=start, end=end, **kw),
        demand=await demand(session, start=start, end=end, now=now, **kw),
    )
