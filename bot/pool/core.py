"""The 爱心资源库 in the database: pool snapshots for ranking, the offer cascade persisted as Offer rows, the
volunteer's answers and progress, WeChat binding with a one-time code, import/export, and batch proposals.

The pure engine lives in ``matching/``; this module turns rows into engine objects and engine actions back into
rows, timeline events and outbox messages, always in the caller's transaction.

Cascade state. Each Offer row is one offer of the engine's ``Cascade``; the mode and ``k`` of a case's cascade are
stored on the timeline event (kind ``offer``) written when staff (or the automatic rule) start it. On every event
(accept, decline, timeout) the cascade is rebuilt with ``Cascade.from_dict`` from the case's Offer rows plus a fresh
ranking of the resources not offered yet (so the next candidate reflects today's load, not yesterday's), the engine
decides, and its actions are written back. The case row is locked first (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` serialises writers), and acceptance is a conditional UPDATE, so two volunteers
accepting at once give exactly one match; the other hears that someone else was faster.

Messages to volunteers carry the link marker ``sign:offer:<offer id>``, which the outbox dispatcher turns into a
signed ``/offer/<token>`` link; domain code never holds the link secret.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import (
    STATE_LABEL,
    Actor,
    LifecycleError,
    claim,
    complete,
    notify_resident,
    transition,
)
from bot.cases.numbering import CHINA, KIND_LABEL
from bot.cases.timeline import record_event
from bot.delivery.outbox import enqueue
from bot.models import Case, CaseEvent, Category, Offer, Resource, Staff
from matching import batch as batch_engine
from matching.cascade import REPLY_TEXTS, Cascade, Exhausted, Matched, OfferSent, OfferWithdrawn
from matching.model import CITY_WIDE, ITEM_CATALOGUE, KIND_LABELS, ScoredCandidate, Weights, Wish
from matching.model import Resource as EngineResource
from matching.scoring import Pool, Rules, eligible, score, town_name

log = logging.getLogger(__name__)

Mode = Literal["single", "top_k"]
MATCHED = ("accepted", "delivered", "done")
OPEN_MATCH = ("accepted", "delivered")
OPEN_WISH_STATES = ("accepted", "claimed", "matching")
OFFER_LABEL = {
    "offered": "待答复",
    "accepted": "已接受",
    "declined": "已婉拒",
    "timeout": "超时未答复",
    "withdrawn": "已撤回",
    "delivered": "已送达",
    "done": "已完成",
}
_TO_ENGINE = {
    "offered": "pending",
    "accepted": "accepted",
    "delivered": "accepted",
    "done": "accepted",
    "declined": "declined",
    "timeout": "timed_out",
    "withdrawn": "withdrawn",
}
EXHAUSTED_FLAG = "match_exhausted"
BIND_PREFIX = "志愿者绑定"
BIND_TTL = timedelta(hours=24)
RECENT = timedelta(days=30)


class PoolError(LifecycleError):
    """A matching error staff or volunteers can read (views turn it into a message)."""


# ---------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Weights, hard-filter rules and the automatic-offer rule, read from Settings once.

    Settings (all optional; see bot/settings.py): ``matching_weights`` (mapping, English or Chinese component names),
    ``matching_max_unfinished`` (anti-hoarding limit), ``auto_offer_towns`` (towns whose claimed wishes are offered
    automatically; ``全市`` or ``*`` = every town), ``auto_offer_k`` (top-k of the automatic rule, 1 = one at a time).
    """

    weights: Weights = Weights()
    rules: Rules = Rules()
    auto_offer_towns: frozenset[str] = frozenset()
    auto_k: int = 3
    offer_hours: float = 24.0  # when bot.deadlines.sla has no "offer" policy

    @classmethod
    def from_settings(cls, settings: Any) -> PoolConfig:
        weights = Weights.from_mapping(getattr(settings, "matching_weights", None) or None)
        rules = Rules(max_unfinished=int(getattr(settings, "matching_max_unfinished", 5) or 5))
        raw = getattr(settings, "auto_offer_towns", None) or ()
        if isinstance(raw, str):
            raw = [t for t in re.split(r"[、,，;\s]+", raw) if t]
        towns = frozenset("*" if t in ("*", CITY_WIDE) else town_name(t) for t in raw)
        return cls(
            weights=weights,
            rules=rules,
            auto_offer_towns=towns,
            auto_k=max(1, int(getattr(settings, "auto_offer_k", 3) or 3)),
        )

    def auto_offers(self, town: str) -> bool:
        return "*" in self.auto_offer_towns or town_name(town) in self.auto_offer_towns


DEFAULT_CONFIG = PoolConfig()


# ---------------------------------------------------------------------------------------------- snapshots
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
    """Cheap fingerprint of everything a snapshot depends on (two aggregate queries)."""
    r = (
        await session.exec(
            select(  # type: ignore[call-overload]
                func.count(col(Resource.id)),
                func.max(Resource.updated_at),
                func.sum(Resource.rating_count),
                func.sum(
                    Resource.offers
                    + Resource.accepts
                    + Resource.declines
                    + Resource.timeouts
                    + Resource.completions
                ),
                func.sum(
                    sa.case((col(Resource.active), 1), else_=0)
                    + sa.case((col(Resource.available), 2), else_=0)
                ),
                func.sum(Resource.capacity_open * 1000 + Resource.capacity_month),
            )
        )
    ).one()
    o = (
        await session.exec(
            select(  # type: ignore[call-overload]
                func.count(col(Offer.id)),
                func.max(Offer.id),
                func.max(Offer.answered_at),
                func.max(Offer.finished_at),
            )
        )
    ).one()
    return (*tuple(r), *tuple(o), now.astimezone(CHINA).date())


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


# ---------------------------------------------------------------------------------------------- ranking
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


# ---------------------------------------------------------------------------------------------- helpers
def _local(dt: datetime) -> str:
    return dt.astimezone(CHINA).strftime("%m月%d日%H:%M")


def _what(case: Case) -> str:
    cat = case.category or case.suggested_category or KIND_LABEL.get(case.kind, "")
    return f"{cat}·{case.item}" if case.item else cat


def _where(case: Case) -> str:
    return f"{case.town}{case.community or ''}"


async def _lock_case(session: AsyncSession, case_id: int) -> Case:
    stmt = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    found = (await session.exec(stmt)).first()
    if found is None:
        raise PoolError("找不到这个心愿")
    return found


async def _case_offers(session: AsyncSession, case_id: int) -> list[Offer]:
    stmt = (
        select(Offer)
        .where(Offer.case_id == case_id)
        .order_by(col(Offer.offered_at), col(Offer.id))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(stmt)).all())


async def _cascade_params(session: AsyncSession, case_id: int) -> tuple[Mode, int]:
    ev = (
        await session.exec(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.kind == "offer")
            .order_by(col(CaseEvent.id).desc())
            .limit(1)
        )
    ).first()
    if ev is None:
        return "single", 1
    mode: Mode = "top_k" if ev.data.get("mode") == "top_k" else "single"
    return mode, max(1, int(ev.data.get("k", 1) or 1)) if mode == "top_k" else 1


