"""Starting the satisfaction survey (满意度评价) when a case is completed: the Survey row with its deadline and the
question in the outbox. The lifecycle's ``transition()`` calls ``start_survey``; the answers live in
``bot.cases.survey``, which sits above the lifecycle (it closes cases), while this module sits below it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.sla import policy_for
from bot.delivery.outbox import enqueue
from bot.models import Case, Resident, Survey
from bot.states import MessageKind, SurveyStatus
from reference.privacy import normalize_phone

log = logging.getLogger(__name__)
SURVEY_LINK_MARK = "sign:survey:{id}"


def question_text(case: Case) -> str:
    return (
        f"您的诉求（编号{case.case_no}）已办结。请为这次服务打个分：\n"
        "回复数字 5 非常满意、4 满意、3 一般、2 不满意、1 非常不满意，也可以直接说“很满意”“不满意”。\n"
        "或点这里填写：{link}"
    )


async def start_survey(session: AsyncSession, *, case: Case, now: datetime) -> Survey | None:
    """Create (or restart, after a reopening) the case's survey and queue the question: by WeChat, or by SMS to
    the case's contact phone when the resident has no (subscribed) WeChat; answered there by a reply digit."""
    resident = await session.get(Resident, case.resident_id) if case.resident_id is not None else None
    if resident is not None and resident.survey_opt_out:
        log.info("case %s: no survey (opted out)", case.case_no)
        return None
    phone = None
    if resident is None or not resident.subscribed:
        phone = normalize_phone(case.contact_phone)
        if phone is None:
            log.info("case %s: no survey (no WeChat and no phone)", case.case_no)
            return None
    policy = await policy_for(session, case.kind, "survey")
    deadline = policy.deadline(now) if policy else now + timedelta(days=3)
    survey = (await session.exec(select(Survey).where(Survey.case_id == case.id))).first()
    if survey is None:
        survey = Survey(case_id=case.id, resident_id=resident.id if resident else None)  # type: ignore[arg-type]
    survey.status = SurveyStatus.SENT
    survey.sent_at = now
    survey.deadline = deadline
    survey.reminded_at = None
    survey.score = None
    survey.comment = None
    survey.answered_at = None
    survey.via = None
    session.add(survey)
    await session.flush()
    await enqueue(
        session,
        openid=resident.openid if phone is None and resident is not None else "",
        phone=phone,
        kind=MessageKind.SURVEY,
        text=question_text(case),
        case_id=case.id,
        template={"case_no": case.case_no[:20], "status": "请评价本次服务"},
        link=SURVEY_LINK_MARK.format(id=survey.id),
        dedupe_key=f"survey:{case.id}:{deadline.isoformat()}",
        not_before=now,
        now=now,
    )
    return survey
