"""The satisfaction survey (满意度评价): started when a case is completed, answered in chat or on a signed page.

- ``start_survey`` (in ``bot.cases.survey_send``; the lifecycle's ``transition()`` calls it when a case reaches
  ``completed``): one Survey row with its deadline and the question in the outbox; residents who opted out, or have
  no WeChat, are not surveyed.
- ``answer_from_chat``: the dialogue calls it when a resident with an open survey writes; a score 1–5 by digit or by
  words (很满意 / 不满意 …, or the NLU's score), then an optional comment as the next message.
- ``record_answer``: the one place an answer is stored (chat and page); it closes the case through the lifecycle,
  feeds the donor's rating, and on a score ≤ 2 or a comment saying the help never arrived alerts the town
  supervisor and flags the case ``low_score`` with a timeline event.
- The reminder is a sweep (``bot.deadlines.sweeps.survey_reminders``); the timeout closes cases, so its sweep lives
  with them (``bot.cases.sweeps.survey_timeouts``).

Survey links in messages are written as a marker (``sign:survey:<id>``) and signed by the dispatcher, which holds
the link secret (see ``bot.delivery.dispatcher.resolve_link``).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.survey_send import SURVEY_LINK_MARK as SURVEY_LINK_MARK  # re-exported
from bot.cases.survey_send import question_text as question_text  # re-exported
from bot.cases.survey_send import start_survey as start_survey  # re-exported
from bot.cases.table import LifecycleError
from bot.cases.timeline import record_event
from bot.cases.transition import transition
from bot.delivery.outbox import enqueue
from bot.models import Case, Offer, Resident, Resource, Staff, Survey
from bot.states import (
    ActorType,
    CaseFlag,
    CaseStatus,
    EventKind,
    MessageKind,
    OfferStatus,
    Role,
    SurveyStatus,
)

log = logging.getLogger(__name__)

LOW_SCORE = 2
COMMENT_WINDOW = timedelta(hours=2)  # a message this soon after a chat score is taken as its comment
NOT_ARRIVED = ("没收到", "没有收到", "没有送到", "没送到", "没人来", "没有人来", "未收到", "冇收到", "冇人来")
NO_COMMENT = (
    "没有",
    "没了",
    "无",
    "不用",
    "不用了",
    "没意见",
    "没有意见",
    "冇",
    "好",
    "好的",
    "谢谢",
    "多谢",
)
SCORE_WORDS: tuple[tuple[str, int], ...] = (
    ("非常不满意", 1),
    ("很不满意", 1),
    ("十分不满意", 1),
    ("特别不满意", 1),
    ("太差", 1),
    ("很差", 1),
    ("非常差", 1),
    ("不太满意", 2),
    ("不怎么满意", 2),
    ("不满意", 2),
    ("差评", 2),
    ("一般般", 3),
    ("一般", 3),
    ("还行", 3),
    ("还可以", 3),
    ("马马虎虎", 3),
    ("非常满意", 5),
    ("很满意", 5),
    ("十分满意", 5),
    ("特别满意", 5),
    ("超满意", 5),
    ("好满意", 5),
    ("非常好", 5),
    ("满意", 4),
    ("挺好", 4),
    ("不错", 4),
    ("好评", 4),
)
_DIGIT = re.compile(r"^\s*([1-5１-５一二三四五])\s*(分|星|颗星)?\s*[。.!！]?\s*$")
_CN = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
SCORE_LABEL = {1: "非常不满意", 2: "不满意", 3: "一般", 4: "满意", 5: "非常满意"}


def parse_score(text: str) -> int | None:
    """1–5 from a digit (``5``, ``５分``, ``五星``) or words (``很满意`` → 5, ``不满意`` → 2)."""
    m = _DIGIT.match(text or "")
    if m:
        ch = m.group(1)
        if ch in _CN:
            return _CN[ch]
        return int(ch) if ch.isascii() else ord(ch) - ord("０")
    compact = re.sub(r"\s+", "", text or "")
    if len(compact) > 40:
        return None
    for word, score in SCORE_WORDS:
        if word in compact:
            return score
    return None


def says_not_arrived(text: str | None) -> bool:
    return bool(text) and any(w in text for w in NOT_ARRIVED)  # type: ignore[operator]


async def open_survey_for(session: AsyncSession, *, resident: Resident) -> Survey | None:
    """The resident's survey waiting for a score (the newest one)."""
    return (
        await session.exec(
            select(Survey)
            .where(Survey.resident_id == resident.id, Survey.status == SurveyStatus.SENT)
            .order_by(col(Survey.sent_at).desc())
            .limit(1)
        )
    ).first()


