"""Call tasks (回访) and answers that arrive outside WeChat.

- ``on_unreachable``: what the outbox dispatcher calls (through ``DeliveryConfig.on_unreachable``, wired by the
  scheduler) when neither WeChat nor SMS reached the resident — also when the SMS provider's receipt later says a
  text was never delivered (``receipt_arrived``): the case is flagged for a phone call and the town's staff get
  one open call task per case, due by the call queue's deadline (``bot.deadlines.calls.call_deadline``: the
  ``call`` policy, in waking hours), reminded and escalated by the call queue's sweep.
- ``record_call``: staff phoned and record the answer — a score 1–5 (stored as the survey's answer, which closes the
  case as a chat answer would) or "unreachable" (the survey expires and the case closes, as after the survey's
  deadline); the task is done and the phone flag cleared, with a timeline note.
- ``answer_by_sms``: a resident's SMS reply (上行): the newest open survey that went to that number by SMS takes
  a reply of 1–5 (or words such as 很满意) as its score.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.access import StaffError
from bot.cases.actors import Actor
from bot.cases.flags import PHONE_FLAG, flag_unreachable
from bot.cases.survey import SCORE_LABEL, close_case, parse_score, record_answer
from bot.cases.timeline import record_event
from bot.deadlines.calls import call_deadline
from bot.deadlines.waking import DEFAULT_WAKING, WakingHours
from bot.delivery.texts import record_receipt
from bot.models import CallTask, Case, Outbox, Resident, Staff, Survey
from bot.states import EventKind, MessageKind, SurveyStatus
from reference.privacy import normalize_phone

log = logging.getLogger(__name__)
UNREACHABLE = "unreachable"
ANSWERED = "answered"


class CallTaskError(StaffError):
    pass


async def open_call_task(
    session: AsyncSession, *, case: Case, reason: str, now: datetime, waking: WakingHours = DEFAULT_WAKING
) -> CallTask:
    """One open call task per case: a second failure returns the open one."""
    existing = (
        await session.exec(
            select(CallTask).where(col(CallTask.case_id) == case.id, col(CallTask.done_at).is_(None))
        )
    ).first()
    if existing is not None:
        return existing
    phone = normalize_phone(case.contact_phone)
    if phone is None and case.resident_id is not None:
        resident = await session.get(Resident, case.resident_id)
        phone = normalize_phone(resident.phone) if resident is not None else None
    task = CallTask(
        case_id=case.id,  # type: ignore[arg-type]
        town=case.town,
        phone=phone,
        reason=reason[:200],
        created_at=now,
        due_at=await call_deadline(session, now=now, waking=waking),
    )
    session.add(task)
    await session.flush()
    return task


async def on_unreachable(
    session: AsyncSession,
    case_id: int,
    now: datetime,
    *,
    waking: WakingHours = DEFAULT_WAKING,
    reason: str = "微信和短信都无法送达，请电话回访",
) -> None:
    """Neither WeChat nor SMS reached the resident: flag the case and give the town a call task."""
    await flag_unreachable(session, case_id, now)
    case = await session.get(Case, case_id)
    if case is not None:
        await open_call_task(session, case=case, reason=reason, now=now, waking=waking)


async def receipt_arrived(
    session: AsyncSession,
    *,
    message_id: str,
    delivered: bool,
    code: str,
    now: datetime,
    waking: WakingHours = DEFAULT_WAKING,
) -> bool:
    """A provider's delivery receipt. "Undelivered" parks the text (``bot.delivery.texts.record_receipt``)
    and, for a resident's message about a case, the town gets a call task. False: no text of ours."""

    async def undelivered(session: AsyncSession, case_id: int, now: datetime) -> None:
        await on_unreachable(
            session,
            case_id,
            now,
            waking=waking,
            reason=f"短信未送达（{code or '运营商回执'}），请电话联系"[:200],
        )

    row = await record_receipt(
        session, message_id=message_id, delivered=delivered, code=code, now=now, on_unreachable=undelivered
    )
    return row is not None


async def open_task(session: AsyncSession, *, task_id: int, town: str | None) -> CallTask:
    task = await session.get(CallTask, task_id)
    if task is None or task.done_at is not None or (town is not None and task.town != town):
        raise CallTaskError("没有这条回访任务，或已经处理过了")
    return task


async def _open_survey(session: AsyncSession, case_id: int) -> Survey | None:
    return (
        await session.exec(
            select(Survey).where(col(Survey.case_id) == case_id, col(Survey.status) == SurveyStatus.SENT)
        )
    ).first()


async def record_call(
    session: AsyncSession,
    *,
    task_id: int,
    staff: Staff,
    town: str | None,
    score: int | None,
    note: str,
    now: datetime,
) -> CallTask:
    """Staff phoned: a score (1–5) answers the case's open survey, ``score=None`` records "unreachable"."""
    if score is not None and not 1 <= score <= 5:
        raise CallTaskError("请选择1到5分，或选择“联系不上”")
    task = await open_task(session, task_id=task_id, town=town)
    case = await session.get(Case, task.case_id)
    if case is None:
        raise CallTaskError("没有这条回访任务，或已经处理过了")
    note = (note or "").strip()[:500]
    survey = await _open_survey(session, case.id)  # type: ignore[arg-type]
    actor = Actor.of_staff(staff)
    if score is not None:
        said = f"电话回访：居民评价{score}分（{SCORE_LABEL[score]}）" + (f"，{note}" if note else "")
    else:
        said = "电话回访：联系不上居民" + (f"，{note}" if note else "")
    record_event(
        session, case=case, kind=EventKind.NOTE, actor=actor, at=now, note=said, data={"call_task": task.id}
    )
    if case.flag == PHONE_FLAG:
        case.flag = None
        case.updated_at = now
        session.add(case)
    task.done_at = now
    task.done_by_id = staff.id
    task.outcome = ANSWERED if score is not None else UNREACHABLE
    task.score = score
    task.note = note or None
    session.add(task)
    if survey is not None and score is not None:
        await record_answer(session, survey=survey, score=score, comment=note or None, via="call", now=now)
    elif survey is not None:
        survey.status = SurveyStatus.EXPIRED
        session.add(survey)
        await close_case(session, case=case, now=now, note="电话回访联系不上居民，诉求归档")
    await session.flush()
    return task


async def answer_by_sms(session: AsyncSession, *, phone: str, text: str, now: datetime) -> str:
    """A resident's SMS reply: ``answered`` (a score was recorded), ``not_a_score`` (an open survey, but the text
    is no score; kept on the timeline) or ``no_survey``."""
    number = normalize_phone(phone)
    if number is None:
        return "no_survey"
    survey = (
        await session.exec(
            select(Survey)
            .join(Outbox, col(Outbox.case_id) == col(Survey.case_id))
            .where(
                col(Outbox.phone) == number,
                col(Outbox.kind) == MessageKind.SURVEY,
                col(Survey.status) == SurveyStatus.SENT,
            )
            .order_by(col(Survey.sent_at).desc())
            .limit(1)
        )
    ).first()
    if survey is None:
        return "no_survey"
    score = parse_score(text)
    if score is None:
        case = await session.get(Case, survey.case_id)
        if case is not None:
            record_event(
                session,
                case=case,
                kind=EventKind.NOTE,
                actor=Actor("resident", survey.resident_id, "居民"),
                at=now,
                note=f"居民短信回复：{(text or '').strip()[:200]}",
                data={"survey": survey.id, "via": "sms"},
            )
        return "not_a_score"
    await record_answer(session, survey=survey, score=score, comment=None, via="sms", now=now)
    return "answered"
