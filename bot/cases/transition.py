"""``transition()``: the one function that moves a case through the table (bot.cases.table).

It checks the rule and the actor, moves the case with a conditional UPDATE (two concurrent requests can never both
succeed), writes the timeline event, queues the resident's progress message, and then performs the move's side
effects itself, explicitly, in the caller's transaction: the deadline clock restarts
(``bot.deadlines.sla.restart_clock``), offers end when the case does (``withdraw_offers``: volunteers lose access on
cancellation, rejection, merging, completion and closing) and the survey starts on completion
(``bot.cases.survey_send.start_survey``). No lower module is asked to react to a transition.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.duty import apply_on_dispatch
from bot.cases.numbering import KIND_LABEL
from bot.cases.survey_send import start_survey
from bot.cases.table import (
    ACTION_LABEL,
    CASE_ENDED_UNDONE,
    DONOR_SAID_YES,
    MSG_STARTED_BY_TOWN,
    OFFER_OPEN,
    OFFERS_END,
    SPECIAL_ACTIONS,
    STATE_LABEL,
    TERMINAL,
    TRANSITIONS,
    ClaimConflict,
    TransitionError,
    refusal_for,
)
from bot.cases.timeline import record_event
from bot.deadlines import sla
from bot.delivery.outbox import enqueue
from bot.models import Case, CaseEvent, Offer, Resident, Resource, Staff
from bot.states import ActorType, CaseStatus, EventKind, MessageKind, OfferStatus
from reference.privacy import normalize_phone

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ the one transition function
async def transition(
    session: AsyncSession,
    *,
    case: Case,
    action: str,
    actor: Actor,
    note: str | None,
    now: datetime,
    request_key: str | None = None,
    data: dict[str, object] | None = None,
    _set: dict[str, object] | None = None,
) -> CaseEvent:
    """Perform one transition of the table, or raise TransitionError (ClaimConflict for a lost claim).

    `request_key` (e.g. a hidden form token) makes a retried request return the first request's event."""
    if request_key:
        earlier = await event_for_request(session, case_id=case.id, request_key=request_key)
        if earlier is not None:
            return earlier
    from_status = case.status
    rule = TRANSITIONS.get((from_status, action))
    if rule is None:
        raise TransitionError(
            f"诉求当前状态为「{STATE_LABEL.get(from_status, from_status)}」，不能{ACTION_LABEL.get(action, action)}"
        )
    if action in SPECIAL_ACTIONS and _set is None:
        raise TransitionError(f"「{ACTION_LABEL[action]}」需要指定对象")
    refusal = refusal_for(case, actor, action, rule)
    if refusal:
        raise TransitionError(refusal)
    note = (note or "").strip()
    if rule.reason and not note:
        raise TransitionError(f"请填写{ACTION_LABEL.get(action, action)}的理由或说明")

    values: dict[str, object] = {"status": rule.to, "updated_at": now}
    conditions = [col(Case.id) == case.id, col(Case.status) == from_status]
    if action == "claim":
        values["claimed_by_id"] = actor.id
        conditions.append(col(Case.claimed_by_id).is_(None))
    elif action == "release":
        values["claimed_by_id"] = None
    if rule.to == CaseStatus.COMPLETED:
        values["completed_at"] = now
    if rule.to in TERMINAL:
        values["closed_at"] = now
    if rule.to == CaseStatus.REOPENED:
        values["completed_at"] = None
        values["closed_at"] = None
    if rule.to in OFFERS_END:
        values["awaiting_resident"] = False
    values.update(_set or {})
    result = await session.exec(
        update(Case).where(*conditions).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await session.refresh(case)
        if action == "claim" and case.claimed_by_id is not None:
            raise ClaimConflict(case.claimed_by_id, await staff_name(session, case.claimed_by_id))
        raise TransitionError("诉求状态刚刚被他人更改，请刷新页面后再试")
    for key, value in values.items():
        set_committed_value(case, key, value)

    event_data: dict[str, object] = {"action": action, **(data or {})}
    if case.stage_deadline is not None:  # whether the stage being left ran late (on-time statistics)
        event_data["late"] = now > case.stage_deadline
        event_data["deadline"] = case.stage_deadline.isoformat()
    if request_key:
        event_data["request_key"] = request_key
    event = record_event(
        session,
        case=case,
        kind=EventKind.TRANSITION,
        actor=actor,
        at=now,
        note=note,
        data=event_data,
        from_status=from_status,
        to_status=rule.to,
    )
    await session.flush()
    # the resident hears of this change before anything it starts (the survey comes after "已办结"): the
    # dispatcher sends one person's messages in the order they were queued
    if rule.message:
        template = rule.message
        if (from_status, action) == (CaseStatus.MATCHING, "start") and not await _donor_accepted(
            session, case=case
        ):
            template = MSG_STARTED_BY_TOWN  # no donor said yes: the town does it, and says so
        text = template.format(
            case_no=case.case_no,
            kind=KIND_LABEL.get(case.kind, ""),
            note=note.rstrip("。"),
            note_line=f"说明：{note}"
            if note and actor.type != ActorType.RESIDENT
            else "如需帮助可随时再找我们。",
        )
        await notify_resident(
            session,
            case=case,
            text=text,
            dedupe_key=f"case:{case.id}:ev:{request_key or event.id}",
            now=now,
        )
    # the side effects of the move, each called here explicitly (no lower module reaches up to the case)
    await sla.restart_clock(session, case=case, from_status=from_status, to_status=rule.to, now=now)
    if action == "dispatch":  # 权责清单: the responsible unit, and the deadline from the list
        await apply_on_dispatch(session, case=case, actor=actor, now=now)
    if rule.to in OFFERS_END:
        await withdraw_offers(session, case=case, to_status=rule.to, now=now)
    if rule.to == CaseStatus.COMPLETED:
        await start_survey(session, case=case, now=now)
    log.info("case %s: %s -> %s by %s %s", case.case_no, from_status, rule.to, actor.type, actor.id)
    return event


async def _donor_accepted(session: AsyncSession, *, case: Case) -> bool:
    """Whether a donor or volunteer of the pool said yes to this case (an invitation still open does not count)."""
    row = await session.exec(
        select(Offer.id).where(Offer.case_id == case.id, col(Offer.status).in_(DONOR_SAID_YES)).limit(1)
    )
    return row.first() is not None


async def withdraw_offers(session: AsyncSession, *, case: Case, to_status: str, now: datetime) -> int:
    """The case ended (or its work is done): volunteers lose access to it. Unanswered offers are withdrawn; on
    cancellation, rejection or merging every open offer (also an accepted one) is withdrawn; on completion or
    closing an accepted offer is finished (``done``: the help was given, the donor's rating still counts it).
    One plain UPDATE, so no offer page or link can act on the case afterwards. Returns the offers changed."""
    if case.id is None:
        return 0
    to_tell = (
        await session.exec(
            select(Offer.id, Offer.status, Resource.openid)
            .join(Resource, col(Resource.id) == col(Offer.resource_id))
            .where(
                col(Offer.case_id) == case.id,
                col(Offer.status).in_(OFFER_OPEN),
                col(Resource.openid).is_not(None),
            )
        )
    ).all()
    withdrawn = await session.exec(
        update(Offer)
        .where(
            col(Offer.case_id) == case.id,
            col(Offer.status).in_(OFFER_OPEN if to_status in CASE_ENDED_UNDONE else (OfferStatus.OFFERED,)),
        )
        .values(status=OfferStatus.WITHDRAWN, answered_at=func.coalesce(col(Offer.answered_at), now))
        .execution_options(synchronize_session=False)
    )
    changed = int(withdrawn.rowcount or 0)
    if to_status not in CASE_ENDED_UNDONE:
        finished = await session.exec(
            update(Offer)
            .where(
                col(Offer.case_id) == case.id,
                col(Offer.status).in_((OfferStatus.ACCEPTED, OfferStatus.DELIVERED)),
            )
            .values(status=OfferStatus.DONE, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        changed += int(finished.rowcount or 0)
    if changed:
        log.info("case %s: %d offer(s) ended on %s", case.case_no, changed, to_status)
    for offer_id, status, openid in to_tell:  # volunteers hear that the case ended (issue 11)
        text, label = _offer_end_text(
            case, to_status, helping=status in (OfferStatus.ACCEPTED, OfferStatus.DELIVERED)
        )
        await enqueue(
            session,
            openid=str(openid),  # never None: the query keeps bound volunteers only
            recipient_type=ActorType.VOLUNTEER,
            kind=MessageKind.OFFER,
            case_id=case.id,
            text=text,
            template={"case_no": case.case_no[:20], "status": label},
            dedupe_key=f"offer-ended:{offer_id}:{to_status}",
            now=now,
        )
    return changed


def _offer_end_text(case: Case, to_status: str, *, helping: bool) -> tuple[str, str]:
    """What a volunteer hears when a case they were invited to or helping with ends: (text, short status)."""
    if not helping:
        return f"微心愿{case.case_no}的邀请已结束，无需再答复，感谢您的关注。", "邀请已结束"
    if to_status in (CaseStatus.COMPLETED, CaseStatus.CLOSED):
        return f"微心愿{case.case_no}已办结，无需再跟进。感谢您的帮助！", "已办结"
    if to_status == CaseStatus.MERGED:
        return f"微心愿{case.case_no}已与其他诉求合并处理，无需再送达或联系居民，感谢您的热心。", "已合并处理"
    return f"微心愿{case.case_no}已撤销，无需再送达或联系居民，感谢您的热心。", "已撤销"


async def notify_resident(
    session: AsyncSession, *, case: Case, text: str, dedupe_key: str, now: datetime
) -> bool:
    """Queue a progress message to the case's resident: by WeChat when one is bound and subscribed, else by SMS
    to the case's contact phone (a hotline or window case), else nothing."""
    resident = await session.get(Resident, case.resident_id) if case.resident_id is not None else None
    fields = {"case_no": case.case_no[:20], "status": STATE_LABEL.get(case.status, case.status)[:20]}
    if resident is None or not resident.subscribed:
        phone = normalize_phone(case.contact_phone)
        if phone is None:
            return False
        return await enqueue(
            session,
            openid="",
            phone=phone,
            kind=MessageKind.PROGRESS,
            text=text,
            case_id=case.id,
            dedupe_key=dedupe_key,
            template=fields,
            now=now,
        )
    return await enqueue(
        session,
        openid=resident.openid,
        kind=MessageKind.PROGRESS,
        text=text,
        case_id=case.id,
        dedupe_key=dedupe_key,
        template=fields,
        now=now,
    )


async def event_for_request(
    session: AsyncSession, *, case_id: int | None, request_key: str
) -> CaseEvent | None:
    rows = await session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id).desc()).limit(30)
    )
    for event in rows:
        if event.data.get("request_key") == request_key:
            return event
    return None


async def staff_name(session: AsyncSession, staff_id: int | None) -> str:
    staff = await session.get(Staff, staff_id) if staff_id is not None else None
    return (staff.display_name or staff.username) if staff else "其他工作人员"
