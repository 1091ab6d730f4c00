"""Batch assignment: the solver's proposal for all open wishes of a town (or the city) against greedy
first-come, and sending the reviewed proposal as offers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.access import get_case_for
from bot.cases.lifecycle import Actor, LifecycleError
from bot.models import Case, Offer, Staff
from bot.pool.config import DEFAULT_CONFIG, MATCHED, OPEN_WISH_STATES, PoolConfig
from bot.pool.offers import offer
from bot.pool.snapshot import load_pool, wish_for
from matching import batch as batch_engine


@dataclass(slots=True)
class ProposalRow:
    case: Case
    key: str
    name: str
    score: float
    greedy_key: str | None


@dataclass(slots=True)
class BatchProposal:
    town: str | None
    wishes: int
    comparison: batch_engine.Comparison | None
    rows: list[ProposalRow]
    unassigned: list[Case]

    @property
    def greedy_total(self) -> float:
        return self.comparison.greedy.total if self.comparison else 0.0

    @property
    def solver_total(self) -> float:
        return self.comparison.solver.total if self.comparison else 0.0

    @property
    def gap(self) -> float | None:
        return self.comparison.solver.gap if self.comparison else None


async def open_wishes(session: AsyncSession, *, town: str | None) -> list[Case]:
    """Wishes waiting for a helper: accepted/claimed/matching, with no accepted and no outstanding offer."""
    busy = sa.exists().where(col(Offer.case_id) == col(Case.id), col(Offer.status).in_((*MATCHED, "offered")))
    stmt = select(Case).where(Case.kind == "micro_wish", col(Case.status).in_(OPEN_WISH_STATES), ~busy)
    if town:
        stmt = stmt.where(Case.town == town)
    return list((await session.exec(stmt.order_by(col(Case.created_at)))).all())


async def propose_batch(
    session: AsyncSession, *, town: str | None, now: datetime, config: PoolConfig = DEFAULT_CONFIG
) -> BatchProposal:
    """The solver's assignment of all open wishes of a town (or the city) against greedy first-come."""
    cases = await open_wishes(session, town=town)
    wishes = [w for c in cases if (w := wish_for(c)) is not None]
    if not wishes:
        return BatchProposal(town, 0, None, [], cases)
    snap = await load_pool(session, now=now, config=config)
    comparison = batch_engine.compare(snap.pool, wishes, weights=config.weights)
    by_id = {c.id: c for c in cases}
    greedy_of = {a.case_id: a.key for a in comparison.greedy.assignments}
    rows = [
        ProposalRow(by_id[a.case_id], a.key, snap.rows[a.key].name, a.score, greedy_of.get(a.case_id))
        for a in comparison.solver.assignments
        if a.case_id in by_id
    ]
    assigned = {r.case.id for r in rows}
    return BatchProposal(town, len(wishes), comparison, rows, [c for c in cases if c.id not in assigned])


async def send_batch(
    session: AsyncSession,
    *,
    pairs: Sequence[tuple[str, str]],
    actor: Actor,
    staff: Staff,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
) -> tuple[int, list[str]]:
    """Send the reviewed proposal: one offer per (case number, resource key). Returns (sent, problems)."""
    sent, problems = 0, []
    for case_no, key in pairs:
        case = await get_case_for(session, staff=staff, case_no=case_no)
        if case is None:
            problems.append(f"{case_no}：找不到或不在您的辖区")
            continue
        try:
            async with session.begin_nested():
                await offer(session, case=case, actor=actor, keys=[key], now=now, config=config)
            sent += 1
        except LifecycleError as exc:
            problems.append(f"{case_no}：{exc}")
    return sent, problems
