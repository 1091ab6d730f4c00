"""Working days on the statutory calendar: weekends, Golden Week 2025 with its make-up days, unknown years."""

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


def test_unknown_year_uses_weekends_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    workdays._warned_years.discard(2031)
    with caplog.at_level(logging.WARNING, logger="bot.deadlines.workdays"):
        # 2031-01-01 (Wednesday) is a holiday in reality, but the calendar does not know 2031
        assert add_working_days(_cn(2030, 12, 31), 1) == _cn(2031, 1, 1, 18)
        assert add_working_days(_cn(2031, 1, 3), 1) == _cn(2031, 1, 6, 18)  # Fri → Mon
        assert add_working_days(_cn(2031, 1, 3), 2) == _cn(2031, 1, 7, 18)
    warnings = [r for r in caplog.records if "2031" in r.getMessage()]
    assert len(warnings) == 1


def test_year_boundary_known_to_unknown(caplog: pytest.LogCaptureFixture) -> None:
    """The last known year's calendar still holds; the next year is counted by weekends."""
    workdays._warned_years.discard(2027)
    with caplog.at_level(logging.WARNING, logger="bot.deadlines.workdays"):
        # Thursday 2026-12-31 + 2 working days: Friday 2027-01-01 (a weekday in the fallback), Monday 01-04
        assert add_working_days(_cn(2026, 12, 31), 2) == _cn(2027, 1, 4, 18)
    assert any("2027" in r.getMessage() for r in caplog.records)


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
