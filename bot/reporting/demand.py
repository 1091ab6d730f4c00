"""需求分析: what residents ask for — the most requested categories and items this month against last month,
each town's leading category, the towns with most wishes still open, the weekly trend, and the frequent words of
the descriptions (:mod:`bot.reporting.words`). China-time calendar months and Monday-to-Sunday weeks.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, func, literal_column
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import OPEN_STATES
from bot.cases.numbering import CHINA
from bot.models import Case
from bot.reporting.scope import dialect, grouped, where
from bot.reporting.words import Description, top_words


# ------------------------------------------------------------------ 需求分析 (demand analysis)
@dataclass(slots=True)
class DemandRow:
    name: str
    this_month: int
    last_month: int

    @property
    def change(self) -> int:
        return self.this_month - self.last_month


@dataclass(slots=True)
class WeekRow:
    week_start: date
    created: int
    completed: int


def month_start(moment: datetime, *, months_back: int = 0) -> datetime:
    """The first instant (UTC) of the China-time month of `moment`, `months_back` months earlier."""
    local = moment.astimezone(CHINA)
    year, month = local.year, local.month - months_back
    while month < 1:
        month += 12
        year -= 1
    return datetime(year, month, 1, tzinfo=CHINA)


async def demand_top(
    session: AsyncSession,
    *,
    town: str | None,
    now: datetime,
    by: str = "category",
    kind: str | None = None,
    community: str | None = None,
    limit: int = 10,
) -> list[DemandRow]:
    """The most requested categories (``by="category"``) or items (``by="item"``) this month, with last month's
    count beside them (China-time calendar months; this month runs to `now`)."""
    column = {"category": col(Case.category), "item": col(Case.item)}[by]
    m0, m1 = month_start(now), month_start(now, months_back=1)
    this = func.sum(case((col(Case.created_at) >= m0, 1), else_=0))
    last = func.sum(case((col(Case.created_at) < m0, 1), else_=0))
    conds = [*where(town=town, community=community, start=m1, end=now), column.is_not(None)]
    if kind:
        conds.append(col(Case.kind) == kind)
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(column, this, last)
        .where(*conds)
        .group_by(column)
        .order_by(this.desc(), last.desc(), column)
        .limit(limit)
    )
    return [DemandRow(name, int(t or 0), int(lm or 0)) for name, t, lm in rows]


async def top_category_by_town(
    session: AsyncSession, *, town: str | None, now: datetime, community: str | None = None
) -> list[tuple[str, str, int, int]]:
    """Per town, this month: (town, its most requested category, that category's count, the town's total)."""
    m0 = month_start(now)
    conds = [*where(town=town, community=community, start=m0, end=now)]
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.town), col(Case.category), func.count())
        .where(*conds)
        .group_by(col(Case.town), col(Case.category))
    )
    best: dict[str, tuple[str, int]] = {}
    totals: Counter[str] = Counter()
    for t, category, n in rows:
        n = int(n)
        totals[t] += n
        name = category or "未分类"
        if t not in best or n > best[t][1] or (n == best[t][1] and name < best[t][0]):
            best[t] = (name, n)
    return sorted(((t, c, n, totals[t]) for t, (c, n) in best.items()), key=lambda r: (-r[3], r[0]))


async def unmet_wishes_by_town(
    session: AsyncSession, *, town: str | None, community: str | None = None, limit: int = 10
) -> list[tuple[str, int]]:
    """The towns with the most micro-wishes still open (not completed, closed, cancelled, rejected or merged)."""
    conds = [
        *where(town=town, community=community, start=None, end=None),
        col(Case.kind) == "micro_wish",
        col(Case.status).in_(sorted(OPEN_STATES)),
    ]
    return (await grouped(session, col(Case.town), conds))[:limit]


def _epoch_days(session: AsyncSession, column: Any, origin: datetime) -> Any:
    """Whole days between `origin` and the column, as a SQL expression (floor for non-negative values)."""
    if dialect(session) == "postgresql":
        return cast(func.floor(func.extract("epoch", column - origin) / 86400), Integer)
    return cast(func.julianday(column) - func.julianday(origin.strftime("%Y-%m-%d %H:%M:%S")), Integer)


async def weekly_trend(
    session: AsyncSession, *, town: str | None, now: datetime, weeks: int = 12, community: str | None = None
) -> list[WeekRow]:
    """Cases created and completed per China-time week (Monday to Sunday), the last `weeks` weeks up to now."""
    local = now.astimezone(CHINA)
    monday = datetime(local.year, local.month, local.day, tzinfo=CHINA) - timedelta(days=local.weekday())
    origin = (monday - timedelta(weeks=weeks - 1)).astimezone(now.tzinfo)
    rows: dict[int, list[int]] = {i: [0, 0] for i in range(weeks)}
    for slot, column in ((0, col(Case.created_at)), (1, col(Case.completed_at))):
        bucket = _epoch_days(session, column, origin) / 7
        week = cast(bucket, Integer) if dialect(session) == "sqlite" else func.floor(bucket)
        conds = where(town=town, community=community, start=origin, end=now, column=column)
        result = await session.exec(  # type: ignore[call-overload]
            sa_select(week.label("w"), func.count()).where(*conds).group_by(literal_column("w"))
        )
        for w, n in result:
            if w is not None and 0 <= int(w) < weeks:
                rows[int(w)][slot] += int(n)
    start_day = origin.astimezone(CHINA).date()
    return [WeekRow(start_day + timedelta(weeks=i), c, d) for i, (c, d) in sorted(rows.items())]


async def description_words(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    community: str | None = None,
    n: int = 30,
    sample: int = 5000,
) -> list[tuple[str, int]]:
    """Frequent words of the descriptions of cases created in [start, end): the newest `sample` descriptions are
    read (a bounded query), with each case's beneficiary and address so that neither can become a frequent word,
    and segmented off the event loop."""
    conds = where(town=town, community=community, start=start, end=end)
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.description), col(Case.beneficiary), col(Case.address))
        .where(*conds)
        .order_by(col(Case.id).desc())
        .limit(sample)
    )
    texts = [Description(d, beneficiary, address) for d, beneficiary, address in rows if d]
    if not texts:
        return []
    return await asyncio.to_thread(top_words, texts, n=n)


@dataclass(slots=True)
class Demand:
    categories: list[DemandRow]
    items: list[DemandRow]
    by_town: list[tuple[str, str, int, int]]
    unmet: list[tuple[str, int]]
    words: list[tuple[str, int]]
    weeks: list[WeekRow]


async def demand(
    session: AsyncSession,
    *,
    town: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
    community: str | None = None,
) -> Demand:
    kw: dict[str, Any] = {"town": town, "community": community}
    return Demand(
        categories=await demand_top(session, now=now, by="category", **kw),
        items=await demand_top(session, now=now, by="item", **kw),
        by_town=await top_category_by_town(session, now=now, **kw),
        unmet=await unmet_wishes_by_town(session, **kw),
        words=await description_words(session, start=start, end=end, **kw),
        weeks=await weekly_trend(session, now=now, **kw),
    )
