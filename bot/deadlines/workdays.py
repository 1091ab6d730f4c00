"""Working days on the Chinese statutory calendar (chinese-calendar: holidays and 调休 make-up working days).

Conventions (documented for staff and tests):
- A deadline of N working days ends at 18:00 China time (UTC+8) of the N-th working day AFTER the day the stage
  started (the start day never counts, whatever the hour). N = 0 means 18:00 the same day when it is a working day,
  else 18:00 of the next working day.
- Working hours run 09:00–18:00 China time on working days; ``add_working_hours`` counts only those.
- Beyond the years chinese-calendar knows, Monday–Friday are working days and a warning is logged once per year.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone

import chinese_calendar

log = logging.getLogger(__name__)
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
DAY_START = time(9, 0)
DAY_END = time(18, 0)
_warned_years: set[int] = set()


def is_workday(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning(
                "the statutory calendar does not know %d: counting Monday-Friday as working days "
                "(upgrade chinese-calendar)",
                day.year,
            )
        return day.weekday() < 5


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def _at(day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=CHINA)


def add_working_days(start: datetime, n: int) -> datetime:
    """18:00 China time of the n-th working day after ``start``'s day (as an aware UTC-comparable datetime)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    day = start.astimezone(CHINA).date()
    if n == 0:
        if not is_workday(day):
            day = next_workday(day)
    for _ in range(n):
        day = next_workday(day)
    return _at(day, DAY_END).astimezone(start.tzinfo or CHINA)


def add_working_hours(start: datetime, hours: float) -> datetime:
    """``start`` plus ``hours`` of working time (09:00–18:00 China time on working days)."""
    if hours < 0:
        raise ValueError("hours must be >= 0")
    local = start.astimezone(CHINA)
    left = timedelta(hours=hours)
    day = local.date()
    cursor = local
    while True:
        if is_workday(day):
            begin = max(cursor, _at(day, DAY_START))
            end = _at(day, DAY_END)
            if begin < end:
                if begin + left <= end:
                    return (begin + left).astimezone(start.tzinfo or CHINA)
                left -= end - begin
        day += timedelta(days=1)
        cursor = _at(day, DAY_START)


def working_days_between(a: datetime, b: datetime) -> int:
    """How many working days lie after ``a``'s day up to and including ``b``'s day (0 when b <= a)."""
    day, last = a.astimezone(CHINA).date(), b.astimezone(CHINA).date()
    count = 0
    while day < last:
        day += timedelta(days=1)
        if is_workday(day):
            count += 1
    return count
