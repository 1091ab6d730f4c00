"""The sweeps that act on cases, and every minute's sweeps in ladder order.

The deadline sweeps (reminders, escalations, nudges, offer and survey reminders, offer timeouts) live in
``bot.deadlines.sweeps`` and write only deadline marks and outbox rows. A sweep that moves a case through the
lifecycle lives here, above both: the survey timeout expires the survey and closes the case. ``run_sweeps`` is what
the scheduler (``bot.ops.scheduler``) runs every minute; each sweep logs and survives its own failure.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.project_overdue import report_overdue as report_overdue_projects
from bot.cases.supervision import escalate_due as escalate_supervisions
from bot.cases.supervision_town import escalate_due as escalate_town_supervisions
from bot.cases.survey import close_case
from bot.db import Sessions
from bot.deadlines.calls import call_deadlines
from bot.deadlines.sweeps import (
    OfferTimeoutHook,
    escalate_city_due,
    escalate_due,
    guarded_sweep,
    nudge_residents,
    offer_reminders,
    offer_timeouts,
    remind_due,
    survey_reminders,
    timed_out,
)
from bot.deadlines.waking import DEFAULT_WAKING, WakingHours
from bot.models import Case, Survey
from bot.states import SurveyStatus


async def survey_timeouts(*, sessions: Sessions, now: datetime, batch: int = 500) -> int:
    """Unanswered by the deadline: the survey expires and the case closes."""

    async def work(session: AsyncSession) -> int:
        surveys = await timed_out(session, Survey, status=SurveyStatus.SENT, now=now, batch=batch)
        for sv in surveys:
            sv.status = SurveyStatus.EXPIRED
            session.add(sv)
            case = await session.get(Case, sv.case_id)
            if case is not None:
                await close_case(session, case=case, now=now, note="满意度评价超时未答复，系统自动归档")
        return len(surveys)

    return await guarded_sweep("survey timeout sweep", sessions, work)


async def run_sweeps(
    *,
    sessions: Sessions,
    now: datetime,
    offer_timeout_hook: OfferTimeoutHook | None = None,
    waking: WakingHours = DEFAULT_WAKING,
) -> dict[str, int]:
    """Every minute's sweeps, in ladder order (each logs and survives its own failure). Reminders to people wait
    for ``waking`` hours."""
    return {
        "reminded": await remind_due(sessions=sessions, now=now),
        "escalated": await escalate_due(sessions=sessions, now=now),
        "escalated_city": await escalate_city_due(sessions=sessions, now=now),
        "nudged": await nudge_residents(sessions=sessions, now=now),
        "offer_reminders": await offer_reminders(sessions=sessions, now=now, waking=waking),
        "offer_timeouts": await offer_timeouts(sessions=sessions, now=now, hook=offer_timeout_hook),
        "survey_reminders": await survey_reminders(sessions=sessions, now=now, waking=waking),
        "survey_timeouts": await survey_timeouts(sessions=sessions, now=now),
        "call_deadlines": await call_deadlines(sessions=sessions, now=now, waking=waking),
        "supervision_escalated": await guarded_sweep(
            "supervision escalation sweep", sessions, lambda session: escalate_supervisions(session, now=now)
        ),
        "town_supervision_escalated": await guarded_sweep(
            "town supervision escalation sweep",
            sessions,
            lambda session: escalate_town_supervisions(session, now=now),
        ),
        "projects_overdue": await guarded_sweep(
            "micro-project overdue sweep", sessions, lambda session: report_overdue_projects(session, now=now)
        ),
    }
