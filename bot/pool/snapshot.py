"""The pool as the matching engine sees it: a snapshot of every resource with its current load, cached per
process and rebuilt when a cheap fingerprint of the tables changes; ranking the helpers for one wish."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.numbering import CHINA
from bot.models import Case, Offer, Resource
from bot.pool.config import DEFAULT_CONFIG, MATCHED, OPEN_MATCH, PoolConfig
from matching.model import CITY_WIDE, ITEM_CATALOGUE, ScoredCandidate, Wish
from matching.model import Resource as EngineResource
from matching.scoring import Pool, Rules

RECENT = timedelta(days=30)


def _month_start(now: datetime) -> datetime:
    local = now.astimezone(CHINA)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def to_engine(
    row: Resource, *, open_matches: int = 0, month_matches: int = 0, recent_load: float = 0.0
) -> EngineResource:
    served = frozenset(row.towns_served or ())
    return EngineResource(
        key=row.key,
        kind=row.kind,
        name=row.name,
        contact=row.contact or "",
        phone=row.phone or "",
        categories=frozenset(row.categories or ()),
        items=frozenset(row.items or ()),
        home_town=row.home_town,
        towns_served=frozenset() if CITY_WIDE in served else served,
        capacity_open=row.capacity_open,
        capacity_month=row.capacity_month,
        open_matches=open_matches,
        month_matches=month_matches,
        available=row.available,
        active=row.active,
        offers=row.offers,
        accepts=row.accepts,
        declines=row.declines,
        timeouts=row.timeouts,
        completions=row.completions,
        rating_sum=float(row.rating_sum or 0),
        rating_count=row.rating_count,
        recent_load=recent_load,
        max_fund=row.max_fund,
    )


async def _counts(
    session: AsyncSession, *, statuses: Sequence[str], since: datetime | None = None
) -> dict[int, int]:
    stmt = select(Offer.resource_id, func.count()).where(col(Offer.status).in_(statuses))
    if since is not None:
        stmt = stmt.where(col(Offer.answered_at) >= since)
    rows = (await session.exec(stmt.group_by(Offer.resource_id))).all()  # type: ignore[arg-type]
    return {int(rid): int(n) for rid, n in rows}


async def _version(session: AsyncSession, now: datetime) -> tuple[Any, ...]:
    """Cheap fingerprint of everything a snapshot depends on: two aggregates, sent as one statement."""
    r = select(  # type: ignore[call-overload]
        func.count(col(Resource.id)),
        func.max(Resource.updated_at),
        func.sum(Resource.rating_count),
        func.sum(
            Resource.offers + Resource.accepts + Resource.declines + Resource.timeouts + Resource.completions
        ),
        func.sum(
            sa.case((col(Resource.active), 1), else_=0) + sa.case((col(Resource.available), 2), else_=0)
        ),
        func.sum(Resource.capacity_open * 1000 + Resource.capacity_month),
    ).subquery()
    o = select(
        func.count(col(Offer.id)),
        func.max(Offer.id),
        func.max(Offer.answered_at),
        func.max(Offer.finished_at),
    ).subquery()
    row = (await session.exec(sa.select(r, o).select_from(r.join(o, sa.true())))).one()  # type: ignore[call-overload]
    return (*tuple(row), now.astimezone(CHINA).date())


@dataclass(slots=True)
class Snapshot:
    pool: Pool
    rows: dict[str, Resource]  # detached copies of the rows, by key
    ids: dict[str, int]
    keys: dict[int, str]
    version: tuple[Any, ...] = ()


class PoolCache:
    """One snapshot per database and rules, rebuilt only when the fingerprint changes (per process).

    The fingerprint covers row counts, the newest ``updated_at``, the history counters, the active/available flags
    and capacities, and the offers' newest id/answer/finish times; this module's own edits also drop the cache
    (``clear``) so an edit with an unchanged clock is seen at once."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, Rules], Snapshot] = {}

    def clear(self) -> None:
        self._entries.clear()

    async def snapshot(self, session: AsyncSession, *, now: datetime, rules: Rules) -> Snapshot:
        version = await _version(session, now)
        db = str(getattr(session.bind, "url", ""))
        entry = self._entries.get((db, rules))
        if entry is not None and entry.version == version:
            return entry
        entry = await build_snapshot(session, now=now, rules=rules)
        entry.version = version
        self._entries[(db, rules)] = entry
        return entry


#: The process's snapshot cache (a cache, not state: it is rebuilt whenever the database says it changed).
POOL_CACHE = PoolCache()


async def build_snapshot(session: AsyncSession, *, now: datetime, rules: Rules) -> Snapshot:
    rows = (await session.exec(select(Resource).order_by(col(Resource.id)))).all()
    open_ = await _counts(session, statuses=OPEN_MATCH)
    month = await _counts(session, statuses=MATCHED, since=_month_start(now))
    recent = await _counts(session, statuses=MATCHED, since=now - RECENT)
    engine = [
        to_engine(
            r,
            open_matches=open_.get(r.id or 0, 0),
            month_matches=month.get(r.id or 0, 0),
            recent_load=float(recent.get(r.id or 0, 0)),
        )
        for r in rows
    ]
    return Snapshot(
        pool=Pool(engine, rules=rules),
        rows={r.key: r for r in rows},
        ids={r.key: r.id for r in rows if r.id is not None},
        keys={r.id: r.key for r in rows if r.id is not None},
    )


async def load_pool(session: AsyncSession, *, now: datetime, config: PoolConfig = DEFAULT_CONFIG) -> Snapshot:
    return await POOL_CACHE.snapshot(session, now=now, rules=config.rules)


def _catalogue_item(category: str, item: str | None) -> str | None:
    """The catalogue item a case's free-text item stands for (``电动轮椅`` → ``轮椅``), or None."""
    if not item:
        return None
    catalogue = ITEM_CATALOGUE.get(category, ())
    text = item.strip()
    if text in catalogue:
        return text
    hits = [c for c in catalogue if c in text or text in c]
    return max(hits, key=len) if hits else None


def wish_for(case: Case) -> Wish | None:
    category = case.category or case.suggested_category
    if case.kind != "micro_wish" or not category:
        return None
    return Wish(
        case_id=case.id or 0,
        category=category,
        town=case.town,
        item=_catalogue_item(category, case.item),
        created_at=case.created_at,
    )


async def _offered_keys(session: AsyncSession, case_id: int, snap: Snapshot) -> list[str]:
    rows = (
        await session.exec(
            select(Offer.resource_id)
            .where(Offer.case_id == case_id)
            .order_by(col(Offer.offered_at), col(Offer.id))
        )
    ).all()
    return [snap.keys[rid] for rid in rows if rid in snap.keys]


async def rank_for_case(
    session: AsyncSession,
    *,
    case: Case,
    limit: int = 10,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
    exclude_offered: bool = True,
) -> list[ScoredCandidate]:
    """The best eligible helpers for a wish, each with its score components and reasons."""
    wish = wish_for(case)
    if wish is None:
        return []
    snap = await load_pool(session, now=now, config=config)
    exclude = set(await _offered_keys(session, case.id, snap)) if exclude_offered and case.id else set()
    return snap.pool.rank(wish, weights=config.weights, limit=limit, exclude=exclude)
