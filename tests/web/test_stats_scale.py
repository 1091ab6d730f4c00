"""The dashboard stays fast on 100,000 cases: every figure is an aggregate, nothing loads all rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from bot.db import transaction
from bot.models import Case, CaseEvent, Survey
from bot.reporting.figures import dashboard
from bot.reporting.scope import Scope
from reference.towns import TOWNS

NOW = datetime(2026, 3, 18, 4, 0, tzinfo=UTC)
N = 100_000
CATS = ["助学", "助医", "助老", "助残", "生活物资", "就业帮扶", "心理关爱", "其他"]
STATES = ["submitted", "verified", "accepted", "claimed", "matching", "in_progress", "completed", "closed"]


async def _seed(sessions) -> None:
    rnd = random.Random(7)
    cases, events, surveys = [], [], []
    for i in range(1, N + 1):
        created = NOW - timedelta(minutes=rnd.randrange(0, 200 * 24 * 60))
        status = rnd.choice(STATES)
        done = created + timedelta(hours=rnd.randrange(1, 400)) if status in ("completed", "closed") else None
        cases.append(
            {
                "id": i,
                "case_no": f"MS-S{i:07d}",
                "kind": "micro_wish" if i % 20 else "micro_project",
                "status": status,
                "category": rnd.choice(CATS),
                "item": rnd.choice(["轮椅", "书包", "大米", "助听器", None]),
                "description": rnd.choice(["独居老人需要轮椅", "孩子上网课需要电脑", "家里困难需要大米和油"]),
                "town": TOWNS[i % len(TOWNS)].name,
                "channel": rnd.choice(["wechat", "hotline_12345", "window"]),
                "stage_deadline": created + timedelta(days=5),
                "created_at": created,
                "updated_at": created,
                "completed_at": done,
            }
        )
        if i % 2 == 0:
            events.append(
                {
                    "case_id": i,
                    "at": created + timedelta(hours=3),
                    "actor_type": "staff",
                    "kind": "transition",
                    "from_status": "submitted",
                    "to_status": "verified",
                    "note": "",
                    "data": {"late": i % 6 == 0},
                }
            )
        if done is not None and i % 3 == 0:
            surveys.append({"case_id": i, "status": "answered", "score": 1 + i % 5, "sent_at": done})
    async with transaction(sessions) as db:
        for table, rows in ((Case, cases), (CaseEvent, events), (Survey, surveys)):
            for k in range(0, len(rows), 5000):
                await db.exec(insert(table), params=rows[k : k + 5000])  # type: ignore[call-overload]


@pytest.mark.slow  # 100,000 cases: run by make test, left out of make test-fast
async def test_dashboard_on_100k_cases_counts_in_every_scope(sessions):
    await _seed(sessions)
    start, end = NOW - timedelta(days=90), NOW
    for scope in (Scope(None), Scope(TOWNS[0].name)):
        async with sessions() as db:
            d = await dashboard(db, scope=scope, start=start, end=end, now=NOW)
        assert d.counts.total > 0 and d.satisfaction.answered > 0
        # speed is measured in benchmarks/, not asserted here (a loaded machine is not a failure)
