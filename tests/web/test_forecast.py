"""需求预测 through the real app: on a seeded history (a 助学 term start last March, 春节 and 中秋 weeks quiet, a steady
助老 line) the forecast of the next four weeks and the errors on past weeks are checked against values worked out by
hand in this file from the seeded counts (the arithmetic is written out beside each value). Holidays are read from
chinese-calendar, an outside source."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest

from bot import keys
from bot.reporting.forecast import forecast
from bot.reporting.scope import Scope
from tests.factories import STATS_NOW as NOW
from tests.factories import TOWN as A
from tests.factories import add_rows, case_row
from tests.helpers import signed_in_admin, stats_app

FIRST = date(2025, 1, 6)  # a Monday; NOW (Wed 2026-03-18) is in the week of Monday 2026-03-16
THIS_WEEK = date(2026, 3, 16)
TERM = {date(2025, 3, 10), date(2025, 3, 17), date(2025, 3, 24)}
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)


def festival_week(monday: date) -> bool:
    for i in range(7):
        holiday, name = chinese_calendar.get_holiday_detail(monday + timedelta(days=i))
        if holiday and name in ("Spring Festival", "Mid-autumn Festival"):
            return True
    return False


def study_count(monday: date) -> int:
    return 0 if festival_week(monday) else 6 if monday in TERM else 2


def weeks() -> list[date]:
    out, w = [], FIRST
    while w < THIS_WEEK:
        out.append(w)
        w += timedelta(weeks=1)
    return out


async def _seed(sessions: Any) -> dict[date, int]:
    rows = []
    counts = {}
    for w in weeks():
        counts[w] = study_count(w)
        noon = datetime(w.year, w.month, w.day, 4, tzinfo=NOW.tzinfo) + timedelta(days=2)  # Wednesday noon
        rows += [case_row(town=A, category="助学", created=noon) for _ in range(counts[w])]
        rows.append(case_row(town=A, category="助老", created=noon))
    # this week's first case is not history yet
    rows.append(case_row(town=A, category="助学", created=datetime(2026, 3, 16, 2, tzinfo=NOW.tzinfo)))
    await add_rows(sessions, *rows)
    return counts


def test_the_seeded_calendar_is_what_the_hand_values_assume() -> None:
    # 春节 2025: 1-28 … 2-4 (weeks of 1-27 and 2-3); 2026: 2-15 … 2-23 (weeks of 2-9, 2-16, 2-23); 中秋 2025: 10-6
    quiet = [w for w in weeks() if festival_week(w)]
    assert quiet == [
        date(2025, 1, 27),
        date(2025, 2, 3),
        date(2025, 10, 6),
        date(2026, 2, 9),
        date(2026, 2, 16),
        date(2026, 2, 23),
    ]


async def test_forecast_and_its_error_match_the_hand_computed_values(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    app = await stats_app(tmp_path, NOW)
    client = await aiohttp_client(app)
    sessions = app[keys.SESSIONS]
    counts = await _seed(sessions)
    async with sessions() as db:
        got = await forecast(db, scope=Scope(town=None, community=None), now=NOW)
    study = next(c for c in got.categories if c.category == "助学")
    elder = next(c for c in got.categories if c.category == "助老")

    # level (2026): the 8 weeks 1-19 … 3-9 hold 2,2,2,0,0,0,2,2 → 10/8 = 1.25
    # week 3-16: last year's 3-10/3-17/3-24 = 6,6,6 → 6; the 8 weeks 1-13 … 3-3 (2025) = 2,2,0,0,2,2,2,2 → 1.5;
    #            season 6/1.5 = 4 → 1.25 × 4 = 5.0
    # week 3-23: (6+6+2)/3 = 4.667; base 1-20 … 3-10 = 2,0,0,2,2,2,2,6 → 2.0 → 1.25 × 2.333 = 2.917 → 2.9
    # week 3-30: (6+2+2)/3 = 3.333; base 1-27 … 3-17 = 0,0,2,2,2,2,6,6 → 2.5 → 1.25 × 1.333 = 1.667 → 1.7
    # week 4-6:  (2+2+2)/3 = 2; base 2-3 … 3-24 = 0,2,2,2,2,6,6,6 → 3.25 → 1.25 × 0.615 = 0.769 → 0.8
    assert study.ahead == [
        ("2026-03-16", 5.0, None),
        ("2026-03-23", 2.9, None),
        ("2026-03-30", 1.7, None),
        ("2026-04-06", 0.8, None),
    ]
    assert [v for _, v, _ in elder.ahead] == [1.0, 1.0, 1.0, 1.0]  # level 1 × season 1/1

    # the error on the last 12 weeks (12-22 … 3-9): the plain level's, by hand from the seeded counts
    backtest_weeks = [THIS_WEEK - timedelta(weeks=i) for i in range(12, 0, -1)]
    level_errors = []
    for w in backtest_weeks:
        level = sum(counts[w - timedelta(weeks=k)] for k in range(1, 9)) / 8
        level_errors.append(abs(level - counts[w]))
    assert [b[0] for b in study.backtest] == [w.isoformat() for w in backtest_weeks]
    assert study.mae_level == round(sum(level_errors) / 12, 2)
    # 春节 2026 (week 2-16): the festival's own factor from 2025's 春节 weeks (0 cases there) → 0, as came
    feb16 = next(b for b in study.backtest if b[0] == "2026-02-16")
    assert feb16[1] == 0 and feb16[2] == 0.0
    # the seasonal forecast beat the plain mean here (the quiet festival weeks were foreseen)
    assert study.mae is not None and study.mae < study.mae_level

    await signed_in_admin(client, sessions)
    html = await (await client.get("/staff/stats/charts")).text()
    m = re.search(r'<table id="table-forecast">(.*?)</table>', html, re.S)
    assert m
    rows = {
        r[0]: r[1:]
        for r in ([c.strip() for c in CELL.findall(x)] for x in ROW.findall(m.group(1).split("<tbody>")[1]))
    }
    assert rows["助学"][:4] == ["5.0", "2.9", "1.7", "0.8"] and rows["助学"][5] == f"±{study.mae_level}"


@pytest.mark.parametrize("history_weeks", [0, 5])
async def test_thin_history_says_so(tmp_path: Path, aiohttp_client: Any, history_weeks: int) -> None:
    app = await stats_app(tmp_path, NOW)
    client = await aiohttp_client(app)
    sessions = app[keys.SESSIONS]
    await add_rows(
        sessions,
        *[
            case_row(town=A, category="助学", created=NOW - timedelta(weeks=i + 1))
            for i in range(history_weeks)
        ],
    )
    async with sessions() as db:
        got = await forecast(db, scope=Scope(town=None, community=None), now=NOW)
    if history_weeks == 0:
        assert got.categories == []
    else:
        [study] = got.categories
        assert study.mae is None and study.backtest == []  # fewer than 8 weeks before any past week
        assert [v for _, v, _ in study.ahead] == [0.6] * 4  # 5 cases in the last 8 weeks = 0.625, season 1
    await signed_in_admin(client, sessions)
    html = await (await client.get("/staff/stats/charts")).text()
    assert "历史不足一年" in html