async def answer_from_chat(
    session: AsyncSession,
    *,
    resident: Resident,
    text: str,
    score: int | None,
    now: datetime,
    intent: str | None = None,
) -> str | None:
    """The reply to a resident's chat message if it answers their survey, else None (the dialogue goes on).

    ``score`` is the NLU's reading (e.g. an entity of ``rate_service``), used when given; otherwise the text is read
    here. After a score, the next message within two hours is taken as the comment unless the NLU says it is a new
    request (``intent`` micro_wish / micro_project / query_progress / cancel_request / offer_help)."""
    text = (text or "").strip()
    survey = await open_survey_for(session, resident=resident)
    if survey is not None:
        value = score if score is not None and 1 <= score <= 5 else parse_score(text)
        if value is None:
            return None
        await record_answer(session, survey=survey, score=value, comment=None, via="chat", now=now)
        if value <= LOW_SCORE:
            return (
                f"收到您的评价（{value}分：{SCORE_LABEL[value]}），很抱歉这次没让您满意。"
                "负责人会尽快联系您了解情况。您也可以直接回复说说哪里不好。"
            )
        return f"谢谢您的评价（{value}分：{SCORE_LABEL[value]}）！还有什么意见或建议，可以直接回复告诉我们。"
    if intent in ("micro_wish", "micro_project", "query_progress", "cancel_request", "offer_help"):
        return None
    recent = (
        await session.exec(
            select(Survey)
            .where(
                Survey.resident_id == resident.id,
                Survey.status == SurveyStatus.ANSWERED,
                Survey.via == "chat",
                col(Survey.comment).is_(None),
                col(Survey.answered_at) >= now - COMMENT_WINDOW,
            )
            .order_by(col(Survey.answered_at).desc())
            .limit(1)
        )
    ).first()
    if recent is None or not text:
        return None
    if text.rstrip("。.!！~") in NO_COMMENT:
        recent.comment = ""
        session.add(recent)
        return "好的，谢谢您！有需要随时找我们。"
    await record_comment(session, survey=recent, comment=text[:500], now=now)
    if says_not_arrived(text):
        return "已记下您的情况：帮助还没有送到。我们已通知负责人尽快核实并联系您。"
    return "您的意见已记下，谢谢您！"


def _resident_note(
    session: AsyncSession, *, case: Case, survey: Survey, now: datetime, note: str, data: dict[str, Any]
) -> None:
    """The resident's answer on the case timeline, as a note in the resident's name."""
    record_event(
        session,
        case=case,
        kind=EventKind.NOTE,
        actor=Actor("resident", survey.resident_id, "居民"),
        at=now,
        note=note,
        data=data,
    )


async def record_answer(
    session: AsyncSession, *, survey: Survey, score: int, comment: str | None, via: str, now: datetime
) -> None:
    """Store a score (and comment), close the case, feed the donor's rating, alert on a bad outcome."""
    if not 1 <= score <= 5:
        raise ValueError("score must be 1..5")
    if survey.status != SurveyStatus.SENT:
        raise ValueError("survey already answered or expired")
    survey.status = SurveyStatus.ANSWERED
    survey.score = score
    survey.comment = (comment or "").strip()[:500] or None
    survey.answered_at = now
    survey.via = via
    session.add(survey)
    case = await session.get(Case, survey.case_id)
    if case is None:
        return
    _resident_note(
        session,
        case=case,
        survey=survey,
        now=now,
        note=f"满意度评价：{score}分（{SCORE_LABEL[score]}）"
        + (f"，意见：{survey.comment}" if survey.comment else ""),
        data={"survey": survey.id, "score": score, "via": via},
    )
    await _rate_resource(session, case=case, score=score)
    if score <= LOW_SCORE or says_not_arrived(survey.comment):
        await alert_supervisor(session, case=case, survey=survey, now=now)
    await close_case(session, case=case, now=now, note=f"居民已评价（{score}分）")


