"""Edges of the working-day arithmetic that mutation testing found unguarded (docs/testing.md): the zone of the
result, zero and fractional hours, a stretch ending exactly at closing time, hours carried over two days, and
counting days for starts between 00:00 and 08:00 China time (still the previous day in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.deadlines.workdays import CHINA, add_working_days, add_working_hours, working_days_between


def _cn(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=CHINA)


def test_results_keep_the_zone_of_the_start() -> None:
    assert add_working_days(_cn(2025, 6, 6), 1).utcoffset() == timedelta(hours=8)
    assert add_working_days(_cn(2025, 6, 6).astimezone(UTC), 1).utcoffset() == timedelta(0)
    assert add_working_hours(_cn(2025, 6, 9, 10), 1).utcoffset() == timedelta(hours=8)
    assert add_working_hours(_cn(2025, 6, 9, 10).astimezone(UTC), 1).utcoffset() == timedelta(0)


def test_zero_and_fractional_hours_and_negative_input() -> None:
    assert add_working_hours(_cn(2025, 6, 9, 10), 0) == _cn(2025, 6, 9, 10)
    assert add_working_hours(_cn(2025, 6, 9, 10), 0.5) == _cn(2025, 6, 9, 10, 30)
    with pytest.raises(ValueError):
        add_working_hours(_cn(2025, 6, 9, 10), -1)
    with pytest.raises(ValueError):
        add_working_days(_cn(2025, 6, 9, 10), -1)


def test_a_stretch_ending_at_closing_time_ends_that_day() -> None:
    assert add_working_hours(_cn(2025, 6, 9, 16), 2) == _cn(2025, 6, 9, 18)


def test_hours_carry_over_to_the_next_working_day() -> None:
    # Monday 17:00 + 3 working hours: one on Monday, two on Tuesday
    assert add_working_hours(_cn(2025, 6, 9, 17), 3) == _cn(2025, 6, 10, 11)


def test_days_between_count_the_china_dates() -> None:
    assert working_days_between(_cn(2025, 6, 9), _cn(2025, 6, 11)) == 2  # Tue, Wed; not Thursday
    # 03:00 China time is the previous day in UTC: still Tuesday → Thursday
    assert working_days_between(_cn(2025, 6, 10, 3), _cn(2025, 6, 12, 3)) == 2
