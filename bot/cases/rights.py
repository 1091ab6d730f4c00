"""Residents' rights over their data (PIPL): what is held about a resident, erasure on request, and retention.

`held_data` says in plain words what is held (cases, the phone masked, consent and its version). `erase_resident`
cancels the resident's open cases (the staff handling them are told), then erases or anonymises every personal
field of the resident, their cases and everything linked to them, in the caller's transaction: descriptions,
addresses, names, phone numbers, what they wrote in chat, survey comments, messages to them. What the statistics
count stays: each case keeps its kind, category, town, community, channel, status and times, the survey its score,
the timeline its events (the personal part of each event is replaced by its digest first, so the hash chain of
bot/cases/chain.py still verifies). `retention_sweep` anonymises the cases closed longer ago than the retention
period in the same way. Every erasure is written to the audit log (who asked, on what ground), without the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actions import cancel_by_resident
from bot.cases.actors import Actor
from bot.cases.chain import ERASED_NOTE, erase_event
from bot.cases.lifecycle import STATE_LABEL
from bot.cases.table import TRANSITIONS
from bot.delivery.outbox import enqueue
from bot.models import (
    AuditLog,
    CallBack,
    CallTask,
    Case,
    CaseEvent,
    Conversation,
    Feedback,
    InboundMessage,
    Lead,
    Outbox,
    PolicyReferral,
    Resident,
    Staff,
    Survey,
    WallWish,
)
from bot.states import ActorType
from reference.privacy import mask_phone

#: statuses after which the retention period runs
FINISHED = ("completed", "closed", "cancelled", "rejected", "merged")
ERASED_OPENID = "erased:"


@dataclass
class Erasure:
    cases: int = 0
    cancelled: list[str] = field(default_factory=list)  # case numbers cancelled because of the request


async def held_data(session: AsyncSession, *, resident: Resident) -> str:
    """What is held about the resident, for the chat reply to "我的信息"."""
    cases = list(
        (
            await session.exec(
                select(Case).where(col(Case.resident_id) == resident.id).order_by(col(Case.created_at))
            )
        ).all()
    )
    lines = ["我们保存的您的信息："]
    lines.append(f"手机号：{mask_phone(resident.phone) if resident.phone else '未留'}")
    if resident.consent_at:
        version = f"（第{resident.consent_version}版）" if resident.consent_version else ""
        lines.append(f"个人信息授权：已同意{version}")
    else:
        lines.append("个人信息授权：未同意")
    if cases:
        lines.append(f"诉求 {len(cases)} 件：")
        lines += [f"· {c.case_no} {STATE_LABEL.get(c.status, c.status)}" for c in cases[:20]]
    else:
        lines.append("诉求：无")
    lines.append("另有您发来的消息和回访评价，用于办理和回访。")
    lines.append("想删除这些信息，请回复“删除我的信息”。")
    return "\n".join(lines)


async def anonymise_case(session: AsyncSession, *, case: Case) -> None:
    """Erase the personal data of one case and everything linked to it; what the statistics count stays."""
    case.description = ERASED_NOTE
    case.address = None
    case.beneficiary = None
    case.contact_phone = None
    case.bind_code = None
    events = (await session.exec(select(CaseEvent).where(col(CaseEvent.case_id) == case.id))).all()
    for e in events:
        erase_event(e)
    await session.exec(update(Survey).where(col(Survey.case_id) == case.id).values(comment=None))
    await session.exec(update(Feedback).where(col(Feedback.case_id) == case.id).values(text=""))
    await session.exec(update(CallBack).where(col(CallBack.case_id) == case.id).values(phone="", note=""))
    await session.exec(
        update(InboundMessage)
        .where(col(InboundMessage.case_id) == case.id)
        .values(text=None, media={}, reply=None)
    )
    await session.exec(
        update(Outbox).where(col(Outbox.case_id) == case.id).values(text=ERASED_NOTE, template={}, phone=None)
    )
    await session.exec(update(CallTask).where(col(CallTask.case_id) == case.id).values(phone=None, note=None))
    await session.exec(
        update(PolicyReferral).where(col(PolicyReferral.case_id) == case.id).values(outcome_note=None)
    )
    # the public wall's wording was written from the case: erased too, and an open wish taken off the wall
    await session.exec(
        update(WallWish).where(col(WallWish.case_id) == case.id).values(public_text=ERASED_NOTE)
    )
    await session.exec(
        update(WallWish)
        .where(col(WallWish.case_id) == case.id, col(WallWish.status) == "open")
        .values(status="withdrawn")
    )


async def erase_resident(
    session: AsyncSession, *, resident: Resident, now: datetime, requested_by: Actor, ground: str
) -> Erasure:
    """Cancel the resident's open cases (staff told), then erase their personal data. `requested_by` is the
    resident (in chat) or the staff member acting on a written request; `ground` goes to the audit log."""
    out = Erasure()
    assert resident.id is not None
    cases = list((await session.exec(select(Case).where(col(Case.resident_id) == resident.id))).all())
    told: list[tuple[str, str, int]] = []  # (staff openid, case no, case id)
    for c in cases:
        if (c.status, "cancel") in TRANSITIONS:  # still being handled
            await cancel_by_resident(
                session, case=c, resident_id=resident.id, reason="居民申请删除个人信息", now=now
            )
            out.cancelled.append(c.case_no)
            if c.claimed_by_id is not None:
                staff = await session.get(Staff, c.claimed_by_id)
                if staff is not None and staff.openid:
                    told.append((staff.openid, c.case_no, c.id or 0))
    await session.flush()
    for c in cases:
        await anonymise_case(session, case=c)
    out.cases = len(cases)

    openid = resident.openid
    await session.exec(delete(Outbox).where(col(Outbox.openid) == openid))
    await session.exec(delete(Lead).where(col(Lead.openid) == openid))
    await session.exec(
        update(Conversation).where(col(Conversation.resident_id) == resident.id).values(state="idle", data={})
    )
    await session.exec(update(Feedback).where(col(Feedback.resident_id) == resident.id).values(text=""))
    await session.exec(
        update(CallBack).where(col(CallBack.resident_id) == resident.id).values(phone="", note="")
    )
    await session.exec(update(Survey).where(col(Survey.resident_id) == resident.id).values(comment=None))
    pseudonym = ERASED_OPENID + hashlib.sha256(openid.encode()).hexdigest()[:40]
    await session.exec(
        update(InboundMessage)
        .where((col(InboundMessage.openid) == openid) | (col(InboundMessage.resident_id) == resident.id))
        .values(text=None, media={}, reply=None, openid=pseudonym)
    )
    resident.phone = None
    resident.openid = pseudonym
    resident.subscribed = False
    resident.consent_at = None
    resident.consent_version = None
    for staff_openid, case_no, case_id in told:
        await enqueue(
            session,
            openid=staff_openid,
            recipient_type=ActorType.STAFF,
            kind="alert",
            case_id=case_id,
            text=f"诉求{case_no}的居民申请删除个人信息，诉求已撤销，个人信息已删除，请停止办理。",
            dedupe_key=f"erased:{case_id}",
            now=now,
        )
    session.add(
        AuditLog(
            staff_id=requested_by.id if requested_by.type == ActorType.STAFF else None,
            action="erase_resident",
            detail=f"{ground}；诉求 {out.cases} 件，撤销 {len(out.cancelled)} 件",
            at=now,
        )
    )
    return out


async def erase_on_written_request(
    session: AsyncSession, *, case: Case, staff: Staff, ground: str, now: datetime
) -> tuple[str, Erasure]:
    """A resident's written request to delete their data, carried out by ``staff`` from one of their cases: the
    resident's every case (as in chat), or only this case when it has no WeChat resident (hotline, window).
    Returns (what was done, in words; the erasure). Audited with the request's ground and the case."""
    ground = ground.strip()[:200]
    if not ground:
        raise ValueError("请写明书面申请的编号或说明")
    session.add(AuditLog(staff_id=staff.id, action="erase_case", case_id=case.id, detail=ground, at=now))
    resident = await session.get(Resident, case.resident_id) if case.resident_id else None
    if resident is None or (resident.openid or "").startswith(ERASED_OPENID):
        await anonymise_case(session, case=case)
        return f"已删除诉求{case.case_no}的个人信息", Erasure(cases=1)
    done = await erase_resident(
        session, resident=resident, now=now, requested_by=Actor.of_staff(staff), ground=f"书面申请：{ground}"
    )
    return f"已删除该居民的个人信息：诉求 {done.cases} 件，撤销 {len(done.cancelled)} 件", done


async def retention_sweep(session: AsyncSession, *, now: datetime, years: int, batch: int = 200) -> int:
    """Anonymise the cases finished (closed, cancelled, …) more than `years` years before `now`; returns how many.
    Cases already anonymised are left alone, so the sweep may run every day."""
    cutoff = now - timedelta(days=365 * years + years // 4)
    finished_at = func.coalesce(col(Case.closed_at), col(Case.completed_at), col(Case.updated_at))
    rows = list(
        (
            await session.exec(
                select(Case)
                .where(
                    col(Case.status).in_(FINISHED),
                    finished_at < cutoff,
                    col(Case.description) != ERASED_NOTE,
                )
                .limit(batch)
            )
        ).all()
    )
    for c in rows:
        await anonymise_case(session, case=c)
    if rows:
        session.add(
            AuditLog(
                action="retention_sweep", detail=f"保存期满 {years} 年，匿名化诉求 {len(rows)} 件", at=now
            )
        )
    return len(rows)
