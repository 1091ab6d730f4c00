"""Working days on the statutory calendar: weekends, Golden Week 2025 with its make-up days, unknown years.

What the calendar "does not know" is injected (a calendar that raises for chosen years, as chinese-calendar does
past its tables), so these tests do not depend on which years the installed release covers."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from bot.deadlines import workdays
from bot.deadlines.workdays import (
    CHINA,
    add_working_days,
    add_working_hours,
    is_workday,
    working_days_between,
)


def _cn(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=CHINA)


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (_cn(2025, 6, 6), 1, _cn(2025, 6, 9, 18)),  # Friday + 1 → Monday 18:00
        (_cn(2025, 6, 6, 23, 59), 1, _cn(2025, 6, 9, 18)),  # the hour of the start never matters
        (_cn(2025, 6, 7), 1, _cn(2025, 6, 9, 18)),  # Saturday + 1 → Monday
        (_cn(2025, 6, 4), 3, _cn(2025, 6, 9, 18)),  # Wed + 3 → Mon
        (_cn(2025, 6, 7), 0, _cn(2025, 6, 9, 18)),  # 0 on a weekend → next working day
        (_cn(2025, 6, 4), 0, _cn(2025, 6, 4, 18)),
        # 00:00-08:00 China time is still the previous day in UTC: the China date counts
        (_cn(2025, 6, 9, 7, 30), 1, _cn(2025, 6, 10, 18)),  # Monday 07:30 (Sunday 23:30 UTC) + 1 → Tuesday
        (_cn(2025, 6, 9, 0, 0), 0, _cn(2025, 6, 9, 18)),  # Monday 00:00 (Sunday UTC), 0 → Monday itself
        (_cn(2025, 10, 9, 3, 0), 1, _cn(2025, 10, 10, 18)),  # first day after Golden Week, 03:00
        # Golden Week 2025: 10-01..10-08 off; Sunday 09-28 and Saturday 10-11 are working days
        (_cn(2025, 9, 26), 1, _cn(2025, 9, 28, 18)),  # Friday + 1 → the make-up Sunday
        (_cn(2025, 9, 28), 1, _cn(2025, 9, 29, 18)),
        (_cn(2025, 9, 30), 1, _cn(2025, 10, 9, 18)),  # over the whole holiday
        (_cn(2025, 9, 30), 3, _cn(2025, 10, 11, 18)),  # 10-09, 10-10, then the make-up Saturday 10-11
        (_cn(2025, 10, 10), 1, _cn(2025, 10, 11, 18)),
        (_cn(2025, 10, 11), 1, _cn(2025, 10, 13, 18)),
        (_cn(2025, 9, 29), 15, _cn(2025, 10, 27, 18)),  # 09-30, 10-09..11, 13-17, 20-24, 27
    ],
)
def test_add_working_days(start: datetime, n: int, due: datetime) -> None:
    assert add_working_days(start, n) == due
    assert add_working_days(start.astimezone(UTC), n) == due  # same instant whatever the zone


def test_golden_week_days() -> None:
    assert is_workday(date(2025, 9, 28)) and is_workday(date(2025, 10, 11))
    assert not any(is_workday(date(2025, 10, d)) for d in range(1, 9))


@pytest.fixture
def calendar_until(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Make the statutory calendar know years up to ``last`` only (the real tables below that)."""

    def install(last: int) -> None:
        real = workdays.chinese_calendar.is_workday

        def is_workday(day: date) -> bool:
            if day.year > last:
                raise NotImplementedError(f"no holiday data for {day.year}")
            return bool(real(day))

        monkeypatch.setattr(workdays.chinese_calendar, "is_workday", is_workday)
        monkeypatch.setattr(workdays, "_warned_years", set())

    return install


def test_unknown_year_uses_weekends_and_warns_once(calendar_until, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    calendar_until(2025)
    with caplog.at_level(logging.WARNING, logger="bot.deadlines.workdays"):
        # 2026-01-01 (Thursday) is a holiday in reality, but this calendar does not know 2026
        assert add_working_days(_cn(2025, 12, 31), 1) == _cn(2026, 1, 1, 18)
        assert add_working_days(_cn(2026, 1, 2), 1) == _cn(2026, 1, 5, 18)  # Fri → Mon
        assert add_working_days(_cn(2026, 1, 2), 2) == _cn(2026, 1, 6, 18)
    warnings = [r for r in caplog.records if "2026" in r.getMessage()]
    assert len(warnings) == 1


def test_year_boundary_known_to_unknown(calendar_until, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """The last known year's calendar still holds; the next year is counted by weekends."""
    calendar_until(2025)
    with caplog.at_level(logging.WARNING, logger="bot.deadlines.workdays"):
        # Tuesday 2025-09-30 + 1 is 10-09 (Golden Week, known); Wednesday 2025-12-31 + 2 working days: Thursday
        # 2026-01-01 (a weekday in the fallback, a holiday in reality), Friday 01-02
        assert add_working_days(_cn(2025, 9, 30), 1) == _cn(2025, 10, 9, 18)
        assert add_working_days(_cn(2025, 12, 31), 2) == _cn(2026, 1, 2, 18)
    assert any("2026" in r.getMessage() for r in caplog.records)


def test_the_real_calendar_knows_new_year_2026_as_a_holiday() -> None:
    """The pinned chinese-calendar (pyproject.toml) has 2026: the fallback above is not what runs today."""
    assert not is_workday(date(2026, 1, 1)) and is_workday(date(2025, 12, 31))


def test_add_working_hours() -> None:
    # Friday 16:00 + 4 working hours → Monday 11:00 (09:00-18:00 on working days)
    assert add_working_hours(_cn(2025, 6, 6, 16), 4) == _cn(2025, 6, 9, 11)
    # before opening time counts from 09:00
    assert add_working_hours(_cn(2025, 6, 9, 7), 2) == _cn(2025, 6, 9, 11)
    # into Golden Week: Tuesday 09-30 17:00 + 2h → 10-09 10:00
    assert add_working_hours(_cn(2025, 9, 30, 17), 2) == _cn(2025, 10, 9, 10)


def test_working_days_between() -> None:
    assert working_days_between(_cn(2025, 9, 30), _cn(2025, 10, 11)) == 3
    assert working_days_between(_cn(2025, 6, 9), _cn(2025, 6, 6)) == 0
