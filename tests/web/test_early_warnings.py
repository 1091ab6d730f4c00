"""事件预警 in the daily digest (SQLite and PostgreSQL): a seeded spike and a seeded cluster of 微实事 flagged, told to
the town's staff (and to the city), not to another town's staff; figures worked out by hand from the seeded rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot.db import transaction
from bot.models import Outbox, Staff
from bot.ops.scheduler import digest_job
from bot.reporting.warnings import early_warnings
from tests.factories import OTHER as B
from tests.factories import STATS_NOW as NOW
from tests.factories import TOWN as A
from tests.factories import add_rows, add_staff, case_row

D = timedelta(days=1)


async def test_a_spike_and_a_cluster_reach_the_digest(sessions: Any) -> None:
    rows = [case_row(town=A, category="照明", created=NOW - (i + 1) * D) for i in range(4)]  # usual: none
    rows += [case_row(town=A, category="助老", created=NOW - (i % 6 + 1) * D) for i in range(3)]
    rows += [
        case_row(town=A, category="助老", created=NOW - 8 * D - i * 3 * D) for i in range(16)
    ]  # 2 a week
    lamps = [
        case_row(
            town=A,
            kind="micro_project",
            item="路灯",
            category="公共设施",
            community="新围社区",
            status="verified",
            created=NOW - (i + 1) * D,
        )
        for i in range(3)
    ]
    lamps.append(
        case_row(
            town=A,
            kind="micro_project",
            item="路灯",
            category="公共设施",
            community="涌口社区",
            status="verified",
            created=NOW - 2 * D,
        )
    )  # another community
    lamps.append(
        case_row(
            town=A,
            kind="micro_project",
            item="路灯",
            category="公共设施",
            community="新围社区",
            status="verified",
            created=NOW - 10 * D,
        )
    )  # too long ago for the cluster
    await add_rows(sessions, *rows, *lamps)
    for name, role, town in (("a1", "town_staff", A), ("b1", "town_staff", B), ("city", "admin", None)):
        await add_staff(sessions, name, role, town=town)
    async with transaction(sessions) as db:
        for s in (await db.exec(select(Staff))).all():
            s.openid = f"o-{s.username}"

    async with transaction(sessions) as db:
        found = await early_warnings(db, now=NOW)
    spikes = sorted(w.text for w in found if w.kind == "spike")
    # 照明: 4 this week, 0 before; 公共设施: 4 this week, 1 in the 8 weeks before (0.125 a week);
    # 助老: 3 this week against 2 a week (needs 5) is no spike
    assert spikes == [
        "「公共设施」近7天 4 件，平时每周约 0.1 件，明显增多",
        "「照明」近7天 4 件，平时每周约 0.0 件，明显增多",
    ]
    [cluster] = [w for w in found if w.kind == "cluster"]
    assert cluster.town == A and cluster.case_nos == tuple(c.case_no for c in reversed(lamps[:3]))
    assert "新围社区" in cluster.text and "3 件「路灯」" in cluster.text and "建议合并" in cluster.text

    await digest_job(sessions=sessions, clock=lambda: NOW)
    async with sessions() as db:
        sent = {o.openid: o.text for o in (await db.exec(select(Outbox))).all()}
    assert set(sent) == {"o-a1", "o-city"}  # B has nothing overdue and no warning: no digest
    assert sent["o-a1"].count("【预警】") == 3 and all(c.case_no in sent["o-a1"] for c in lamps[:3])
    assert sent["o-city"].count(f"【预警】{A}：") == 3
