"""The offer cascade persisted as Offer rows: staff (or the automatic rule) offer a wish, volunteers accept or
decline, offers time out, the next candidate is asked, and the case is flagged when nobody is left.

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

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import STATE_LABEL, Actor, claim, transition
from bot.cases.timeline import record_event
from bot.deadlines import sla
from bot.delivery.outbox import enqueue
from bot.models import Case, CaseEvent, Offer, Resource, Staff
from bot.pool.config import (
    DEFAULT_CONFIG,
    EXHAUSTED_FLAG,
    MATCHED,
    OFFER_LABEL,
    OPEN_WISH_STATES,
    Mode,
    PoolConfig,
    PoolError,
    local_time,
    wish_what,
    wish_where,
)
from bot.pool.records import (
    CASE_OVER,
    INACTIVE_TEXT,
    add_resource_counts,
    case_offers,
    lock_case,
    set_offer_status,
    volunteer_actor,
)
from bot.pool.snapshot import Snapshot, load_pool, wish_for
from bot.pool.wallrows import take_for_offer
from matching.cascade import REPLY_TEXTS, Cascade, Exhausted, Matched, OfferSent, OfferWithdrawn
from matching.model import ScoredCandidate
from matching.scoring import eligible, score

log = logging.getLogger(__name__)

_TO_ENGINE = {
    "offered": "pending",
    "accepted": "accepted",
    "delivered": "accepted",
    "done": "accepted",
    "declined": "declined",
    "timeout": "timed_out",
    "withdrawn": "withdrawn",
}


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
    """How long a donor has to answer: the "offer" policy, its end moved into waking hours (an invitation sent at
    02:15 is not due at 02:15 the next night)."""
    policy = await sla.policy_for(session, case.kind, "offer")
    due = now + timedelta(hours=config.offer_hours) if policy is None else policy.deadline(now)
    return max(timedelta(minutes=1), config.waking.clamp(due) - now)


@dataclass(slots=True)
class CascadeState:
    case: Case
    cascade: Cascade
    offers: dict[str, Offer]  # by resource key
    snap: Snapshot
    scored: dict[str, ScoredCandidate] = field(default_factory=dict)


async def load_cascade(
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
    rows = await case_offers(session, case.id or 0)
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


async def apply_actions(
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
            await add_resource_counts(session, row.id, now, offers=1)
            await _notify_offer(session, case=case, resource=row, offer=new, now=now)
            sent.append(new)
        elif isinstance(action, OfferWithdrawn):
            offer = state.offers.get(action.key)
            row = state.snap.rows.get(action.key)
            if offer is None or row is None:
                continue
            if action.reason == "timeout":
                if await set_offer_status(
                    session, offer, expect=("offered",), status="timeout", answered_at=now
                ):
                    await add_resource_counts(session, offer.resource_id, now, timeouts=1)
            elif await set_offer_status(
                session, offer, expect=("offered",), status="withdrawn", answered_at=now
            ):
                text = (
                    REPLY_TEXTS["already_matched"] if action.reason == "matched_elsewhere" else WITHDRAWN_TEXT
                )
                await _tell_withdrawn(
                    session, openid=row.openid, case=case, offer_id=offer.id, text=text, now=now
                )
        elif isinstance(action, Matched):
            offer = state.offers[action.key]
            row = state.snap.rows[action.key]
            # one match per wish: a donor who claimed it on the wall (bot.pool.wall) holds it
            if not await take_for_offer(session, case_id=case.id or 0, now=now):
                raise PoolError(REPLY_TEXTS["already_matched"])
            if not await set_offer_status(
                session, offer, expect=("offered",), status="accepted", answered_at=now
            ):
                raise PoolError(REPLY_TEXTS["already_matched"])
            await add_resource_counts(session, offer.resource_id, now, accepts=1)
            fresh = await session.get(Resource, offer.resource_id)
            await _on_matched(session, case=case, resource=fresh or row, offer=offer, now=now)
        elif isinstance(action, Exhausted):
            await _exhaust(session, case=case, now=now, declined=action.declined, timed_out=action.timed_out)
    return sent


async def _notify_offer(
    session: AsyncSession, *, case: Case, resource: Resource, offer: Offer, now: datetime
) -> None:
    if not resource.openid:
        record_event(
            session,
            case=case,
            kind="note",
            actor=Actor.system(),
            at=offer.offered_at,
            note=f"{resource.name}未绑定微信，请电话通知其答复（{local_time(offer.deadline or offer.offered_at)}前）",
            data={"offer_id": offer.id},
        )
        return
    deadline = local_time(offer.deadline) if offer.deadline else ""
    text = (
        f"{resource.contact or resource.name}您好！{wish_where(case)}有一个微心愿想请您帮忙：{wish_what(case)}"
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
            "thing": wish_what(case)[:20],
            "place": wish_where(case)[:20],
            "status": f"{deadline}前答复"[:20],
        },
        now=now,
    )


async def _on_matched(
    session: AsyncSession, *, case: Case, resource: Resource, offer: Offer, now: datetime
) -> None:
    if case.status == "matching":
        await transition(
            session,
            case=case,
            action="start",
            actor=volunteer_actor(resource),
            note=f"{resource.name}接受了邀请",
            now=now,
            data={"offer_id": offer.id},
        )
    if case.flag == EXHAUSTED_FLAG:
        case.flag = None
        session.add(case)
    if resource.openid:
        text = (
            f"感谢认领！微心愿{case.case_no}（{wish_what(case)}，{wish_where(case)}）由您来帮助完成。"
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
            template={"case_no": case.case_no[:20], "thing": wish_what(case)[:20], "status": "认领成功"},
            now=now,
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
                text=f"微心愿{case.case_no}（{wish_what(case)}）{note}。",
                link=f"/staff/cases/{case.case_no}",
                template={"case_no": case.case_no[:20], "status": "对接无人接受"},
                dedupe_key=f"match-exhausted:{case.id}:{n_offers}:{s.id}",
                now=now,
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
    case = await lock_case(session, case.id or 0)
    existing = await case_offers(session, case.id or 0)
    if any(o.status in MATCHED for o in existing):
        raise PoolError("这个心愿已有爱心人士认领")
    if any(o.status == "offered" for o in existing) and not keys:
        raise PoolError("已有邀请正在等待答复，请等答复或超时后再发")
    if case.status not in OPEN_WISH_STATES:
        raise PoolError(f"诉求当前状态为「{STATE_LABEL.get(case.status, case.status)}」，不能对接爱心资源")
    k = max(1, min(int(k), 10)) if mode == "top_k" else 1
    state = await load_cascade(session, case=case, now=now, config=config, mode=mode, k=k, rank_more=not keys)
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
    sent = await apply_actions(session, state, actions, now=now, config=config)
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
    case = await lock_case(session, found.case_id)  # serialises answers to the same wish
    state = await load_cascade(session, case=case, now=now, config=config)
    key = state.snap.keys.get(found.resource_id, "")
    offer_row = state.offers.get(key, found)
    if case.status in CASE_OVER:
        return Answer(False, "closed", REPLY_TEXTS["closed"], offer_row, case)
    resource = await session.get(Resource, found.resource_id, populate_existing=True)
    if accepting and (resource is None or not resource.active):
        return Answer(False, "inactive", INACTIVE_TEXT, offer_row, case)
    reply = state.cascade.accept(key, now) if accepting else state.cascade.decline(key, now)
    if reply.ok and not accepting:
        await set_offer_status(session, offer_row, expect=("offered",), status="declined", answered_at=now)
        await add_resource_counts(session, offer_row.resource_id, now, declines=1)
        record_event(
            session,
            case=case,
            kind="note",
            actor=Actor("volunteer", offer_row.resource_id, state.snap.rows[key].name[:64]),
            at=now,
            note=f"{state.snap.rows[key].name}婉拒了邀请",
            data={"offer_id": offer_row.id},
        )
    await apply_actions(session, state, reply.actions, now=now, config=config)
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


async def withdraw_inactive(
    session: AsyncSession, *, resource_id: int, now: datetime, config: PoolConfig = DEFAULT_CONFIG
) -> int:
    """A resource was deactivated: its unanswered invitations are withdrawn (it can no longer accept them) and each
    wish passes to the next candidate, as after a decline. Returns the invitations withdrawn."""
    pending = (
        await session.exec(select(Offer).where(Offer.resource_id == resource_id, Offer.status == "offered"))
    ).all()
    n = 0
    for row in pending:
        case = await lock_case(session, row.case_id)
        state = await load_cascade(session, case=case, now=now, config=config)
        key = state.snap.keys.get(resource_id, "")
        offer_row = state.offers.get(key, row)
        reply = state.cascade.decline(key, now)
        if not await set_offer_status(
            session, offer_row, expect=("offered",), status="withdrawn", answered_at=now
        ):
            continue
        n += 1
        if reply.ok and case.status not in CASE_OVER:
            await apply_actions(session, state, reply.actions, now=now, config=config)
    await session.flush()
    return n


async def cancel_offers(session: AsyncSession, *, case: Case, now: datetime) -> int:
    """Withdraw every outstanding offer of a case (e.g. it was cancelled or staff handle it otherwise)."""
    state = await load_cascade(session, case=case, now=now, config=DEFAULT_CONFIG, rank_more=False)
    actions = state.cascade.cancel(now)
    await apply_actions(session, state, actions, now=now, config=DEFAULT_CONFIG)
    return len(actions)


async def _staff_offer(session: AsyncSession, *, case: Case, offer_id: int) -> Offer:
    """The pending offer ``offer_id`` of ``case`` (staff act on a donor's behalf), or a readable error."""
    found = await session.get(Offer, offer_id, populate_existing=True)
    if found is None or found.case_id != case.id:
        raise PoolError("找不到这个邀请")
    if found.status != "offered":
        raise PoolError(f"这个邀请{OFFER_LABEL.get(found.status, found.status)}，不能再操作")
    if case.status in CASE_OVER:
        raise PoolError("诉求已结束，不能再操作邀请")
    return found


async def record_answer(
    session: AsyncSession,
    *,
    case: Case,
    offer_id: int,
    accepted: bool,
    actor: Actor,
    now: datetime,
    config: PoolConfig = DEFAULT_CONFIG,
) -> Answer:
    """Staff record the answer a donor without WeChat gave on the phone; the cascade goes on as if the donor had
    answered (accept → the match, decline → the next candidate), and the timeline says who recorded it."""
    found = await _staff_offer(session, case=case, offer_id=offer_id)
    answer = await _answer(
        session,
        accepting=accepted,
        offer_id=found.id,
        resource_id=None,
        case_id=None,
        now=now,
        config=config,
    )
    if answer.ok:
        resource = await session.get(Resource, found.resource_id)
        record_event(
            session,
            case=case,
            kind="note",
            actor=actor,
            at=now,
            note=f"电话联系{resource.name if resource else ''}后代为记录：{'接受' if accepted else '婉拒'}邀请",
            data={"offer_id": found.id, "recorded_by_staff": True},
        )
        await session.flush()
    return answer


WITHDRAWN_TEXT = "这个心愿的邀请已取消，感谢您的热心。"


async def _tell_withdrawn(
    session: AsyncSession, *, openid: str | None, case: Case, offer_id: int | None, text: str, now: datetime
) -> None:
    """A volunteer bound to WeChat hears that an invitation ended (once per offer)."""
    if not openid:
        return
    await enqueue(
        session,
        openid=openid,
        recipient_type="volunteer",
        kind="offer",
        text=f"【{case.case_no}】{text}",
        case_id=case.id,
        template={"case_no": case.case_no[:20], "status": "邀请已结束"},
        dedupe_key=f"offer-withdrawn:{offer_id}",
        now=now,
    )


async def withdraw_offer(
    session: AsyncSession, *, case: Case, offer_id: int, actor: Actor, now: datetime
) -> None:
    """Staff withdraw one pending invitation (the donor is told when bound to WeChat); nobody else is invited."""
    await lock_case(session, case.id or 0)
    found = await _staff_offer(session, case=case, offer_id=offer_id)
    if not await set_offer_status(session, found, expect=("offered",), status="withdrawn", answered_at=now):
        raise PoolError("这个邀请已经答复或结束")
    resource = await session.get(Resource, found.resource_id)
    await _tell_withdrawn(
        session,
        openid=resource.openid if resource else None,
        case=case,
        offer_id=found.id,
        text=WITHDRAWN_TEXT,
        now=now,
    )
    record_event(
        session,
        case=case,
        kind="note",
        actor=actor,
        at=now,
        note=f"撤回了对{resource.name if resource else ''}的邀请",
        data={"offer_id": found.id},
    )
    await session.flush()
