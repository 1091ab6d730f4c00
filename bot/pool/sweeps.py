"""What the scheduler's sweeps do for the pool: a timed-out offer passes the wish to the next candidate (or flags
the case when nobody is left), and the automatic rule offers claimed wishes of the configured towns."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import Actor
from bot.models import Case, Offer
from bot.pool.config import DEFAULT_CONFIG, PoolConfig, PoolError
from bot.pool.offers import OfferOutcome, apply_actions, load_cascade, offer
from bot.pool.records import lock_case
from bot.pool.snapshot import wish_for

log = logging.getLogger(__name__)


async def handle_offer_timeout(
    session: AsyncSession, offer: Offer, now: datetime, *, config: PoolConfig = DEFAULT_CONFIG
) -> None:
    """After the sweep marked ``offer`` as timed out: offer the next candidate, or flag the case when exhausted."""
    case = await lock_case(session, offer.case_id)
    if case.status != "matching":
        return
    state = await load_cascade(session, case=case, now=now, config=config)
    if state.cascade.status != "offering":
        return
    actions: list[Any] = list(state.cascade.tick(now))
    if state.cascade.status == "offering":
        actions += state.cascade.add_candidates([], now)
    await apply_actions(session, state, actions, now=now, config=config)
    await session.flush()


async def on_offer_timeout(session: AsyncSession, offer: Offer, now: datetime) -> None:
    """``bot.deadlines.sweeps.OfferTimeoutHook`` with the default weights (see ``make_offer_timeout_hook``)."""
    await handle_offer_timeout(session, offer, now)


def make_offer_timeout_hook(config: PoolConfig) -> Any:
    """The sweeps' ``OfferTimeoutHook`` bound to the configured weights and rules."""

    async def hook(session: AsyncSession, offer: Offer, now: datetime) -> None:
        await handle_offer_timeout(session, offer, now, config=config)

    return hook


async def maybe_auto_offer(
    session: AsyncSession, *, case: Case, now: datetime, config: PoolConfig = DEFAULT_CONFIG
) -> OfferOutcome | None:
    """The automatic rule per town: a claimed wish of a town in ``auto_offer_towns`` is offered at once to the top
    ``auto_k`` (the system actor may only start matching on a claimed case). Returns None when the rule is off."""
    if (
        not config.auto_offers(case.town)
        or case.kind != "micro_wish"
        or case.status != "claimed"
        or wish_for(case) is None
    ):
        return None
    try:
        async with session.begin_nested():
            return await offer(
                session,
                case=case,
                actor=Actor.system("自动对接"),
                now=now,
                config=config,
                mode="top_k" if config.auto_k > 1 else "single",
                k=config.auto_k,
            )
    except PoolError as exc:
        log.info("case %s: no automatic offer (%s)", case.case_no, exc)
        return None


async def auto_offer_due(
    session: AsyncSession, *, now: datetime, config: PoolConfig = DEFAULT_CONFIG, batch: int = 100
) -> int:
    """A sweep for the automatic rule: claimed wishes of auto towns that were never offered."""
    if not config.auto_offer_towns:
        return 0
    never = ~sa.exists().where(col(Offer.case_id) == col(Case.id))
    stmt = select(Case).where(Case.kind == "micro_wish", Case.status == "claimed", never).limit(batch)
    n = 0
    for case in (await session.exec(stmt)).all():
        if await maybe_auto_offer(session, case=case, now=now, config=config):
            n += 1
    return n
