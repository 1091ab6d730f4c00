"""How many wishes policies covered (政策优先), for the statistics page: applications routed in the period and,
among those decided in it, granted and refused, per policy, within the staff member's scope (a town or the city)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Case, PolicyReferral


@dataclass(slots=True)
class PolicyCount:
    routed: int = 0  # routed to a policy in the period
    granted: int = 0  # decided in the period: granted (the wish covered by a policy)
    refused: int = 0
    pending: int = 0  # still waiting for the department's answer now
    by_policy: list[tuple[str, int, int]] = field(default_factory=list)  # (policy, granted, refused)


async def policy_count(
    session: AsyncSession, *, town: str | None, start: datetime, end: datetime
) -> PolicyCount:
    stmt = select(PolicyReferral).join(Case, col(Case.id) == col(PolicyReferral.case_id))
    if town is not None:
        stmt = stmt.where(Case.town == town)
    out = PolicyCount()
    per: dict[str, list[int]] = {}
    for r in (await session.exec(stmt)).all():
        if start <= r.created_at < end:
            out.routed += 1
        if r.outcome == "pending":
            out.pending += 1
        elif r.decided_at is not None and start <= r.decided_at < end:
            counts = per.setdefault(r.policy_name, [0, 0])
            if r.outcome == "granted":
                out.granted += 1
                counts[0] += 1
            elif r.outcome == "refused":
                out.refused += 1
                counts[1] += 1
    out.by_policy = sorted(((n, g, f) for n, (g, f) in per.items()), key=lambda t: (-t[1], t[0]))
    return out
