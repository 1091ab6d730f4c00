"""Deadlines count from the China (UTC+8) date, also for cases filed between 00:00 and 08:00 China time, when the
UTC date is still the day before. Every expected deadline below is written out by hand from the 2026 statutory
calendar (State Council notice: 中秋 25 September off; 国庆 1–7 October off; Saturday 10 October a working day),
not computed by the function under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.deadlines.sla import DEFAULT_POLICIES
from bot.deadlines.workdays import add_working_days

CN = timezone(timedelta(hours=8))


def cn(y: int, m: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=CN)


@pytest.mark.parametrize(
    ("filed", "n", "due"),
    [
        # a wish filed Wednesday 30 September 07:30 China time (still 29 September in UTC), before 国庆
        (cn(2026, 9, 30, 7, 30), 1, cn(2026, 10, 8, 18)),  # the next working day is Thursday 8 October
        (cn(2026, 9, 30, 7, 30), 3, cn(2026, 10, 10, 18)),  # 8, 9 and the make-up Saturday 10 October
        (cn(2026, 9, 30, 7, 30), 15, cn(2026, 10, 27, 18)),  # 8 9 10 12–16 19–23 26 27
        (cn(2026, 9, 30, 0, 5), 0, cn(2026, 9, 30, 18)),  # same day when it is a working day
        # filed Friday 9 October 00:10 China time (8 October in UTC): one working day is the make-up Saturday
        (cn(2026, 10, 9, 0, 10), 1, cn(2026, 10, 10, 18)),
        # filed Monday 28 September 06:59 China time (Sunday 27 in UTC, itself a day off)
        (cn(2026, 9, 28, 6, 59), 1, cn(2026, 9, 29, 18)),
        (cn(2026, 9, 28, 6, 59), 3, cn(2026, 10, 8, 18)),  # 29, 30, then past the holiday to 8 October
    ],
)
def test_working_days_count_from_the_china_date(filed: datetime, n: int, due: datetime) -> None:
    assert add_working_days(filed, n) == due
    # the same instant given in UTC gives the same deadline
    assert add_working_days(filed.astimezone(UTC), n) == due


def test_a_wish_filed_at_0730_before_national_day_gets_its_policy_deadlines() -> None:
    """The default policies (community check 1 working day, town review 3, a wish's completion 15) for a wish
    filed at 07:30 China time on 30 September 2026."""
    filed = cn(2026, 9, 30, 7, 30).astimezone(UTC)
    policies = {(p.kind, p.stage): p for p in DEFAULT_POLICIES}
    assert policies[("any", "submitted")].deadline(filed) == cn(2026, 10, 8, 18)
    assert policies[("any", "verified")].deadline(filed) == cn(2026, 10, 10, 18)
    assert policies[("micro_wish", "completion")].deadline(filed) == cn(2026, 10, 27, 18)
