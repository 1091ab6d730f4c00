"""事件预警: early warnings for the daily digest — spikes (a category in a town well above its usual week) and
clusters (several 微实事 about the same thing in one community within days, suggested for merging into one), and
repeat requesters (one resident, or one contact phone, behind several requests within weeks: a duplicate to merge,
or a household that needs a visit rather than another case).

A spike: at least ``SPIKE_MIN`` cases of a category in a town in the last 7 days, and at least twice the weekly
average of the 8 weeks before (plus one, so a quiet category does not flag on its second case). A cluster: at least
``CLUSTER_MIN`` open micro-projects of the same item (or category when no item) in one community created within
the last ``CLUSTER_DAYS`` days. A repeat requester: at least ``REPEAT_MIN`` cases of one resident (or with one
contact phone) created within the last ``REPEAT_DAYS`` days; the warning names the cases, never the person.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import OPEN_STATES
from bot.models import Case
from reference.privacy import normalize_phone

SPIKE_MIN = 3
CLUSTER_MIN = 3
CLUSTER_DAYS = 7
BASELINE_WEEKS = 8
REPEAT_MIN = 3
REPEAT_DAYS = 30


@dataclass(frozen=True)
class EarlyWarning:
    town: str
    kind: str  # spike | cluster | repeat
    text: str
    case_nos: tuple[str, ...] = ()


async def early_warnings(session: AsyncSession, *, now: datetime) -> list[EarlyWarning]:
    week = now - timedelta(days=7)
    since = week - timedelta(weeks=BASELINE_WEEKS)
    rows = (
        await session.exec(
            select(Case.town, Case.category, Case.created_at).where(
                col(Case.created_at) >= since, col(Case.created_at) < now, col(Case.category).is_not(None)
            )
        )
    ).all()
    recent: Counter[tuple[str, str | None]] = Counter()
    before: Counter[tuple[str, str | None]] = Counter()
    for town, category, created in rows:
        (recent if created >= week else before)[(town, category)] += 1
    out: list[EarlyWarning] = []
    for (town, category), n in sorted(recent.items()):
        usual = before[(town, category)] / BASELINE_WEEKS
        if n >= SPIKE_MIN and n >= 2 * usual + 1:
            out.append(
                EarlyWarning(
                    town, "spike", f"「{category}」近7天 {n} 件，平时每周约 {usual:.1f} 件，明显增多"
                )
            )

    start = now - timedelta(days=CLUSTER_DAYS)
    projects = (
        await session.exec(
            select(Case).where(
                col(Case.kind) == "micro_project",
                col(Case.created_at) >= start,
                col(Case.status).in_(OPEN_STATES),
                col(Case.community).is_not(None),
                col(Case.merged_into_id).is_(None),
            )
        )
    ).all()
    groups: dict[tuple[str, str, str], list[Case]] = defaultdict(list)
    for c in projects:
        what = c.item or c.category
        if what:
            groups[(c.town, c.community or "", what)].append(c)
    for (town, community, what), cases in sorted(groups.items()):
        if len(cases) >= CLUSTER_MIN:
            numbers = tuple(c.case_no for c in sorted(cases, key=lambda c: c.created_at))
            out.append(
                EarlyWarning(
                    town,
                    "cluster",
                    f"{community}近{CLUSTER_DAYS}天有 {len(cases)} 件「{what}」微实事，建议合并办理：{'、'.join(numbers)}",
                    numbers,
                )
            )
    out.extend(await repeat_requesters(session, now=now))
    return out


async def repeat_requesters(session: AsyncSession, *, now: datetime) -> list[EarlyWarning]:
    """One resident (or one contact phone) behind ``REPEAT_MIN``+ cases in ``REPEAT_DAYS`` days, per town."""
    rows = (
        await session.exec(  # type: ignore[call-overload]
            sa_select(col(Case.town), col(Case.case_no), col(Case.resident_id), col(Case.contact_phone))
            .where(col(Case.created_at) >= now - timedelta(days=REPEAT_DAYS), col(Case.created_at) < now)
            .order_by(col(Case.created_at), col(Case.id))
        )
    ).all()
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for town, case_no, resident_id, phone in rows:
        keys = {f"r{resident_id}" if resident_id else "", f"p{normalize_phone(phone) or ''}" if phone else ""}
        for key in keys - {"", "p"}:
            groups[(town, key)].append(case_no)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out: list[EarlyWarning] = []
    for (town, _), numbers in sorted(groups.items()):
        cases = tuple(dict.fromkeys(numbers))
        if len(cases) < REPEAT_MIN or (town, cases) in seen:
            continue  # the same cases found by resident and by phone are one warning
        seen.add((town, cases))
        out.append(
            EarlyWarning(
                town,
                "repeat",
                f"同一居民近{REPEAT_DAYS}天提交了 {len(cases)} 件诉求，请核实是否重复、是否需要上门了解："
                f"{'、'.join(cases)}",
                cases,
            )
        )
    return out


def digest_lines(warnings: list[EarlyWarning]) -> dict[str | None, list[str]]:
    """Lines for the daily digest by town (key None: the city-wide digest gets every line, town-prefixed)."""
    lines: dict[str | None, list[str]] = defaultdict(list)
    for w in warnings:
        lines[w.town].append(f"【预警】{w.text}")
        lines[None].append(f"【预警】{w.town}：{w.text}")
    return dict(lines)