async def _offer_deadline(session: AsyncSession, case: Case, now: datetime, config: PoolConfig) -> timedelta:
    from bot.deadlines import sla

    policy = await sla.policy_for(session, case.kind, "offer")
    if policy is None:
        return timedelta(hours=config.offer_hours)
    return max(timedelta(minutes=1), policy.deadline(now) - now)


async def _add_resource_counts(session: AsyncSession, resource_id: int, now: datetime, **deltas: int) -> None:
    values: dict[str, Any] = {name: getattr(Resource, name) + n for name, n in deltas.items()}
    values["updated_at"] = now
    await session.exec(
        sa.update(Resource)
        .where(col(Resource.id) == resource_id)  # type: ignore[call-overload]
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def _set_offer(session: AsyncSession, offer: Offer, *, expect: Sequence[str], **values: Any) -> bool:
    result = await session.exec(  # type: ignore[call-overload]
        sa.update(Offer)
        .where(col(Offer.id) == offer.id, col(Offer.status).in_(expect))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    for k, v in values.items():
        set_committed_value(offer, k, v)
    return True


def _volunteer_actor(resource: Resource) -> Actor:
    return Actor("volunteer", resource.id, resource.name[:64])


# ---------------------------------------------------------------------------------------------- the cascade
@dataclass(slots=True)
class CascadeState:
    case: Case
    cascade: Cascade
    offers: dict[str, Offer]  # by resource key
    snap: Snapshot
    scored: dict[str, ScoredCandidate] = field(default_factory=dict)


async def _load_cascade(
    session: AsyncSession,
    *,
    case: Case,
    now: datetime,
    config: PoolConfig,
    mode: Mode | None = None,
    k: int | None = None,
    extra: Sequence[str] = (),
    rank_more: bool = True,
) -> CascadeState:
    snap = await load_pool(session, now=now, config=config)
    rows = await _case_offers(session, case.id or 0)
    stored_mode, stored_k = await _cascade_params(session, case.id or 0)
    mode = mode or stored_mode
    k = k if k is not None else stored_k
    offers: dict[str, Offer] = {}
    for o in rows:
        key = snap.keys.get(o.resource_id)
        if key is not None and key not in offers:
            offers[key] = o
    winner = next((key for key, o in offers.items() if o.status in MATCHED), None)
    scored: dict[str, ScoredCandidate] = {}
    remaining: list[str] = [key for key in extra if key not in offers]
    wish = wish_for(case)
    if rank_more and wish is not None and winner is None:
        ranked = snap.pool.rank(wish, weights=config.weights, limit=60, exclude=set(offers))
        scored = {c.key: c for c in ranked}
        remaining += [c.key for c in ranked if c.key not in remaining]
    deadline = await _offer_deadline(session, case, now, config)
    data = {
        "candidates": [*offers, *remaining],
        "mode": mode,
        "k": k if mode == "top_k" else 1,
        "deadline_seconds": deadline.total_seconds(),
        "status": "matched" if winner else "offering",
        "winner": winner,
        "next": len(offers),
        "offers": [
            {
                "key": key,
                "sent_at": o.offered_at.isoformat(),
                "deadline": (o.deadline or o.offered_at + deadline).isoformat(),
                "status": _TO_ENGINE.get(o.status, "withdrawn"),
                "answered_at": o.answered_at.isoformat() if o.answered_at else None,
            }
            for key, o in offers.items()
        ],
    }
    return CascadeState(case=case, cascade=Cascade.from_dict(data), offers=offers, snap=snap, scored=scored)


async def _apply(
    session: AsyncSession, state: CascadeState, actions: Iterable[Any], *, now: datetime, config: PoolConfig
) -> list[Offer]:
    """Write the engine's actions: offer rows + messages, withdrawals, the match, exhaustion."""
    case = state.case
    sent: list[Offer] = []
    for action in actions:
        if isinstance(action, OfferSent):
            row = state.snap.rows.get(action.key)
            if row is None or row.id is None:
                continue
            cand = state.scored.get(action.key)
            new = Offer(
                case_id=case.id or 0,
                resource_id=row.id,
                status="offered",
                offered_at=now,
                deadline=action.deadline,
                score=round(cand.total, 4) if cand else None,
                components={k: round(v, 4) for k, v in cand.components.items()} if cand else {},
            )
            session.add(new)
            await session.flush()
            state.offers[action.key] = new
            await _add_resource_counts(session, row.id, now, offers=1)
            await _notify_offer(session, case=case, resource=row, offer=new)
            sent.append(new)
        elif isinstance(action, OfferWithdrawn):
            offer = state.offers.get(action.key)
            row = state.snap.rows.get(action.key)
            if offer is None or row is None:
                continue
            if action.reason == "timeout":
                if await _set_offer(session, offer, expect=("offered",), status="timeout", answered_at=now):
                    await _add_resource_counts(session, offer.resource_id, now, timeouts=1)
            elif await _set_offer(session, offer, expect=("offered",), status="withdrawn", answered_at=now):
                text = (
                    REPLY_TEXTS["already_matched"]
                    if action.reason == "matched_elsewhere"
                    else "这个心愿的邀请已取消，感谢您的热心。"
                )
                if row.openid:
                    await enqueue(
                        session,
                        openid=row.openid,
                        recipient_type="volunteer",
                        kind="offer",
                        text=f"【{case.case_no}】{text}",
                        case_id=case.id,
                        template={"case_no": case.case_no[:20], "status": "邀请已结束"},
                        dedupe_key=f"offer-withdrawn:{offer.id}",
                    )
        elif isinstance(action, Matched):
            offer = state.offers[action.key]
            row = state.snap.rows[action.key]
            if not await _set_offer(session, offer, expect=("offered",), status="accepted", answered_at=now):
                raise PoolError(REPLY_TEXTS["already_matched"])
            await _add_resource_counts(session, offer.resource_id, now, accepts=1)
            fresh = await session.get(Resource, offer.resource_id)
            await _on_matched(session, case=case, resource=fresh or row, offer=offer, now=now)
        elif isinstance(action, Exhausted):
            await _exhaust(session, case=case, now=now, declined=action.declined, timed_out=action.timed_out)
    return sent


async def _notify_offer(session: AsyncSession, *, case: Case, resource: Resource, offer: Offer) -> None:
    if not resource.openid:
        record_event(
            session,
            case=case,
            kind="note",
            actor=Actor.system(),
            at=offer.offered_at,
            note=f"{resource.name}未绑定微信，请电话通知其答复（{_local(offer.deadline or offer.offered_at)}前）",
            data={"offer_id": offer.id},
        )
        return
    deadline = _local(offer.deadline) if offer.deadline else ""
    text = (
        f"{resource.contact or resource.name}您好！{_where(case)}有一个微心愿想请您帮忙：{_what(case)}"
        f"（编号{case.case_no}）。\n请在{deadline}前答复：回复“接受”认领，回复“婉拒”放弃。\n查看详情：{{link}}"
    )
    await enqueue(
        session,
        openid=resource.openid,
        recipient_type="volunteer",
        kind="offer",
        text=text,
        case_id=case.id,
        link=f"sign:offer:{offer.id}",
        dedupe_key=f"offer:{offer.id}",
        template={
            "case_no": case.case_no[:20],
            "thing": _what(case)[:20],
            "place": _where(case)[:20],
            "status": f"{deadline}前答复"[:20],
        },
    )


async def _on_matched(
    session: AsyncSession, *, case: Case, resource: Resource, offer: Offer, now: datetime
) -> None:
    if case.status == "matching":
        await transition(
            session,
            case=case,
            action="start",
            actor=_volunteer_actor(resource),
            note=f"{resource.name}接受了邀请",
            now=now,
            data={"offer_id": offer.id},
        )
    if case.flag == EXHAUSTED_FLAG:
        case.flag = None
        session.add(case)
    if resource.openid:
        text = (
            f"感谢认领！微心愿{case.case_no}（{_what(case)}，{_where(case)}）由您来帮助完成。"
            f"联系人和地址请查看：{{link}}\n送达后回复“已送达”，完成后回复“已完成”。"
        )
        await enqueue(
            session,
            openid=resource.openid,
            recipient_type="volunteer",
            kind="offer",
            text=text,
            case_id=case.id,
            link=f"sign:offer:{offer.id}",
            dedupe_key=f"offer-matched:{offer.id}",
            template={"case_no": case.case_no[:20], "thing": _what(case)[:20], "status": "认领成功"},
        )


async def _town_staff(session: AsyncSession, case: Case) -> list[Staff]:
    stmt = select(Staff).where(
        col(Staff.active), Staff.town == case.town, col(Staff.role).in_(("town_staff", "town_supervisor"))
    )
    staff = list((await session.exec(stmt)).all())
    if case.claimed_by_id and all(s.id != case.claimed_by_id for s in staff):
        owner = await session.get(Staff, case.claimed_by_id)
        if owner is not None:
            staff.append(owner)
    return staff


async def _exhaust(
    session: AsyncSession, *, case: Case, now: datetime, declined: int, timed_out: int
) -> None:
    """No candidate left: flag the case, write the timeline, alert the town's staff (each once per round)."""
    n_offers = (
        await session.exec(select(func.count()).select_from(Offer).where(Offer.case_id == case.id))
    ).one()
    case.flag = EXHAUSTED_FLAG
    case.updated_at = now
    session.add(case)
    note = (
        f"已邀请的{n_offers}位爱心人士均未接受（婉拒{declined}位，超时{timed_out}位），"
        f"没有其他符合条件的爱心人士，请工作人员另行安排"
    )
    record_event(
        session,
        case=case,
        kind="note",
        actor=Actor.system(),
        at=now,
        note=note,
        data={"flag": EXHAUSTED_FLAG, "offers": n_offers},
    )
    for s in await _town_staff(session, case):
        if s.openid:
            await enqueue(
                session,
                openid=s.openid,
                recipient_type="staff",
                kind="alert",
                case_id=case.id,
                text=f"微心愿{case.case_no}（{_what(case)}）{note}。",
                link=f"/staff/cases/{case.case_no}",
                template={"case_no": case.case_no[:20], "status": "对接无人接受"},
                dedupe_key=f"match-exhausted:{case.id}:{n_offers}:{s.id}",
            )
    log.info("case %s: matching exhausted after %d offers", case.case_no, n_offers)


@dataclass(slots=True)
class OfferOutcome:
    sent: list[Offer]
    exhausted: bool
    message: str


async def offer(
    session: AsyncSession,
    *,
    case: Case,
    actor: Actor,
    mode: Mode = "single",
    k: int = 3,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
    keys: Sequence[str] | None = None,
) -> OfferOutcome:
    """Offer a wish to the best candidate (``single``) or the top ``k`` at once (first to accept wins).

    ``keys`` offers to these resources (staff picked them, or a batch proposal); else the ranking decides.
    Moves the case into ``matching`` through the lifecycle (claiming it first for staff when still unclaimed).
    """
    if mode not in ("single", "top_k"):
        raise PoolError("未知的派单方式")
    if case.kind != "micro_wish":
        raise PoolError("只有微心愿可以对接爱心资源")
    if wish_for(case) is None:
        raise PoolError("请先为诉求选择类别，再对接爱心资源")
    case = await _lock_case(session, case.id or 0)
    existing = await _case_offers(session, case.id or 0)
    if any(o.status in MATCHED for o in existing):
        raise PoolError("这个心愿已有爱心人士认领")
    if any(o.status == "offered" for o in existing) and not keys:
        raise PoolError("已有邀请正在等待答复，请等答复或超时后再发")
    if case.status not in OPEN_WISH_STATES:
        raise PoolError(f"诉求当前状态为「{STATE_LABEL.get(case.status, case.status)}」，不能对接爱心资源")
    k = max(1, min(int(k), 10)) if mode == "top_k" else 1
    state = await _load_cascade(
        session, case=case, now=now, config=config, mode=mode, k=k, rank_more=not keys
    )
    if keys:
        wish = wish_for(case)
        assert wish is not None
        chosen: list[str] = []
        for key in keys:
            engine_row = state.snap.pool.get(key)
            if engine_row is None:
                raise PoolError(f"找不到爱心资源{key}")
            if key in state.offers:
                raise PoolError(f"已经邀请过{engine_row.name}")
            reason = eligible(engine_row, wish, rules=config.rules)
            if reason:
                raise PoolError(f"{engine_row.name}：{reason}")
            chosen.append(key)
            state.scored[key] = score(engine_row, wish, weights=config.weights, rules=config.rules)
        k = len(chosen) + len(state.cascade.pending)
        mode = "top_k" if k > 1 else "single"
        data = state.cascade.to_dict()
        data.update(candidates=[*state.offers, *chosen], mode=mode, k=k, status="offering")
        state.cascade = Cascade.from_dict(data)
    elif not state.cascade.remaining:
        if case.status != "matching":
            raise PoolError("没有符合条件的爱心资源（类别、服务镇街、名额都不满足），请另行安排")
        await _exhaust(
            session,
            case=case,
            now=now,
            declined=sum(o.status == "declined" for o in existing),
            timed_out=sum(o.status == "timeout" for o in existing),
        )
        return OfferOutcome([], True, "没有其他符合条件的爱心资源了，已标记为待人工安排")
    # the lifecycle: accepted → claimed (staff) → matching
    if case.status == "accepted":
        if actor.type != "staff":
            raise PoolError("诉求尚未认领，不能自动对接")
        await claim(session, case=case, actor=actor, now=now)
    if case.status == "claimed":
        await transition(session, case=case, action="match", actor=actor, note=None, now=now)
    actions = state.cascade.add_candidates([], now)
    sent = await _apply(session, state, actions, now=now, config=config)
    if case.flag == EXHAUSTED_FLAG:
        case.flag = None
        session.add(case)
    names = [state.snap.rows[state.snap.keys[o.resource_id]].name for o in sent]
    record_event(
        session,
        case=case,
        kind="offer",
        actor=actor,
        at=now,
        note=f"邀请{'、'.join(names)}认领" + ("（先接受者得）" if k > 1 else ""),
        data={"mode": mode, "k": k, "offers": [o.id for o in sent]},
    )
    await session.flush()
    return OfferOutcome(sent, False, f"已向{len(sent)}位爱心人士发出邀请")


# ---------------------------------------------------------------------------------------------- answers
@dataclass(slots=True)
class Answer:
    ok: bool
    code: str
    message: str
    offer: Offer | None = None
    case: Case | None = None


async def _find_offer(
    session: AsyncSession, *, offer_id: int | None, resource_id: int | None, case_id: int | None
) -> Offer | None:
    if offer_id is not None:
        return await session.get(Offer, offer_id)
    if resource_id is None or case_id is None:
        raise PoolError("请指定邀请")
    stmt = (
        select(Offer)
        .where(Offer.resource_id == resource_id, Offer.case_id == case_id)
        .order_by(col(Offer.id).desc())
        .limit(1)
    )
    return (await session.exec(stmt)).first()


async def _answer(
    session: AsyncSession,
    *,
    accepting: bool,
    offer_id: int | None,
    resource_id: int | None,
    case_id: int | None,
    now: datetime,
    config: PoolConfig,
) -> Answer:
    found = await _find_offer(session, offer_id=offer_id, resource_id=resource_id, case_id=case_id)
    if found is None:
        return Answer(False, "not_offered", REPLY_TEXTS["not_offered"])
    case = await _lock_case(session, found.case_id)  # serialises answers to the same wish
    state = await _load_cascade(session, case=case, now=now, config=config)
    key = state.snap.keys.get(found.resource_id, "")
    offer_row = state.offers.get(key, found)
    if case.status in ("cancelled", "closed", "rejected", "merged"):
        return Answer(False, "closed", REPLY_TEXTS["closed"], offer_row, case)
    reply = state.cascade.accept(key, now) if accepting else state.cascade.decline(key, now)
    if reply.ok and not accepting:
        await _set_offer(session, offer_row, expect=("offered",), status="declined", answered_at=now)
        await _add_resource_counts(session, offer_row.resource_id, now, declines=1)
        record_event(
            session,
            case=case,
            kind="note",
            actor=Actor("volunteer", offer_row.resource_id, state.snap.rows[key].name[:64]),
            at=now,
            note=f"{state.snap.rows[key].name}婉拒了邀请",
            data={"offer_id": offer_row.id},
        )
    await _apply(session, state, reply.actions, now=now, config=config)
    await session.flush()
    return Answer(reply.ok, reply.code, reply.message, offer_row, case)


async def accept(
    session: AsyncSession,
    *,
    offer_id: int | None = None,
    resource_id: int | None = None,
    case_id: int | None = None,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
) -> Answer:
    """A volunteer accepts. Of two simultaneous accepts for one wish exactly one wins; the other gets
    ``already_matched`` (a clear message, nothing changed)."""
    return await _answer(
        session,
        accepting=True,
        offer_id=offer_id,
        resource_id=resource_id,
        case_id=case_id,
        now=now,
        config=config,
    )


async def decline(
    session: AsyncSession,
    *,
    offer_id: int | None = None,
    resource_id: int | None = None,
    case_id: int | None = None,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
) -> Answer:
    """A volunteer declines; the next candidate is offered, or the case is flagged when none is left."""
    return await _answer(
        session,
        accepting=False,
        offer_id=offer_id,
        resource_id=resource_id,
        case_id=case_id,
        now=now,
        config=config,
    )


async def handle_offer_timeout(
    session: AsyncSession, offer: Offer, now: datetime, *, config: PoolConfig = DEFAULT_CONFIG
) -> None:
    """After the sweep marked ``offer`` as timed out: offer the next candidate, or flag the case when exhausted."""
    case = await _lock_case(session, offer.case_id)
    if case.status != "matching":
        return
    state = await _load_cascade(session, case=case, now=now, config=config)
    if state.cascade.status != "offering":
        return
    actions: list[Any] = list(state.cascade.tick(now))
    if state.cascade.status == "offering":
        actions += state.cascade.add_candidates([], now)
    await _apply(session, state, actions, now=now, config=config)
    await session.flush()


async def on_offer_timeout(session: AsyncSession, offer: Offer, now: datetime) -> None:
    """``bot.deadlines.sweeps.OfferTimeoutHook`` with the default weights (see ``make_offer_timeout_hook``)."""
    await handle_offer_timeout(session, offer, now)


def make_offer_timeout_hook(config: PoolConfig) -> Any:
    """The sweeps' ``OfferTimeoutHook`` bound to the configured weights and rules."""

    async def hook(session: AsyncSession, offer: Offer, now: datetime) -> None:
        await handle_offer_timeout(session, offer, now, config=config)

    return hook


async def cancel_offers(session: AsyncSession, *, case: Case, now: datetime) -> int:
    """Withdraw every outstanding offer of a case (e.g. it was cancelled or staff handle it otherwise)."""
    state = await _load_cascade(session, case=case, now=now, config=DEFAULT_CONFIG, rank_more=False)
    actions = state.cascade.cancel(now)
    await _apply(session, state, actions, now=now, config=DEFAULT_CONFIG)
    return len(actions)


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


# ---------------------------------------------------------------------------------------------- progress
Stage = Literal["delivered", "done"]


async def report_progress(
    session: AsyncSession,
    *,
    offer: Offer,
    stage: Stage,
    photo_url: str | None = None,
    note: str | None = None,
    now: datetime,
) -> Case:
    """The volunteer reports delivery or completion; the case moves through the lifecycle and the resident hears."""
    photo = (photo_url or "").strip()
    if photo and not photo.startswith(("https://", "http://")):
        raise PoolError("照片地址应以 http:// 或 https:// 开头")
    case = await _lock_case(session, offer.case_id)
    fresh = (
        await session.exec(
            select(Offer).where(Offer.id == offer.id).execution_options(populate_existing=True)
        )
    ).one()
    resource = await session.get(Resource, fresh.resource_id)
    assert resource is not None
    actor = _volunteer_actor(resource)
    note = (note or "").strip()[:500]
    if stage == "delivered":
        if not await _set_offer(session, fresh, expect=("accepted",), status="delivered"):
            raise PoolError("只有已接受、尚未送达的任务可以报告送达")
        if case.status == "matching":
            await transition(session, case=case, action="start", actor=actor, note=None, now=now)
        record_event(
            session,
            case=case,
            kind="photo" if photo else "note",
            actor=actor,
            at=now,
            note=f"{resource.name}报告：已送达{('。' + note) if note else ''}",
            data={"offer_id": fresh.id, "stage": "delivered", "photos": [photo] if photo else []},
        )
        await notify_resident(
            session,
            case=case,
            dedupe_key=f"offer:{fresh.id}:delivered",
            text=f"您的微心愿（编号{case.case_no}）爱心人士已送达/上门。如有问题请直接回复我们。",
        )
        await session.flush()
        return case
    if stage != "done":
        raise PoolError("未知的进度")
    if not await _set_offer(session, fresh, expect=("accepted", "delivered"), status="done", finished_at=now):
        raise PoolError("这个任务已经完成或不属于您")
    await _add_resource_counts(session, resource.id or 0, now, completions=1)
    if case.status == "matching":
        await transition(session, case=case, action="start", actor=actor, note=None, now=now)
    if case.status == "in_progress":
        await complete(
            session,
            case=case,
            actor=actor,
            now=now,
            photos=[photo] if photo else [],
            note=f"爱心人士{resource.name}已完成帮助{('：' + note) if note else ''}",
        )
    await session.flush()
    return case


# ---------------------------------------------------------------------------------------------- binding
async def new_volunteer_bind_code(session: AsyncSession, *, resource: Resource, now: datetime) -> str:
    """A 6-digit one-time code the volunteer sends in WeChat as ``志愿者绑定 123456`` (valid 24 hours).

    The expiry is kept with the code in ``Resource.bind_code`` as ``code:hours-since-epoch`` (no extra column)."""
    for _ in range(20):
        code = f"{secrets.randbelow(900000) + 100000}"
        taken = (
            await session.exec(select(Resource.id).where(col(Resource.bind_code).like(f"{code}:%")))
        ).first()
        if taken is None:
            break
    expires = int((now + BIND_TTL).timestamp() // 3600) + 1
    resource.bind_code = f"{code}:{expires}"
    resource.updated_at = now
    session.add(resource)
    await session.flush()
    return code


async def bind_volunteer(session: AsyncSession, *, code: str, openid: str, now: datetime) -> Resource:
    code = code.strip()
    if not re.fullmatch(r"\d{6}", code):
        raise PoolError("绑定码应为6位数字")
    row = (
        await session.exec(
            select(Resource).where(col(Resource.bind_code).like(f"{code}:%"), col(Resource.active))
        )
    ).first()
    if row is None or int((row.bind_code or ":0").split(":", 1)[1] or 0) * 3600 < now.timestamp():
        raise PoolError("绑定码不正确或已过期，请联系镇街工作人员重新生成")
    await session.exec(
        sa.update(Resource)
        .where(
            col(Resource.openid) == openid,  # type: ignore[call-overload]
            col(Resource.id) != row.id,
        )
        .values(openid=None)
    )
    row.openid = openid
    row.bind_code = None
    row.updated_at = now
    session.add(row)
    await session.flush()
    POOL_CACHE.clear()
    return row


#: guessing a 6-digit code: at most this many tries per WeChat user per hour (the messages themselves are counted)
BIND_ATTEMPTS_PER_HOUR = 5


async def _bind_attempts(session: AsyncSession, *, openid: str, since: datetime) -> int:
    from bot.models import InboundMessage

    stmt = (
        select(sa.func.count())
        .select_from(InboundMessage)
        .where(
            col(InboundMessage.openid) == openid,
            col(InboundMessage.received_at) >= since,
            col(InboundMessage.text).like(f"{BIND_PREFIX}%"),
        )
    )
    return int((await session.exec(stmt)).one())  # type: ignore[call-overload]


def bind_code_of(resource: Resource) -> str | None:
    return resource.bind_code.split(":", 1)[0] if resource.bind_code else None


# ---------------------------------------------------------------------------------------------- the chat hook
_ACCEPT = ("接受", "我接了", "我接", "接了", "接单", "认领", "我来", "好的我接", "同意")
_DECLINE = ("婉拒", "没空", "不接", "拒绝", "没时间", "不方便", "接不了")
_DELIVERED = ("已送达", "送到了", "已送到")
_DONE = ("已完成", "完成了", "搞定了")
_TASKS = ("我的任务", "任务", "我的邀请")
_CASE_NO = re.compile(r"(MS\d{8}-\d{4})", re.I)
_PUNCT = re.compile(r"[\s，。！!,.、~～]+")


async def volunteer_by_openid(session: AsyncSession, *, openid: str) -> Resource | None:
    return (
        await session.exec(select(Resource).where(Resource.openid == openid, col(Resource.active)))
    ).first()


async def _pending_offers(session: AsyncSession, resource: Resource, statuses: Sequence[str]) -> list[Offer]:
    stmt = (
        select(Offer)
        .where(Offer.resource_id == resource.id, col(Offer.status).in_(statuses))
        .order_by(col(Offer.deadline), col(Offer.id))
    )
    return list((await session.exec(stmt)).all())


def tasks_link(settings: Any, resource_id: int, *, now: datetime | None = None) -> str | None:
    if settings is None or not getattr(settings, "link_secret", ""):
        return None
    from bot.delivery.links import sign_link

    token = sign_link(
        settings.link_secret, "tasks", resource_id, ttl=7 * 86400, now=now.timestamp() if now else None
    )
    return f"{settings.base_url.rstrip('/')}/v/tasks?t={token}"


async def _pick(session: AsyncSession, offers: list[Offer], text: str) -> tuple[Offer | None, str | None]:
    """The offer the message is about: the only one, or the one whose case number it names."""
    m = _CASE_NO.search(text)
    if m:
        case = (await session.exec(select(Case).where(Case.case_no == m.group(1).upper()))).first()
        chosen = [o for o in offers if case is not None and o.case_id == case.id]
        return (chosen[0], None) if chosen else (None, f"没有找到编号{m.group(1).upper()}的邀请。")
    if len(offers) == 1:
        return offers[0], None
    lines = []
    for o in offers:
        case = await session.get(Case, o.case_id)
        if case is not None:
            lines.append(f"· {case.case_no}（{_what(case)}，{_where(case)}）")
    return None, "您有多个邀请，请在回复里带上编号，例如“接受 {}”：\n{}".format(
        lines[0].split("（")[0].strip("· ") if lines else "", "\n".join(lines)
    )


async def volunteer_chat(
    session: AsyncSession,
    *,
    openid: str,
    text: str,
    now: datetime,
    settings: Any = None,
    config: PoolConfig = DEFAULT_CONFIG,
) -> str | None:
    """Answers for the resource pool's volunteers in chat; None when the message is not for this router.

    ``志愿者绑定 123456`` binds the sender's WeChat; a bound volunteer may answer a pending offer (“接受”/“我接了”,
    “婉拒”/“没空”, optionally with the case number), ask “我的任务”, and report “已送达” / “已完成”.
    Pass ``settings`` to include a signed link to the tasks page in replies.
    """
    raw = (text or "").strip()
    if raw.startswith(BIND_PREFIX):
        if (
            await _bind_attempts(session, openid=openid, since=now - timedelta(hours=1))
            > BIND_ATTEMPTS_PER_HOUR
        ):
            return "尝试次数太多，请一小时后再试，或联系镇街工作人员。"
        try:
            async with session.begin_nested():
                row = await bind_volunteer(
                    session, code=raw[len(BIND_PREFIX) :].strip(" :："), openid=openid, now=now
                )
        except PoolError as exc:
            return str(exc)
        return f"绑定成功！{row.name}，以后有适合您的微心愿会在这里邀请您。回复“我的任务”可查看您的任务。"
    word = _PUNCT.sub("", _CASE_NO.sub("", raw))
    intent = (
        "accept"
        if word in _ACCEPT
        else "decline"
        if word in _DECLINE
        else "tasks"
        if word in _TASKS
        else "delivered"
        if word in _DELIVERED
        else "done"
        if word in _DONE
        else None
    )
    if intent is None:
        return None
    resource = await volunteer_by_openid(session, openid=openid)
    if resource is None:
        return None
    link = tasks_link(settings, resource.id or 0, now=now)
    if intent == "tasks":
        return await _tasks_text(session, resource, link)
    if intent in ("accept", "decline"):
        pending = await _pending_offers(session, resource, ("offered",))
        if not pending:
            return await _no_pending_reply(session, resource, now)
        chosen, problem = await _pick(session, pending, raw)
        if chosen is None:
            return problem
        try:
            async with session.begin_nested():
                answer = await (accept if intent == "accept" else decline)(
                    session, offer_id=chosen.id, now=now, config=config
                )
        except LifecycleError as exc:
            return str(exc)
        if answer.ok and intent == "accept" and answer.case is not None:
            extra = f"\n查看联系人和地址：{link}" if link else "\n回复“我的任务”查看联系人和地址。"
            return f"{answer.message}（编号{answer.case.case_no}）{extra}"
        return answer.message
    active = await _pending_offers(
        session, resource, ("accepted", "delivered") if intent == "done" else ("accepted",)
    )
    if not active:
        return "您目前没有进行中的任务。"
    chosen, problem = await _pick(session, active, raw)
    if chosen is None:
        return problem
    try:
        async with session.begin_nested():
            case = await report_progress(session, offer=chosen, stage=intent, now=now)  # type: ignore[arg-type]
    except LifecycleError as exc:
        return str(exc)
    if intent == "delivered":
        return f"已记录送达（编号{case.case_no}），完成后请回复“已完成”。谢谢您！"
    return f"已记录完成（编号{case.case_no}），居民会收到通知。感谢您的爱心！"


async def _no_pending_reply(session: AsyncSession, resource: Resource, now: datetime) -> str:
    """A late answer: say what became of the volunteer's latest invitation (someone was faster, or it lapsed)."""
    last = (
        await session.exec(
            select(Offer).where(Offer.resource_id == resource.id).order_by(col(Offer.id).desc()).limit(1)
        )
    ).first()
    recent = last is not None and last.answered_at is not None and now - last.answered_at < timedelta(days=3)
    if last is not None and recent and last.status == "withdrawn":
        case = await session.get(Case, last.case_id)
        return f"{REPLY_TEXTS['already_matched']}（编号{case.case_no if case else ''}）"
    if last is not None and recent and last.status == "timeout":
        return REPLY_TEXTS["offer_expired"]
    return "您目前没有待答复的邀请。回复“我的任务”可查看已接的任务。"


async def _tasks_text(session: AsyncSession, resource: Resource, link: str | None) -> str:
    offers = await _pending_offers(session, resource, ("offered", "accepted", "delivered"))
    if not offers:
        return "您目前没有任务。有适合您的微心愿时会在这里邀请您。"
    lines = ["您的任务："]
    for o in offers:
        case = await session.get(Case, o.case_id)
        if case is None:
            continue
        status = OFFER_LABEL.get(o.status, o.status)
        due = f"，{_local(o.deadline)}前答复" if o.status == "offered" and o.deadline else ""
        lines.append(f"· {case.case_no} {_what(case)}（{_where(case)}）{status}{due}")
    lines.append(f"详情：{link}" if link else "回复“接受 编号”或“婉拒 编号”答复邀请。")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- jurisdiction
def serves(row: Resource, town: str) -> bool:
    served = row.towns_served or []
    return not served or CITY_WIDE in served or town in served or row.home_town == town


def can_see(staff: Staff, row: Resource) -> bool:
    from bot.cases.lifecycle import CITY_ROLES

    return staff.role in CITY_ROLES or (staff.town is not None and serves(row, staff.town))


def can_edit(staff: Staff, row: Resource) -> bool:
    from bot.cases.lifecycle import CITY_ROLES, TOWN_WORKERS

    return staff.role in CITY_ROLES or (staff.role in TOWN_WORKERS and row.home_town == staff.town)


# ---------------------------------------------------------------------------------------------- list, edit
@dataclass(slots=True)
class PoolFilter:
    kind: str = ""
    category: str = ""
    town: str = ""
    active: str = ""  # "" | "1" | "0"
    q: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Any) -> PoolFilter:
        page = query.get("page", "1")
        return cls(
            kind=query.get("kind", "")[:16],
            category=query.get("category", "")[:32],
            town=query.get("town", "")[:16],
            active=query.get("active", "")[:1],
            q=query.get("q", "").strip()[:64],
            page=max(1, min(int(page), 10_000)) if page.isdigit() else 1,
        )

    def params(self, **over: Any) -> dict[str, str]:
        values = {
            "kind": self.kind,
            "category": self.category,
            "town": self.town,
            "active": self.active,
            "q": self.q,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in over.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


@dataclass(slots=True)
class PoolPage:
    rows: list[tuple[Resource, EngineResource | None]]
    total: int
    page: int
    has_next: bool


async def list_pool(
    session: AsyncSession,
    *,
    staff: Staff,
    filters: PoolFilter,
    now: datetime,
    per_page: int = 30,
    config: PoolConfig = DEFAULT_CONFIG,
) -> PoolPage:
    stmt = select(Resource).order_by(col(Resource.key))
    if filters.kind:
        stmt = stmt.where(Resource.kind == filters.kind)
    if filters.active in ("0", "1"):
        stmt = stmt.where(Resource.active == (filters.active == "1"))
    if filters.q:
        like = f"%{filters.q}%"
        stmt = stmt.where(
            sa.or_(
                col(Resource.name).like(like), col(Resource.key).like(like), col(Resource.contact).like(like)
            )
        )
    rows = [r for r in (await session.exec(stmt)).all() if can_see(staff, r)]
    if filters.category:
        rows = [r for r in rows if filters.category in (r.categories or [])]
    if filters.town:
        town = town_name(filters.town)
        rows = [r for r in rows if serves(r, town)]
    snap = await load_pool(session, now=now, config=config)
    start = (filters.page - 1) * per_page
    chunk = rows[start : start + per_page]
    return PoolPage(
        [(r, snap.pool.get(r.key)) for r in chunk], len(rows), filters.page, start + per_page < len(rows)
    )


async def get_resource_for(session: AsyncSession, *, staff: Staff, key: str) -> Resource | None:
    row = (await session.exec(select(Resource).where(Resource.key == key))).first()
    return row if row is not None and can_see(staff, row) else None


@dataclass(slots=True)
class ResourceHistory:
    offers: list[tuple[Offer, Case]]
    engine: EngineResource | None
    average_rating: float | None


async def resource_history(
    session: AsyncSession,
    *,
    resource: Resource,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
    limit: int = 50,
) -> ResourceHistory:
    stmt = (
        select(Offer, Case)
        .join(Case, col(Case.id) == Offer.case_id)
        .where(Offer.resource_id == resource.id)
        .order_by(col(Offer.offered_at).desc())
        .limit(limit)
    )
    rows = [(o, c) for o, c in (await session.exec(stmt)).all()]
    snap = await load_pool(session, now=now, config=config)
    avg = resource.rating_sum / resource.rating_count if resource.rating_count else None
    return ResourceHistory(rows, snap.pool.get(resource.key), avg)


EDITABLE = (
    "name",
    "contact",
    "phone",
    "categories",
    "items",
    "home_town",
    "towns_served",
    "capacity_open",
    "capacity_month",
    "max_fund",
    "available",
    "kind",
)


async def allowed_categories(session: AsyncSession) -> list[str]:
    names = (
        await session.exec(
            select(Category.name)
            .where(Category.kind == "micro_wish", col(Category.active))
            .order_by(col(Category.sort))
        )
    ).all()
    from matching.model import CATEGORIES

    return list(names) or list(CATEGORIES)


async def update_resource(
    session: AsyncSession, *, staff: Staff, resource: Resource, values: dict[str, str], now: datetime
) -> dict[str, str]:
    """Edit from the staff form. Returns problems by field (nothing is saved when there is any)."""
    from reference.privacy import parse_phone_field

    if not can_edit(staff, resource):
        raise PoolError("只能修改本镇街的爱心资源")
    errors: dict[str, str] = {}
    split = re.compile(r"[、,，;；/|\s]+")
    allowed = set(await allowed_categories(session))
    new: dict[str, Any] = {}
    name = values.get("name", "").strip()
    if not name:
        errors["name"] = "名称不能为空"
    new["name"] = name[:128]
    new["contact"] = values.get("contact", "").strip()[:64] or name[:64]
    phone = parse_phone_field(values.get("phone", ""))
    if phone is None:
        errors["phone"] = "电话号码格式不正确"
    new["phone"] = phone
    kind = values.get("kind", resource.kind)
    if kind not in KIND_LABELS:
        errors["kind"] = "请选择类型"
    new["kind"] = kind
    cats = [c for c in split.split(values.get("categories", "")) if c]
    if not cats or any(c not in allowed for c in cats):
        errors["categories"] = f"类别应为：{'、'.join(sorted(allowed))}"
    new["categories"] = sorted(set(cats))
    new["items"] = sorted({i for i in split.split(values.get("items", "")) if i})
    from reference import towns

    home = values.get("home_town", "").strip()
    if towns.get(home) is None:
        errors["home_town"] = "请选择正确的镇街"
    new["home_town"] = town_name(home)
    from bot.cases.lifecycle import CITY_ROLES

    if staff.role not in CITY_ROLES and new["home_town"] != staff.town:
        errors["home_town"] = "只能设为本镇街"
    served = [t for t in split.split(values.get("towns_served", "")) if t]
    if CITY_WIDE in served:
        new["towns_served"] = []
    else:
        bad = [t for t in served if towns.get(t) is None]
        if bad:
            errors["towns_served"] = f"未知镇街：{'、'.join(bad)}"
        new["towns_served"] = sorted({town_name(t) for t in served} or {new["home_town"]})
    for name_ in ("capacity_open", "capacity_month"):
        raw = values.get(name_, "").strip()
        if not raw.isdigit() or int(raw) > 1000:
            errors[name_] = "应为0至1000的整数"
        else:
            new[name_] = int(raw)
    fund = values.get("max_fund", "").strip()
    if fund and not fund.isdigit():
        errors["max_fund"] = "应为整数（元）"
    new["max_fund"] = int(fund) if fund.isdigit() else None
    new["available"] = values.get("available") in ("1", "on", "true")
    if errors:
        return errors
    for k, v in new.items():
        setattr(resource, k, v)
    resource.updated_at = now
    session.add(resource)
    await session.flush()
    POOL_CACHE.clear()
    return {}


async def set_active(
    session: AsyncSession, *, staff: Staff, resource: Resource, active: bool, now: datetime
) -> None:
    if not can_edit(staff, resource):
        raise PoolError("只能停用本镇街的爱心资源")
    resource.active = active
    resource.updated_at = now
    session.add(resource)
    await session.flush()
    POOL_CACHE.clear()


# ---------------------------------------------------------------------------------------------- import / export
_HISTORY = ("offers", "accepts", "declines", "timeouts", "completions", "rating_sum", "rating_count")
_PLAIN = (
    "kind",
    "name",
    "contact",
    "phone",
    "home_town",
    "capacity_open",
    "capacity_month",
    "max_fund",
    "available",
    "active",
)


#: wall-clock bound of parsing an import (the reader's own limit is lower; this is the backstop)
IMPORT_SECONDS = 30.0


@dataclass(slots=True)
class ImportOutcome:
    ok: bool
    report: str
    problems: list[Any]
    created: int = 0
    updated: int = 0


async def import_pool(
    session: AsyncSession, *, data: bytes, filename: str, now: datetime, staff: Staff | None = None
) -> ImportOutcome:
    """Validate the whole file, then create or update every row by key — or write nothing at all.

    History columns are taken for new records only (the database's own history wins on re-import); the load
    columns (进行中, 本月已承接, 近30天承接) are always computed from offers. Town staff may import only resources of
    their own town."""
    from bot.cases.lifecycle import CITY_ROLES
    from matching.pool_io import HEADERS, ImportResult, Problem, parse_pool
    from reference.privacy import mask_phone

    categories = await allowed_categories(session)
    try:
        # reading a spreadsheet is CPU-bound: off the event loop, and bounded (the reader also stops itself)
        result: ImportResult = await asyncio.wait_for(
            asyncio.to_thread(parse_pool, data, filename=filename, categories=categories),
            timeout=IMPORT_SECONDS,
        )
    except TimeoutError:
        result = ImportResult(problems=[Problem(0, "", "文件太大，处理超时，请分批导入")])
    existing: dict[str, Resource] = {}
    if result.ok:
        keys = [r.key for r in result.rows]
        for i in range(0, len(keys), 500):
            found = (
                await session.exec(select(Resource).where(col(Resource.key).in_(keys[i : i + 500])))
            ).all()
            existing.update({r.key: r for r in found})
        for row_no, r in enumerate(
            result.rows, start=2
        ):  # row numbers are exact when the file has no blank rows
            if len(r.key) > 32:
                result.problems.append(Problem(row_no, HEADERS["key"], f"编号“{r.key}”过长（最多32个字符）"))
            if "*" in r.phone:
                known = existing.get(r.key)
                if known is None or mask_phone(known.phone) != r.phone:
                    result.problems.append(
                        Problem(
                            row_no, HEADERS["phone"], "电话已遮盖：只能用于号码不变的已有记录，请填写完整号码"
                        )
                    )
            if staff is not None and staff.role not in CITY_ROLES:
                old = existing.get(r.key)
                if r.home_town != staff.town or (old is not None and old.home_town != staff.town):
                    result.problems.append(
                        Problem(
                            row_no,
                            HEADERS["home_town"],
                            f"“{r.key}”不属于{staff.town or '您的镇街'}，只能导入本镇街的爱心资源",
                        )
                    )
    if not result.ok:
        return ImportOutcome(False, result.report(), list(result.problems))
    created = updated = 0
    for r in result.rows:
        served = [] if r.city_wide else sorted(r.towns_served)
        values: dict[str, Any] = {
            name: getattr(r, name)
            for name in _PLAIN
            if name in result.columns or name in ("kind", "name", "phone", "home_town")
        }
        values["contact"] = r.contact
        values["phone"] = r.phone or None
        if "*" in r.phone:  # a masked export re-imported: the stored number stays
            values["phone"] = existing[r.key].phone
        values.update(categories=sorted(r.categories), home_town=r.home_town)
        if "items" in result.columns:
            values["items"] = sorted(r.items)
        if "towns_served" in result.columns or r.key not in existing:
            values["towns_served"] = served
        row = existing.get(r.key)
        if row is None:
            values.update({name: getattr(r, name) for name in (*_PLAIN, *_HISTORY)})
            values["phone"] = r.phone or None
            values.setdefault("items", sorted(r.items))
            session.add(Resource(key=r.key, created_at=now, updated_at=now, **values))
            created += 1
        else:
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = now
            session.add(row)
            updated += 1
    await session.flush()
    POOL_CACHE.clear()
    return ImportOutcome(True, f"导入成功：新增{created}条，更新{updated}条。", [], created, updated)


#: roles whose pool export carries full mobile numbers (those who keep the pool's records); everyone else gets
#: them masked (``138****5678``) and reaches a number through the resource page
FULL_PHONE_EXPORT_ROLES = frozenset({"town_supervisor", "admin"})


def exports_full_phones(staff: Staff | None) -> bool:
    """Whether an export by ``staff`` (None: the command line on the server) shows full numbers."""
    return staff is None or staff.role in FULL_PHONE_EXPORT_ROLES


@dataclass(slots=True)
class Export:
    body: bytes
    rows: int
    full_phones: bool


async def export_pool(
    session: AsyncSession,
    *,
    staff: Staff | None,
    now: datetime,
    fmt: str,
    config: PoolConfig = DEFAULT_CONFIG,
) -> Export:
    """The resources ``staff`` may see as CSV or XLSX; numbers masked unless ``exports_full_phones(staff)``.
    Every cell goes through ``reference.spreadsheet.safe_cell``. The caller writes the audit entry."""
    from dataclasses import replace

    from matching.pool_io import export_csv, export_xlsx
    from reference.privacy import mask_phone

    snap = await load_pool(session, now=now, config=config)
    visible = [snap.pool.get(key) for key, row in snap.rows.items() if staff is None or can_see(staff, row)]
    resources = [r for r in visible if r is not None]
    full = exports_full_phones(staff)
    if not full:
        resources = [replace(r, phone=mask_phone(r.phone)) for r in resources]
    if fmt == "xlsx":
        return Export(export_xlsx(resources), len(resources), full)
    return Export(export_csv(resources).encode("utf-8-sig"), len(resources), full)


# ---------------------------------------------------------------------------------------------- case page panel
async def candidates_panel(
    session: AsyncSession,
    *,
    case: Case,
    staff: Staff,
    now: datetime | None = None,
    config: PoolConfig = DEFAULT_CONFIG,
    limit: int = 5,
) -> dict[str, Any]:
    """Context for ``pool/_candidates.html`` on the staff case page: top candidates with every score component,
    the offers so far, and whether this staff member may send offers now."""
    from bot.cases.lifecycle import CITY_ROLES, TOWN_WORKERS
    from bot.models import utcnow
    from matching.model import COMPONENT_LABELS

    now = now or utcnow()
    panel: dict[str, Any] = {
        "case_no": case.case_no,
        "applicable": case.kind == "micro_wish",
        "candidates": [],
        "offers": [],
        "can_offer": False,
        "reason": "",
        "flag": case.flag,
        "labels": COMPONENT_LABELS,
        "exclusions": [],
    }
    if case.kind != "micro_wish":
        return panel
    wish = wish_for(case)
    snap = await load_pool(session, now=now, config=config)
    rows = await _case_offers(session, case.id or 0)
    for o in rows:
        key = snap.keys.get(o.resource_id)
        res = snap.rows.get(key or "")
        panel["offers"].append(
            {
                "id": o.id,
                "name": res.name if res else "?",
                "key": key,
                "status": o.status,
                "status_label": OFFER_LABEL.get(o.status, o.status),
                "deadline": o.deadline,
                "percent": round((o.score or 0) * 100),
                "bound": bool(res and res.openid),
            }
        )
    matched = any(o.status in MATCHED for o in rows)
    pending = any(o.status == "offered" for o in rows)
    if wish is None:
        panel["reason"] = "请先为诉求选择类别"
        return panel
    ranked = snap.pool.rank(
        wish,
        weights=config.weights,
        limit=limit,
        exclude={snap.keys[o.resource_id] for o in rows if o.resource_id in snap.keys},
    )
    for c in ranked:
        res = snap.rows[c.key]
        eng = snap.pool.get(c.key)
        panel["candidates"].append(
            {
                "key": c.key,
                "name": res.name,
                "kind": KIND_LABELS.get(res.kind, res.kind),
                "town": res.home_town,
                "phone": eng.masked_phone if eng else "",
                "percent": c.percent,
                "components": [(label, round(value * 100)) for label, value in c.labelled()],
                "reasons": c.reasons,
                "bound": bool(res.openid),
            }
        )
    if not ranked:
        panel["exclusions"] = snap.pool.exclusion_summary(wish).most_common(3)
    may = staff.role in TOWN_WORKERS | CITY_ROLES
    if not may:
        panel["reason"] = "您的身份不能派单"
    elif matched:
        panel["reason"] = "已有爱心人士认领"
    elif pending:
        panel["reason"] = "邀请等待答复中"
    elif case.status not in OPEN_WISH_STATES:
        panel["reason"] = f"诉求当前状态为「{STATE_LABEL.get(case.status, case.status)}」"
    elif not ranked:
        panel["reason"] = "没有符合条件的爱心资源"
    else:
        panel["can_offer"] = True
    return panel


# ---------------------------------------------------------------------------------------------- batch
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
    from bot.cases.access import get_case_for

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
