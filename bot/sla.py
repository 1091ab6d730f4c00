"""Deadlines (working-day SLAs): the policy table, the stage clock, pausing, and the survey start.

The case lifecycle calls ``on_transition`` in the transaction of every transition. Each open stage gets an absolute
``stage_deadline`` from the policy (SlaPolicy rows, editable by admins; ``DEFAULT_POLICIES`` seeds them and serves
when a row is missing). The completion clock starts when a case first enters matching/dispatched/in_progress and
is not restarted by moves between those three. Reminder/escalation marks are cleared whenever the deadline changes,
so every deadline gets its own reminder and escalation, each once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Case, SlaPolicy
from bot.workdays import add_working_days, add_working_hours

log = logging.getLogger(__name__)

# case status -> the policy stage that governs how long it may stay there
STAGE_OF_STATUS = {
    "submitted": "submitted",  # community verification
    "verified": "verified",  # town review
    "accepted": "accepted",  # someone claims it
    "claimed": "claimed",  # matching or dispatch starts
    "reopened": "reopened",
    "matching": "completion",
    "dispatched": "completion",
    "in_progress": "completion",
}
COMPLETION_STATUSES = frozenset(s for s, stage in STAGE_OF_STATUS.items() if stage == "completion")
STAGE_LABEL = {
    "submitted": "社区核实",
    "verified": "镇街审核",
    "accepted": "认领",
    "claimed": "对接/派单",
    "reopened": "重新办理",
    "completion": "办结",
    "offer": "认领答复",
    "survey": "满意度评价",
}
CITY_AFTER_WORKING_DAYS = 2  # escalate to the city this many working days after the deadline passed


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str
    stage: str
    amount: int
    unit: str  # working_days | working_hours | hours | days
    remind_before_hours: int = 4

    def deadline(self, start: datetime) -> datetime:
        if self.unit == "working_days":
            return add_working_days(start, self.amount)
        if self.unit == "working_hours":
            return add_working_hours(start, self.amount)
        if self.unit == "hours":
            return start + timedelta(hours=self.amount)
        if self.unit == "days":
            return start + timedelta(days=self.amount)
        raise ValueError(f"unknown unit {self.unit!r}")

    @property
    def lead(self) -> timedelta:
        return timedelta(hours=self.remind_before_hours)


DEFAULT_POLICIES: tuple[Policy, ...] = (
    Policy("any", "submitted", 1, "working_days", 4),
    Policy("any", "verified", 3, "working_days", 8),
    Policy("any", "accepted", 2, "working_days", 8),
    Policy("any", "claimed", 7, "working_days", 24),
    Policy("any", "reopened", 3, "working_days", 8),
    Policy("micro_wish", "completion", 15, "working_days", 48),
    Policy("micro_project", "completion", 30, "working_days", 72),
    Policy("any", "offer", 24, "hours", 4),
    Policy("any", "survey", 3, "days", 24),
)


async def seed_policies(session: AsyncSession) -> int:
    """Insert the default policies that are missing (admins' edits are kept). Returns how many were added."""
    have = {(p.kind, p.stage) for p in (await session.exec(select(SlaPolicy))).all()}
    added = 0
    for p in DEFAULT_POLICIES:
        if (p.kind, p.stage) not in have:
            session.add(
                SlaPolicy(
                    kind=p.kind, stage=p.stage, amount=p.amount, unit=p.unit, remind_before_hours=p.remind_before_hours
                )
            )
            added += 1
    return added


def default_policy(kind: str, stage: str) -> Policy | None:
    exact = [p for p in DEFAULT_POLICIES if p.stage == stage and p.kind == kind]
    fallback = [p for p in DEFAULT_POLICIES if p.stage == stage and p.kind == "any"]
    found = exact or fallback
    return found[0] if found else None


async def policy_for(session: AsyncSession, kind: str, stage: str) -> Policy | None:
    """The policy for a case kind and stage: the table's row for this kind, else its "any" row, else the default."""
    rows = (
        await session.exec(select(SlaPolicy).where(SlaPolicy.stage == stage, SlaPolicy.kind.in_((kind, "any"))))  # type: ignore[attr-defined]
    ).all()
    row = next((r for r in rows if r.kind == kind), None) or next((r for r in rows if r.kind == "any"), None)
    if row is not None:
        return Policy(row.kind, row.stage, row.amount, row.unit, row.remind_before_hours)
    return default_policy(kind, stage)


def _clear_marks(case: Case) -> None:
    case.reminded_at = None
    case.escalated_at = None
    case.escalated_city_at = None
    case.resident_nudged_at = None


async def on_transition(
    session: AsyncSession, *, case: Case, from_status: str | None, to_status: str, now: datetime
) -> None:
    """Called in the transaction of every case transition: restart the stage clock, start surveys, ..."""
    continuing = from_status in COMPLETION_STATUSES and to_status in COMPLETION_STATUSES and case.stage_deadline
    if continuing:
        return  # the completion clock keeps running from where it started
    case.stage_started_at = now
    _clear_marks(case)
    if case.awaiting_resident and case.paused_at is None:
        case.paused_at = now
    elif not case.awaiting_resident:
        case.paused_at = None
    stage = STAGE_OF_STATUS.get(to_status)
    policy = await policy_for(session, case.kind, stage) if stage else None
    case.stage_deadline = policy.deadline(now) if policy else None
    session.add(case)
    if to_status == "completed":
        from bot.survey import start_survey

        await start_survey(session, case=case, now=now)


async def pause_clock(session: AsyncSession, *, case: Case, now: datetime) -> None:
    """Staff asked the resident something: the time until the answer does not count against staff."""
    if case.paused_at is None:
        case.paused_at = now
    case.awaiting_resident = True
    session.add(case)


async def resume_clock(session: AsyncSession, *, case: Case, now: datetime) -> None:
    """The resident answered: the deadline moves by the paused time; reminders for the new deadline are due anew."""
    if case.paused_at is not None and case.stage_deadline is not None:
        paused = max(timedelta(0), now - case.paused_at)
        case.stage_deadline = case.stage_deadline + paused
        if case.stage_deadline > now:
            _clear_marks(case)
    case.paused_at = None
    case.awaiting_resident = False
    session.add(case)
