"""The figures behind the staff charts (数据图表): received and completed per week for a year back, the on-time rate
per stage, categories per town and the satisfaction distribution, each as rows a table shows as they are and a
chart draws (bot/web/static/charts.js with Apache ECharts, served by the app from its npm package).

Weeks are China-time weeks starting on Monday; a week with nothing in it is a row of zeros, so the chart's axis is
the calendar and not only the busy weeks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.workdays import CHINA
from bot.models import Case
from bot.reporting.figures import satisfaction, stage_on_time
from bot.reporting.scope import Scope, where

UNCATEGORISED = "未分类"


@dataclass
class Charts:
    weeks: list[tuple[str, int, int]] = field(default_factory=list)  # (Monday, received, completed)
    stages: list[tuple[str, int, int, float | None]] = field(
        default_factory=list
    )  # (stage, finished, on time, rate)
    towns: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    by_town: dict[str, dict[str, int]] = field(default_factory=dict)  # town -> category -> cases
    scores: list[tuple[int, int]] = field(default_factory=list)  # (score 1..5, surveys)

    def as_json(self) -> dict[str, Any]:
        """What the page hands to the chart script (plain lists, nothing personal)."""
        return {
            "weeks": {
                "labels": [w for w, _, _ in self.weeks],
                "received": [r for _, r, _ in self.weeks],
                "completed": [c for _, _, c in self.weeks],
            },
            "stages": {
                "labels": [s for s, _, _, _ in self.stages],
                "rates": [None if r is None else round(r * 100, 1) for _, _, _, r in self.stages],
            },
            "towns": {
                "labels": self.towns,
                "series": [
                    {"name": cat, "data": [self.by_town.get(t, {}).get(cat, 0) for t in self.towns]}
                    for cat in self.categories
                ],
            },
            "scores": {"labels": [f"{s}分" for s, _ in self.scores], "counts": [n for _, n in self.scores]},
        }


def monday_of(dt: datetime) -> date:
    day = dt.astimezone(CHINA).date()
    return day - timedelta(days=day.weekday())


async def chart_data(session: AsyncSession, *, scope: Scope, now: datetime, weeks: int = 52) -> Charts:
    """The four charts for ``scope``: weekly counts for ``weeks`` weeks up to ``now``, the rest over the same span."""
    first = monday_of(now) - timedelta(weeks=weeks - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=CHINA)
    out = Charts()
    received: Counter[date] = Counter()
    completed: Counter[date] = Counter()
    kw: dict[str, Any] = {"town": scope.town, "community": scope.community, "end": now}
    rows = await session.exec(select(Case.created_at).where(*where(start=start, **kw)))
    for created in rows.all():
        received[monday_of(created)] += 1
    done = await session.exec(
        select(Case.completed_at).where(*where(start=start, column=col(Case.completed_at), **kw))
    )
    for finished in done.all():
        if finished is not None:
            completed[monday_of(finished)] += 1
    out.weeks = [
        (
            (first + timedelta(weeks=i)).isoformat(),
            received[first + timedelta(weeks=i)],
            completed[first + timedelta(weeks=i)],
        )
        for i in range(weeks)
    ]

    for s in await stage_on_time(session, start=start, end=now, **{k: kw[k] for k in ("town", "community")}):
        out.stages.append((s.label, s.finished, s.on_time, s.rate))

    grouped = await session.exec(
        select(Case.town, Case.category, func.count())
        .where(*where(start=start, **kw))
        .group_by(col(Case.town), col(Case.category))
    )
    totals: Counter[str] = Counter()
    for town, category, n in grouped.all():
        cat = category or UNCATEGORISED
        out.by_town.setdefault(town, {})[cat] = out.by_town.get(town, {}).get(cat, 0) + int(n)
        totals[cat] += int(n)
    out.towns = sorted(out.by_town, key=lambda t: -sum(out.by_town[t].values()))
    out.categories = [c for c, _ in totals.most_common()]

    sat = await satisfaction(session, start=start, end=now, **{k: kw[k] for k in ("town", "community")})
    out.scores = [(s, sat.distribution.get(s, 0)) for s in range(1, 6)]
    return out
