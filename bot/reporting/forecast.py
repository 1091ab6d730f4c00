"""需求分析: the next weeks' demand per category, forecast from the history with a simple seasonal baseline, shown
with its error on past weeks (a forecast is only as good as it was).

For a week ``w`` (China-time weeks from Monday), with the counts of the weeks before the forecast's origin:

- level: the mean of the ``LEVEL_WEEKS`` (8) weeks before the origin;
- season: when a year of history is there, last year's same week (the mean of weeks w-53, w-52 and w-51) divided
  by the level of the 8 weeks before that window (w-61 … w-54) — this carries the school year (开学 in late February and
  September: 助学 rises), summer and the year's end; 1 without a year of history or when that level is 0;
- festivals: 春节 and 中秋 move in the calendar, so a week holding one of their holidays takes instead the festival's
  own factor — the mean, over the past weeks holding the same festival, of that week's count divided by the level
  of the 8 weeks before it (1 when history has no such week); a week whose last-year counterpart held a festival
  that this week does not uses no season (the festival would be carried to the wrong week);
- forecast = level × (festival factor or season).

The error: for each of the last ``BACKTEST_WEEKS`` (12) weeks, the forecast made just before it (from the weeks
before only) against what came; the mean absolute error per week, beside that of the plain level (the 8-week
mean) so staff see whether the seasonal part helps. Holidays come from chinese-calendar; beyond the years it knows,
no week is a festival week and the page says so."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.workdays import CHINA
from bot.models import Case
from bot.reporting.charts import UNCATEGORISED, monday_of
from bot.reporting.scope import Scope, where

LEVEL_WEEKS = 8
HISTORY_WEEKS = 2 * 52 + 8
BACKTEST_WEEKS = 12
HORIZON = 4
FESTIVALS = {"Spring Festival": "春节", "Mid-autumn Festival": "中秋"}


@cache
def festival_of(monday: date) -> str | None:
    """春节 or 中秋 when a day of the week starting ``monday`` is one of their holidays; None otherwise (also for a
    year chinese-calendar does not know)."""
    for i in range(7):
        try:
            holiday, name = chinese_calendar.get_holiday_detail(monday + timedelta(days=i))
        except NotImplementedError:
            return None
        if holiday and name in FESTIVALS:
            return FESTIVALS[name]
    return None


def calendar_known(monday: date) -> bool:
    try:
        chinese_calendar.is_holiday(monday)
    except NotImplementedError:
        return False
    return True


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def predict(counts: dict[date, int], week: date, origin: date) -> tuple[float, float]:
    """(seasonal forecast, plain level) of ``week`` from the counts of the weeks before ``origin``."""

    def n(d: date) -> int:
        return counts.get(d, 0) if d < origin else 0

    weeks_back = lambda start, k: [start - timedelta(weeks=i) for i in range(1, k + 1)]  # noqa: E731
    level = _mean([n(d) for d in weeks_back(origin, LEVEL_WEEKS)])
    factor = 1.0
    festival = festival_of(week)
    if festival is not None:
        ratios = []
        past = min(counts, default=origin)
        while past < origin - timedelta(weeks=LEVEL_WEEKS):  # every week of the history, also the empty ones
            if festival_of(past) == festival:
                base = _mean([n(d) for d in weeks_back(past, LEVEL_WEEKS)])
                if base > 0:
                    ratios.append(n(past) / base)
            past += timedelta(weeks=1)
        factor = _mean(ratios) if ratios else 1.0
    else:
        last_year = week - timedelta(weeks=52)
        if festival_of(last_year) is None and last_year - timedelta(weeks=LEVEL_WEEKS + 1) >= min(
            counts, default=week
        ):
            base = _mean([n(d) for d in weeks_back(last_year - timedelta(weeks=1), LEVEL_WEEKS)])
            same = _mean([n(last_year + timedelta(weeks=k)) for k in (-1, 0, 1)])
            if base > 0:
                factor = same / base
    return level * factor, level


@dataclass
class CategoryForecast:
    category: str
    history: list[tuple[str, int]] = field(default_factory=list)  # (Monday, cases) of the last 26 weeks
    ahead: list[tuple[str, float, str | None]] = field(default_factory=list)  # (Monday, forecast, festival)
    backtest: list[tuple[str, int, float, float]] = field(
        default_factory=list
    )  # (Monday, actual, seasonal, level)
    mae: float | None = None
    mae_level: float | None = None


@dataclass
class Forecast:
    categories: list[CategoryForecast] = field(default_factory=list)
    calendar_gap: bool = False  # a forecast week lies beyond the holiday calendar's years
    weeks_of_history: int = 0


async def forecast(session: AsyncSession, *, scope: Scope, now: datetime, top: int = 8) -> Forecast:
    """The forecast of the next ``HORIZON`` weeks for the ``top`` categories by volume over the history."""
    this_week = monday_of(now)  # the current, unfinished week is forecast, not counted
    first = this_week - timedelta(weeks=HISTORY_WEEKS)
    start = datetime(first.year, first.month, first.day, tzinfo=CHINA)
    end = datetime(this_week.year, this_week.month, this_week.day, tzinfo=CHINA)
    rows = (
        await session.exec(
            select(Case.category, Case.created_at).where(
                *where(town=scope.town, community=scope.community, start=start, end=end)
            )
        )
    ).all()
    by_category: dict[str, Counter[date]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    earliest = this_week
    for category, created in rows:
        name = category or UNCATEGORISED
        week = monday_of(created)
        by_category[name][week] += 1
        totals[name] += 1
        earliest = min(earliest, week)
    out = Forecast(weeks_of_history=(this_week - earliest).days // 7)
    ahead_weeks = [this_week + timedelta(weeks=i) for i in range(HORIZON)]
    out.calendar_gap = not all(calendar_known(w + timedelta(days=6)) for w in ahead_weeks)
    for name, _ in totals.most_common(top):
        counts = dict(by_category[name])
        counts.setdefault(earliest, counts.get(earliest, 0))
        f = CategoryForecast(name)
        f.history = [
            ((this_week - timedelta(weeks=i)).isoformat(), counts.get(this_week - timedelta(weeks=i), 0))
            for i in range(26, 0, -1)
        ]
        for week in ahead_weeks:
            value, _ = predict(counts, week, this_week)
            f.ahead.append((week.isoformat(), round(value, 1), festival_of(week)))
        errors, level_errors = [], []
        for i in range(BACKTEST_WEEKS, 0, -1):
            week = this_week - timedelta(weeks=i)
            if week - timedelta(weeks=LEVEL_WEEKS) < earliest:
                continue  # not enough weeks before it to forecast it
            value, level = predict(counts, week, week)
            actual = counts.get(week, 0)
            f.backtest.append((week.isoformat(), actual, round(value, 1), round(level, 1)))
            errors.append(abs(value - actual))
            level_errors.append(abs(level - actual))
        if errors:
            f.mae, f.mae_level = round(_mean(errors), 2), round(_mean(level_errors), 2)
        out.categories.append(f)
    return out
