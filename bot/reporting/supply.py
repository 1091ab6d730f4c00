"""需求分析 against supply: per category × town, the micro-wishes received, fulfilled and waiting, the median wait of
those fulfilled, and the resource pool's capacity for that cell (active resources offering the category and serving
the town, their monthly capacity); the gaps ranked, each with a recruitment target.

The target is stated in plain terms and computed plainly: to clear the backlog within a month at the current pace,
a cell needs ``waiting + new per month`` wishes fulfilled; the pool supplies ``the sum of monthly capacities``; the
shortfall divided by the median monthly capacity of a resource of that category (4 when none exists) is the number
of resources to recruit, rounded up.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import OPEN_STATES
from bot.models import Case, Resource
from bot.reporting.scope import Scope, where

DEFAULT_MONTHLY = 4  # the model's default capacity_month of a resource
NOT_DEMAND = ("rejected", "merged", "cancelled")


@dataclass(frozen=True)
class Gap:
    town: str
    category: str
    received: int  # wishes received in the window (not rejected, merged or cancelled)
    fulfilled: int  # completed in the window
    waiting: int  # open now
    median_wait_days: float | None
    resources: int  # active resources offering the category and serving the town
    monthly_capacity: int
    shortfall: int  # wishes a month the pool cannot take
    recruit: int  # resources to recruit to clear the backlog within a month

    @property
    def sentence(self) -> str:
        if self.recruit <= 0:
            return f"{self.town}的「{self.category}」现有资源足以在一个月内消化积压"
        return (
            f"{self.town}还需约 {self.recruit} 个提供「{self.category}」的爱心资源，"
            "才能按目前的节奏在一个月内清完积压"
        )


def _serves(r: Resource, town: str) -> bool:
    return not r.towns_served or town in r.towns_served or r.home_town == town


async def demand_supply(session: AsyncSession, *, scope: Scope, now: datetime, days: int = 90) -> list[Gap]:
    """Every category × town with wishes in the window or waiting, ranked by recruitment target, then backlog."""
    start = now - timedelta(days=days)
    scoped = where(town=scope.town, community=scope.community, start=None, end=None)
    rows = (
        await session.exec(
            select(  # type: ignore[call-overload]  # five columns: sqlmodel's select is typed up to four
                col(Case.town),
                col(Case.category),
                col(Case.status),
                col(Case.created_at),
                col(Case.completed_at),
            ).where(col(Case.kind) == "micro_wish", col(Case.category).is_not(None), *scoped)
        )
    ).all()
    cells: dict[tuple[str, str], dict[str, list[float] | int]] = {}
    for town, category, status, created, completed in rows:
        c = cells.setdefault((town, category), {"received": 0, "fulfilled": 0, "waiting": 0, "waits": []})
        if status in OPEN_STATES:
            c["waiting"] += 1  # type: ignore[operator]
        if created >= start and status not in NOT_DEMAND:
            c["received"] += 1  # type: ignore[operator]
        if completed is not None and start <= completed < now:
            c["fulfilled"] += 1  # type: ignore[operator]
            c["waits"].append((completed - created).total_seconds() / 86400)  # type: ignore[union-attr]
    pool = (await session.exec(select(Resource).where(col(Resource.active).is_(True)))).all()
    per_month = 30 / days
    gaps = []
    for (town, category), c in cells.items():
        offering = [r for r in pool if category in (r.categories or []) and _serves(r, town)]
        capacity = sum(max(r.capacity_month, 0) for r in offering)
        same_kind = [
            r.capacity_month for r in pool if category in (r.categories or []) and r.capacity_month > 0
        ]
        unit = statistics.median(same_kind) if same_kind else DEFAULT_MONTHLY
        need = int(c["waiting"]) + math.ceil(int(c["received"]) * per_month)  # type: ignore[arg-type]
        shortfall = max(need - capacity, 0)
        waits = c["waits"]
        assert isinstance(waits, list)
        gaps.append(
            Gap(
                town=town,
                category=category,
                received=int(c["received"]),  # type: ignore[arg-type]
                fulfilled=int(c["fulfilled"]),  # type: ignore[arg-type]
                waiting=int(c["waiting"]),  # type: ignore[arg-type]
                median_wait_days=round(statistics.median(waits), 1) if waits else None,
                resources=len(offering),
                monthly_capacity=capacity,
                shortfall=shortfall,
                recruit=math.ceil(shortfall / unit) if shortfall else 0,
            )
        )
    gaps.sort(key=lambda g: (-g.recruit, -g.shortfall, -g.waiting, g.town, g.category))
    return gaps