async def record_comment(session: AsyncSession, *, survey: Survey, comment: str, now: datetime) -> None:
    survey.comment = comment.strip()[:500]
    session.add(survey)
    case = await session.get(Case, survey.case_id)
    if case is None:
        return
    _resident_note(
        session,
        case=case,
        survey=survey,
        now=now,
        note=f"评价意见：{survey.comment}",
        data={"survey": survey.id},
    )
    if says_not_arrived(survey.comment):
        await alert_supervisor(session, case=case, survey=survey, now=now)


async def _rate_resource(session: AsyncSession, *, case: Case, score: int) -> None:
    offer = (
        await session.exec(
            select(Offer)
            .where(
                Offer.case_id == case.id,
                col(Offer.status).in_((OfferStatus.ACCEPTED, OfferStatus.DELIVERED, OfferStatus.DONE)),
            )
            .order_by(col(Offer.answered_at).desc())
            .limit(1)
        )
    ).first()
    if offer is None:
        return
    resource = await session.get(Resource, offer.resource_id)
    if resource is not None:
        resource.rating_sum = (resource.rating_sum or 0) + score
        resource.rating_count = (resource.rating_count or 0) + 1
        session.add(resource)


async def alert_supervisor(session: AsyncSession, *, case: Case, survey: Survey, now: datetime) -> int:
    """Flag the case for a follow-up and tell the town supervisors (each once per survey). Returns messages queued."""
    reason = "居民反映帮助未送到" if says_not_arrived(survey.comment) else f"满意度低（{survey.score}分）"
    if case.flag != CaseFlag.LOW_SCORE:
        case.flag = CaseFlag.LOW_SCORE
        case.updated_at = now
        session.add(case)
        record_event(
            session,
            case=case,
            kind=EventKind.NOTE,
            actor=Actor.system(),
            at=now,
            note=f"{reason}，请回访，必要时重新打开诉求。",
            data={"flag": CaseFlag.LOW_SCORE, "survey": survey.id},
        )
    supervisors = (
        await session.exec(
            select(Staff).where(
                Staff.town == case.town,
                Staff.role == Role.TOWN_SUPERVISOR,
                Staff.active == True,  # noqa: E712
                col(Staff.openid).is_not(None),
            )
        )
    ).all()
    queued = 0
    for staff in supervisors:
        queued += await enqueue(
            session,
            openid=staff.openid,  # type: ignore[arg-type]
            recipient_type=ActorType.STAFF,
            kind=MessageKind.ALERT,
            text=f"【回访提醒】诉求{case.case_no}：{reason}。请尽快联系居民核实，必要时重新打开。",
            case_id=case.id,
            template={"case_no": case.case_no[:20], "status": reason[:20]},
            dedupe_key=f"survey-alert:{survey.id}:{staff.id}:{'arrive' if says_not_arrived(survey.comment) else 'low'}",
            not_before=now,
            now=now,
        )
    return queued


async def close_case(session: AsyncSession, *, case: Case, now: datetime, note: str) -> bool:
    """Close a completed case through the lifecycle (a no-op when staff already closed or reopened it)."""
    if case.status != CaseStatus.COMPLETED:
        return False
    try:
        await transition(session, case=case, action="close", actor=Actor.system(), note=note, now=now)
    except LifecycleError as exc:
        log.info("case %s: not closed after the survey: %s", case.case_no, exc)
        return False
    return True
