"""数据统计 and 需求分析 on a seeded database: exact figures, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.db import transaction
from bot.models import Case, CaseEvent, Offer, Resource, Survey
from bot.reporting.demand import demand_top, top_category_by_town, unmet_wishes_by_town, weekly_trend
from bot.reporting.figures import (
    counts,
    dashboard,
    handling_times,
    overdue_now,
    pool_usage,
    satisfaction,
    stage_on_time,
)
from bot.reporting.scope import Scope, scope_for
from bot.reporting.words import top_words
from tests.factories import OTHER as B
from tests.factories import TOWN as A
from tests.factories import add_rows as add
from tests.factories import case_row as mk

NOW = datetime(2026, 3, 18, 4, 0, tzinfo=UTC)  # Wednesday 12:00 China time
START = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # 2026-03-01 00:00 China time
END = datetime(2026, 3, 31, 16, 0, tzinfo=UTC)


# ------------------------------------------------------------------ counts
async def test_counts_by_status_kind_category_town_channel(sessions):
    await add(
        sessions,
        mk(status="submitted", channel="wechat"),
        mk(status="submitted", channel="hotline_12345", category="助学"),
        mk(status="completed", completed=NOW - timedelta(days=1), channel="window"),
        mk(kind="micro_project", status="in_progress", category="照明"),
        mk(town=B, status="submitted"),
        mk(created=START - timedelta(seconds=1)),  # the day before the range
        mk(created=END),  # the first instant after it
    )
    async with sessions() as db:
        a = await counts(db, town=A, start=START, end=END)
        city = await counts(db, town=None, start=START, end=END)
    assert a.total == 4
    assert a.by_status == [("submitted", 2), ("completed", 1), ("in_progress", 1)]
    assert dict(a.by_kind) == {"micro_wish": 3, "micro_project": 1}
    assert dict(a.by_category) == {"助老": 2, "助学": 1, "照明": 1}
    assert a.by_town == [(A, 4)]
    assert dict(a.by_channel) == {"wechat": 2, "hotline_12345": 1, "window": 1}
    assert a.completed == 1
    assert city.total == 5 and city.by_town == [(A, 4), (B, 1)]


# ------------------------------------------------------------------ timeliness
def ev(
    case: Case, frm: str, to: str, *, late: bool | None, at: datetime = NOW - timedelta(hours=1)
) -> CaseEvent:
    data: dict[str, object] = {"action": "x"}
    if late is not None:
        data["late"] = late
    return CaseEvent(
        case_id=case.id,
        at=at,
        actor_type="staff",
        kind="transition",
        from_status=frm,
        to_status=to,
        data=data,
    )


async def test_on_time_rate_per_stage(sessions):
    c1, c2, c3, other = await add(sessions, mk(), mk(), mk(), mk(town=B))
    await add(
        sessions,
        ev(c1, "submitted", "verified", late=False),
        ev(c2, "submitted", "verified", late=True),
        ev(c3, "submitted", "verified", late=False),
        ev(c1, "verified", "accepted", late=False),
        ev(c1, "matching", "in_progress", late=False),  # completion continues: not an exit
        ev(c1, "in_progress", "completed", late=True),
        ev(c2, "submitted", "verified", late=None),  # no deadline known: not counted
        ev(c3, "verified", "accepted", late=False, at=START - timedelta(days=1)),  # before the range
        ev(other, "submitted", "verified", late=True),
    )
    async with sessions() as db:
        rates = {r.stage: r for r in await stage_on_time(db, town=A, start=START, end=END)}
        city = {r.stage: r for r in await stage_on_time(db, town=None, start=START, end=END)}
    assert (rates["submitted"].finished, rates["submitted"].on_time) == (3, 2)
    assert rates["submitted"].rate == pytest.approx(0.6667)
    assert (rates["verified"].finished, rates["verified"].on_time) == (1, 1)
    assert (rates["completion"].finished, rates["completion"].on_time) == (1, 0)
    assert set(rates) == {"submitted", "verified", "completion"}
    assert (city["submitted"].finished, city["submitted"].on_time) == (4, 2)


async def test_median_and_mean_handling_time_per_kind(sessions):
    done = NOW - timedelta(days=1)
    await add(
        sessions,
        *[mk(status="completed", created=done - timedelta(hours=h), completed=done) for h in (2, 4, 30)],
        *[
            mk(kind="micro_project", status="closed", created=done - timedelta(hours=h), completed=done)
            for h in (1, 3)
        ],
        mk(status="completed", created=done - timedelta(hours=500), completed=START - timedelta(hours=1)),
        mk(town=B, status="completed", created=done - timedelta(hours=100), completed=done),
    )
    async with sessions() as db:
        rows = {d.kind: d for d in await handling_times(db, town=A, start=START, end=END)}
    assert rows["micro_wish"].completed == 3
    assert rows["micro_wish"].median_hours == pytest.approx(4.0, abs=0.01)
    assert rows["micro_wish"].mean_hours == pytest.approx(12.0, abs=0.01)
    assert rows["micro_project"].completed == 2
    assert rows["micro_project"].median_hours == pytest.approx(2.0, abs=0.01)


async def test_overdue_now_counts_open_cases_past_their_deadline(sessions):
    await add(
        sessions,
        mk(status="verified", deadline=NOW - timedelta(hours=1)),
        mk(status="in_progress", deadline=NOW - timedelta(days=3)),
        mk(status="in_progress", deadline=NOW + timedelta(hours=1)),
        mk(status="completed", deadline=NOW - timedelta(days=1)),
        mk(town=B, status="verified", deadline=NOW - timedelta(hours=1)),
    )
    async with sessions() as db:
        rows = await overdue_now(db, town=A, now=NOW)
    assert dict(rows) == {"verified": 1, "in_progress": 1}


# ------------------------------------------------------------------ satisfaction and the pool
async def test_satisfaction_average_distribution_rate_low(sessions):
    cases = await add(sessions, *[mk(status="closed") for _ in range(6)], mk(town=B, status="closed"))
    sent = NOW - timedelta(days=1)
    answers = [("answered", 5), ("answered", 4), ("answered", 1), ("expired", None), ("sent", None)]
    await add(
        sessions,
        *[
            Survey(case_id=c.id, status=s, score=sc, sent_at=sent)
            for c, (s, sc) in zip(cases, answers, strict=False)
        ],
        Survey(case_id=cases[5].id, status="answered", score=5, sent_at=START - timedelta(days=3)),
        Survey(case_id=cases[6].id, status="answered", score=1, sent_at=sent),
    )
    async with sessions() as db:
        s = await satisfaction(db, town=A, start=START, end=END)
    assert (s.sent, s.answered, s.expired, s.low) == (5, 3, 1, 1)
    assert s.average == pytest.approx(3.33)
    assert s.response_rate == pytest.approx(0.6)
    assert s.distribution == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}


async def test_pool_usage_accept_rate_and_top_resources(sessions):
    r1 = Resource(key="r1", kind="enterprise", name="粮油爱心企业", home_town=A)
    r2 = Resource(key="r2", kind="individual", name="热心志愿者", home_town=A)
    done = NOW - timedelta(days=1)
    c1, c2, c3, c4 = await add(
        sessions,
        mk(status="completed", completed=done),
        mk(status="completed", completed=done),
        mk(status="matching"),
        mk(town=B, status="completed", completed=done),
    )
    await add(sessions, r1, r2)
    at = NOW - timedelta(days=2)
    await add(
        sessions,
        Offer(case_id=c1.id, resource_id=r1.id, status="done", offered_at=at),
        Offer(case_id=c2.id, resource_id=r1.id, status="accepted", offered_at=at),
        Offer(case_id=c2.id, resource_id=r2.id, status="declined", offered_at=at),
        Offer(case_id=c3.id, resource_id=r2.id, status="timeout", offered_at=at),
        Offer(case_id=c3.id, resource_id=r1.id, status="offered", offered_at=at),
        Offer(case_id=c4.id, resource_id=r2.id, status="done", offered_at=at),
    )
    async with sessions() as db:
        p = await pool_usage(db, town=A, start=START, end=END)
        city = await pool_usage(db, town=None, start=START, end=END)
    assert p.offers == 5 and p.accepted == 2 and p.answered == 4
    assert p.accept_rate == pytest.approx(0.5)
    assert p.top == [("粮油爱心企业", 2)]
    assert city.top == [("粮油爱心企业", 2), ("热心志愿者", 1)]


# ------------------------------------------------------------------ demand analysis
async def test_demand_this_month_vs_last_unmet_and_weekly_trend(sessions):
    this = NOW - timedelta(days=3)
    last = datetime(2026, 2, 10, 4, 0, tzinfo=UTC)
    await add(
        sessions,
        *[mk(category="助老", item="轮椅", created=this) for _ in range(3)],
        mk(category="助学", item="书包", created=this),
        *[
            mk(category="助学", item="书包", created=last, status="completed", completed=last)
            for _ in range(4)
        ],
        mk(category="助老", created=last),
        mk(category="助医", created=datetime(2026, 1, 5, tzinfo=UTC)),  # two months ago: not counted
        *[mk(town=B, category="助残", created=this) for _ in range(5)],
        mk(town=B, kind="micro_project", category="照明", created=this),
    )
    async with sessions() as db:
        cats = await demand_top(db, town=A, now=NOW)
        items = await demand_top(db, town=A, now=NOW, by="item")
        by_town = await top_category_by_town(db, town=None, now=NOW)
        unmet = await unmet_wishes_by_town(db, town=None)
        weeks = await weekly_trend(db, town=A, now=NOW, weeks=6)
    assert [(r.name, r.this_month, r.last_month, r.change) for r in cats] == [
        ("助老", 3, 1, 2),
        ("助学", 1, 4, -3),
    ]
    assert [(r.name, r.this_month, r.last_month) for r in items] == [("轮椅", 3, 0), ("书包", 1, 4)]
    assert by_town == [(B, "助残", 5, 6), (A, "助老", 3, 4)]
    assert unmet == [(A, 6), (B, 5)]  # open micro-wishes: A has 3+1+1+1, B 5 (the project is not a wish)
    assert len(weeks) == 6
    assert weeks[-1].week_start.isoformat() == "2026-03-16"  # the Monday of NOW's week, China time
    by_start = {w.week_start.isoformat(): (w.created, w.completed) for w in weeks}
    assert by_start["2026-03-16"] == (0, 0)
    assert by_start["2026-03-09"] == (4, 0)  # 03-15 04:00 UTC is Sunday noon in China: the week before
    assert by_start["2026-02-09"] == (5, 4)
    assert sum(w.created for w in weeks) == 9


def test_top_words_drop_stop_words_numbers_and_keep_town_names():
    texts = [
        "我家老人需要一台轮椅，电话13812345678",
        "独居老人需要轮椅和助听器，住在樟木头镇",
        "希望帮忙修一下路灯",
    ]
    words = dict(top_words(texts, n=20))
    assert words["轮椅"] == 2 and words["老人"] >= 1
    assert words["樟木头镇"] == 1
    assert "13812345678" not in words and "需要" not in words and "希望" not in words
    assert all(len(w) >= 2 for w in words)


# ------------------------------------------------------------------ jurisdiction
@pytest.mark.parametrize(
    ("role", "own", "asked", "expected"),
    [
        ("town_staff", A, B, Scope(A)),
        ("town_supervisor", A, None, Scope(A)),
        ("community_worker", A, B, Scope(A, "新围社区")),
        ("city_supervisor", None, B, Scope(B)),
        ("admin", None, None, Scope(None)),
        ("city_supervisor", None, "不存在镇", Scope(None)),
        ("town_staff", None, B, Scope("\x00")),
    ],
)
def test_scope_follows_the_staff_not_the_url(role, own, asked, expected):
    assert scope_for(role=role, own_town=own, own_community="新围社区", requested_town=asked) == expected


async def test_dashboard_for_a_community_worker_counts_only_their_community(sessions):
    await add(sessions, mk(community="新围社区"), mk(community="新围社区"), mk(community="河田社区"))
    async with sessions() as db:
        d = await dashboard(db, scope=Scope(A, "新围社区"), start=START, end=END, now=NOW)
    assert d.counts.total == 2


async def test_on_time_rate_from_real_transitions(sessions):
    from bot.cases.lifecycle import Actor, transition
    from bot.cases.numbering import create_case

    actor = Actor("staff", 1, "镇街工作人员", role="town_staff", town=A)
    t0 = NOW - timedelta(days=3)
    async with transaction(sessions) as db:
        c = await create_case(db, kind="micro_wish", description="需要轮椅", town=A, resident_id=None, now=t0)
        c.stage_deadline = t0 + timedelta(hours=1)
        await db.flush()
        await transition(db, case=c, action="verify", actor=actor, note=None, now=t0 + timedelta(hours=5))
        await transition(db, case=c, action="accept", actor=actor, note=None, now=t0 + timedelta(hours=6))
    async with sessions() as db:
        rates = {
            r.stage: (r.finished, r.on_time) for r in await stage_on_time(db, town=A, start=START, end=END)
        }
    assert rates == {"submitted": (1, 0), "verified": (1, 1)}
