"""More figures behind the staff charts (数据图表): the on-time rate of each stage month by month, the pool at work
week by week, the league of towns (city roles), and the open cases of each town placed at its centroid (a map
without boundary data). Each is plain rows a table shows as they are and a chart draws; nothing personal.

- on time per stage and month: the stage moves of each China-time month (``figures.stage_on_time``), the share
  that left the stage before its deadline; a month without moves is None ("—"), not 0;
- the pool at work, per China-time week (Monday): invitations sent (by ``offered_at``), of those accepted (the offer
  reached accepted, delivered or done), declined or timed out, and help finished (``finished_at`` of done offers);
- the league: per town, cases received in the last 90 days, the 圆梦率 and the overdue open cases (bot/reporting/
  league.py, the same numbers as the league page);
- the town map: open cases per town at the town's centroid (reference/towns.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import OPEN_STATES
from bot.deadlines.workdays import CHINA
from bot.models import Case, Offer
from bot.reporting.charts import monday_of
from bot.reporting.figures import stage_on_time
from bot.reporting.league import league
from bot.reporting.scope import Scope, where
from reference.towns import TOWNS

ACCEPTED = ("accepted", "delivered", "done")
REFUSED = ("declined", "timeout")


@dataclass
class Overview:
    months: list[str] = field(default_factory=list)  # "2026-01" …
    stage_labels: list[str] = field(default_factory=list)
    stage_rates: dict[str, list[float | None]] = field(default_factory=dict)  # stage label -> rate per month
    stage_counts: dict[str, list[tuple[int, int]]] = field(
        default_factory=dict
    )  # (on time, finished) per month
    pool_weeks: list[tuple[str, int, int, int, int]] = field(
        default_factory=list
    )  # (Monday, sent, acc, ref, done)
    league_rows: list[tuple[str, int, float | None, int]] = field(
        default_factory=list
    )  # (town, recv, 圆梦率, overdue)
    town_points: list[tuple[str, str, float, float, int]] = field(
        default_factory=list
    )  # (town, short, lon, lat, n)

    def as_json(self) -> dict[str, Any]:
        pct = lambda r: None if r is None else round(r * 100, 1)  # noqa: E731
        return {
            "stageMonths": {
                "labels": self.months,
                "series": [
                    {"name": s, "data": [pct(r) for r in self.stage_rates[s]]} for s in self.stage_labels
                ],
            },
            "pool": {
                "labels": [w[0] for w in self.pool_weeks],
                "sent": [w[1] for w in self.pool_weeks],
                "accepted": [w[2] for w in self.pool_weeks],
                "refused": [w[3] for w in self.pool_weeks],
                "done": [w[4] for w in self.pool_weeks],
            },
            "league": {
                "labels": [r[0] for r in self.league_rows],
                "rates": [pct(r[2]) for r in self.league_rows],
                "received": [r[1] for r in self.league_rows],
            },
            "map": [{"name": short, "value": [lon, lat, n]} for _, short, lon, lat, n in self.town_points],
        }


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first instants (China time) of the last ``months`` months, oldest first, and of the month after now."""
    local = now.astimezone(CHINA)
    year, month = local.year, local.month
    out = []
    for _ in range(months):
        out.append(datetime(year, month, 1, tzinfo=CHINA))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    out.reverse()
    return out


async def overview(
    session: AsyncSession,
    *,
    scope: Scope,
    now: datetime,
    months: int = 12,
    weeks: int = 26,
    with_league: bool,
) -> Overview:
    out = Overview()
    town, community = scope.town, scope.community
    starts = month_starts(now, months)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else now
        out.months.append(f"{start:%Y-%m}")
        for s in await stage_on_time(session, town=town, community=community, start=start, end=end):
            if s.label not in out.stage_rates:
                out.stage_labels.append(s.label)
                out.stage_rates[s.label] = [None] * months
                out.stage_counts[s.label] = [(0, 0)] * months
            out.stage_rates[s.label][i] = s.rate if s.finished else None
            out.stage_counts[s.label][i] = (s.on_time, s.finished)

    first = monday_of(now) - timedelta(weeks=weeks - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=CHINA)
    conds = where(town=town, community=community, start=None, end=None)
    offers = (
        await session.exec(
            select(Offer.offered_at, Offer.status, Offer.finished_at)
            .join(Case, col(Case.id) == col(Offer.case_id))
            .where(*conds, (col(Offer.offered_at) >= since) | (col(Offer.finished_at) >= since))
        )
    ).all()
    sent: Counter[date] = Counter()
    accepted: Counter[date] = Counter()
    refused: Counter[date] = Counter()
    done: Counter[date] = Counter()
    for offered_at, status, finished_at in offers:
        if offered_at >= since and offered_at < now:
            week = monday_of(offered_at)
            sent[week] += 1
            accepted[week] += status in ACCEPTED
            refused[week] += status in REFUSED
        if status == "done" and finished_at is not None and since <= finished_at < now:
            done[monday_of(finished_at)] += 1
    for i in range(weeks):
        week = first + timedelta(weeks=i)
        out.pool_weeks.append((week.isoformat(), sent[week], accepted[week], refused[week], done[week]))

    if with_league:
        rows, _ = await league(session, start=now - timedelta(days=90), end=now, now=now)
        ranked = sorted(rows, key=lambda r: (-(r.values["dream_rate"] or -1), r.town))
        for r in ranked:
            rate = r.values["dream_rate"]
            out.league_rows.append(
                (
                    r.town,
                    int(r.values["received"] or 0),
                    float(rate) if rate is not None else None,
                    int(r.values["overdue"] or 0),
                )
            )

    open_by_town = dict(
        (
            await session.exec(
                select(Case.town, func.count())
                .where(*conds, col(Case.status).in_(sorted(OPEN_STATES)))
                .group_by(col(Case.town))
            )
        ).all()
    )
    for t in TOWNS:
        if town is None or t.name == town:
            out.town_points.append((t.name, t.short, t.lon, t.lat, int(open_by_town.get(t.name, 0))))
    return out
