"""Deadlines (working-day SLAs): the policy table, the stage clock and pausing.

The case lifecycle calls ``restart_clock`` in the transaction of every transition (and starts the survey itself:
this module knows nothing of cases' side effects). Each open stage gets an absolute
``stage_deadline`` from the policy (SlaPolicy rows, editable by admins; ``DEFAULT_POLICIES`` seeds them and serves
when a row is missing). The completion clock starts when a case first enters matching/dispatched/in_progress and
is not restarted by moves between those three. Reminder/escalation marks are cleared whenever the deadline changes,
so every deadline gets its own reminder and escalation, each once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_
from sqlalchemy import select as sa_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.workdays import add_working_days, add_working_hours
from bot.driver import on_driver
from bot.models import Case, SlaPolicy
from bot.refcache import cached
from bot.states import CaseStatus

log = logging.getLogger(__name__)

# case status -> the policy stage that governs how long it may stay there
STAGE_OF_STATUS: dict[str, str] = {
    CaseStatus.SUBMITTED: "submitted",  # community verification
    CaseStatus.VERIFIED: "verified",  # town review
    CaseStatus.ACCEPTED: "accepted",  # someone claims it
    CaseStatus.CLAIMED: "claimed",  # matching or dispatch starts
    CaseStatus.REOPENED: "reopened",
    CaseStatus.MATCHING: "completion",
    CaseStatus.DISPATCHED: "completion",
    CaseStatus.IN_PROGRESS: "completion",
    CaseStatus.POLICY: "policy",  # the department's decision on a policy application
}
COMPLETION_STATUSES = frozenset(s for s, stage in STAGE_OF_STATUS.items() if stage == "completion")
STAGE_LABEL = {
    "submitted": "社区核实",
    "verified": "镇街审核",
    "accepted": "认领",
    "claimed": "对接/派单",
    "reopened": "重新办理",
    "completion": "办结",
    "policy": "政策办理",
    "offer": "认领答复",
    "survey": "满意度评价",
    "call": "电话回访/回电",  # the staff call queue (bot.deadlines.calls)
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
    Policy("any", "policy", 20, "working_days", 48),
    Policy("any", "offer", 24, "hours", 4),
    Policy("any", "survey", 3, "days", 24),
    Policy("any", "call", 1, "working_days", 4),
)


async def seed_policies(session: AsyncSession) -> int:
    """Insert the default policies that are missing (admins' edits are kept). Returns how many were added."""
    have = {(p.kind, p.stage) for p in (await session.exec(select(SlaPolicy))).all()}
    added = 0
    for p in DEFAULT_POLICIES:
        if (p.kind, p.stage) not in have:
            session.add(
                SlaPolicy(
                    kind=p.kind,
                    stage=p.stage,
                    amount=p.amount,
                    unit=p.unit,
                    remind_before_hours=p.remind_before_hours,
                )
            )
            added += 1
    return added


def default_policy(kind: str, stage: str) -> Policy | None:
    exact = [p for p in DEFAULT_POLICIES if p.stage == stage and p.kind == kind]
    fallback = [p for p in DEFAULT_POLICIES if p.stage == stage and p.kind == "any"]
    found = exact or fallback
    return found[0] if found else None


#: a kind's and the "any" row of a stage, in ``Policy``'s order; built once, run on the driver in the webhook's units
#: of work (a case filed from the chat reads it when the cache has none)
_POLICIES = SlaPolicy.__table__  # type: ignore[attr-defined]
_POLICY_ROWS = on_driver(
    sa_select(
        _POLICIES.c.kind,
        _POLICIES.c.stage,
        _POLICIES.c.amount,
        _POLICIES.c.unit,
        _POLICIES.c.remind_before_hours,
    ).where(
        _POLICIES.c.stage == bindparam("stage"),
        or_(_POLICIES.c.kind == bindparam("kind"), _POLICIES.c.kind == "any"),
    )
)


async def policy_for(session: AsyncSession, kind: str, stage: str) -> Policy | None:
    """The policy for a case kind and stage: the table's row for this kind, else its "any" row, else the default.
    Read through the reference cache (every new case starts a clock; an admin's edit drops it: bot/refcache)."""

    async def load() -> Policy | None:
        rows = (await session.exec(_POLICY_ROWS, params={"kind": kind, "stage": stage})).all()  # type: ignore[call-overload]
        row = next((r for r in rows if r[0] == kind), None) or next((r for r in rows if r[0] == "any"), None)
        if row is not None:
            return Policy(*row)
        return default_policy(kind, stage)

    return await cached(session, ("sla_policy", kind, stage), load)


def _clear_marks(case: Case) -> None:
    case.reminded_at = None
    case.escalated_at = None
    case.escalated_city_at = None
    case.resident_nudged_at = None


async def restart_clock(
    session: AsyncSession, *, case: Case, from_status: str | None, to_status: str, now: datetime
) -> None:
    """Called in the transaction of every case transition: the new stage's deadline (the completion clock keeps
    running between matching, dispatched and in progress)."""
    continuing = (
        from_status in COMPLETION_STATUSES and to_status in COMPLETION_STATUSES and case.stage_deadline
    )
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


# ------------------------------------------------------------------ the policy table, as admins edit it
UNIT_LABEL = {"working_days": "工作日", "working_hours": "工作小时", "hours": "小时", "days": "自然日"}
#: the longest deadline an admin may set, per unit (about three months at most)
MAX_AMOUNT = {"working_days": 60, "working_hours": 360, "hours": 720, "days": 90}
MAX_REMIND_BEFORE_HOURS = 720
POLICY_KINDS = ("any", "micro_wish", "micro_project")
#: every stage a policy can govern, in the order a case meets them
POLICY_STAGES: tuple[str, ...] = (*dict.fromkeys(STAGE_OF_STATUS.values()), "offer", "survey", "call")
#: offers and surveys are swept with the "any" policy's reminder lead, so they take no per-kind override
CASE_STAGES = frozenset(STAGE_OF_STATUS.values())
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


class PolicyError(ValueError):
    """A policy edit that breaks the rules; ``errors`` maps each offending form field to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def min_span_hours(unit: str, amount: int) -> int:
    """The shortest time (hours) a deadline of ``amount`` ``unit`` can give: a working-day stage started just
    before midnight ends at 18:00 of the next working day, so N working days last at least 18 + 24·(N−1) h."""
    if unit == "working_days":
        return 18 + 24 * (amount - 1)
    if unit == "days":
        return 24 * amount
    return amount


def _whole(value: int | str, field: str, label: str, errors: dict[str, str]) -> int | None:
    if isinstance(value, bool):
        errors[field] = f"{label}须为整数"
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().translate(_FULLWIDTH_DIGITS)
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        errors[field] = f"{label}须为正整数"
        return None
    return int(text)


def validate_policy(
    *, kind: str, stage: str, amount: int | str, unit: str, remind_before_hours: int | str
) -> Policy:
    """Check an admin's policy (form strings accepted, full-width digits too); raises PolicyError listing every
    field at fault."""
    errors: dict[str, str] = {}
    if kind not in POLICY_KINDS:
        errors["kind"] = "诉求类型不正确"
    if stage not in POLICY_STAGES:
        errors["stage"] = "阶段不正确"
    elif kind != "any" and stage not in CASE_STAGES:
        errors["kind"] = "爱心认领答复和满意度回访的时限两类诉求通用，不能单独设置"
    if unit not in UNIT_LABEL:
        errors["unit"] = "单位须为工作日、工作小时、小时或自然日"
    n = _whole(amount, "amount", "时限", errors)
    if n is not None and "unit" not in errors:
        if n < 1:
            errors["amount"] = "时限须为正整数"
        elif n > MAX_AMOUNT[unit]:
            errors["amount"] = f"时限最长{MAX_AMOUNT[unit]}{UNIT_LABEL[unit]}"
    lead = _whole(remind_before_hours, "remind_before_hours", "提前提醒小时数", errors)
    if lead is not None:
        if lead < 1:
            errors["remind_before_hours"] = "提前提醒小时数须为正整数"
        elif lead > MAX_REMIND_BEFORE_HOURS:
            errors["remind_before_hours"] = f"提前提醒最多{MAX_REMIND_BEFORE_HOURS}小时"
        elif n is not None and not errors.keys() & {"amount", "unit"} and lead >= min_span_hours(unit, n):
            errors["remind_before_hours"] = (
                f"提前提醒须短于时限本身（{n}{UNIT_LABEL[unit]}最短约{min_span_hours(unit, n)}小时）"
            )
    if errors:
        raise PolicyError(errors)
    assert n is not None and lead is not None
    return Policy(kind, stage, n, unit, lead)


def describe_policy(policy: Policy | None) -> str:
    """ "3工作日，提前8小时提醒" — for the audit log and the admins' messages."""
    if policy is None:
        return "（无）"
    return (
        f"{policy.amount}{UNIT_LABEL.get(policy.unit, policy.unit)}，提前{policy.remind_before_hours}小时提醒"
    )


def _from_row(row: SlaPolicy) -> Policy:
    return Policy(row.kind, row.stage, row.amount, row.unit, row.remind_before_hours)


def _sort_key(policy: Policy) -> tuple[int, int]:
    stage = POLICY_STAGES.index(policy.stage) if policy.stage in POLICY_STAGES else len(POLICY_STAGES)
    kind = POLICY_KINDS.index(policy.kind) if policy.kind in POLICY_KINDS else len(POLICY_KINDS)
    return stage, kind


async def list_policies(session: AsyncSession) -> list[Policy]:
    """Every policy in force: the table's rows, plus the defaults the table lacks, in stage order."""
    rows = {(r.kind, r.stage): _from_row(r) for r in (await session.exec(select(SlaPolicy))).all()}
    for p in DEFAULT_POLICIES:
        rows.setdefault((p.kind, p.stage), p)
    return sorted(rows.values(), key=_sort_key)


async def save_policy(
    session: AsyncSession,
    *,
    kind: str,
    stage: str,
    amount: int | str,
    unit: str,
    remind_before_hours: int | str,
) -> tuple[Policy | None, Policy]:
    """Validate and store one (kind, stage) policy; returns (the policy it replaces, the new one). The old one
    is the row's, else the default for exactly this kind and stage, else None (a new per-kind override).
    Deadlines already computed keep their value; only stages started afterwards use the new one."""
    new = validate_policy(
        kind=kind, stage=stage, amount=amount, unit=unit, remind_before_hours=remind_before_hours
    )
    row = (
        await session.exec(select(SlaPolicy).where(SlaPolicy.kind == kind, SlaPolicy.stage == stage))
    ).first()
    if row is not None:
        old: Policy | None = _from_row(row)
    else:
        old = next((p for p in DEFAULT_POLICIES if p.kind == kind and p.stage == stage), None)
        row = SlaPolicy(kind=kind, stage=stage, amount=new.amount, unit=new.unit)
    row.amount, row.unit, row.remind_before_hours = new.amount, new.unit, new.remind_before_hours
    session.add(row)
    await session.flush()
    log.info(
        "SLA policy %s/%s set to %s %s (lead %dh)", kind, stage, new.amount, new.unit, new.remind_before_hours
    )
    return old, new


async def delete_policy(session: AsyncSession, *, kind: str, stage: str) -> Policy | None:
    """Remove a per-kind override (the "any" policy governs again); returns it, or None when there was none.
    Rows that carry a default are not removed: restore them with ``restore_default_policies``."""
    if any(p.kind == kind and p.stage == stage for p in DEFAULT_POLICIES):
        raise PolicyError({"kind": "默认时限不能删除，可修改或恢复默认"})
    row = (
        await session.exec(select(SlaPolicy).where(SlaPolicy.kind == kind, SlaPolicy.stage == stage))
    ).first()
    if row is None:
        return None
    old = _from_row(row)
    await session.delete(row)
    await session.flush()
    return old


async def restore_default_policies(session: AsyncSession) -> list[tuple[Policy | None, Policy | None]]:
    """Put the table back to DEFAULT_POLICIES (per-kind overrides removed); returns each (old, new) that changed."""
    defaults = {(p.kind, p.stage): p for p in DEFAULT_POLICIES}
    changes: list[tuple[Policy | None, Policy | None]] = []
    for row in (await session.exec(select(SlaPolicy))).all():
        old = _from_row(row)
        default = defaults.get((row.kind, row.stage))
        if default is None:
            await session.delete(row)
            changes.append((old, None))
        elif old != default:
            row.amount, row.unit, row.remind_before_hours = (
                default.amount,
                default.unit,
                default.remind_before_hours,
            )
            session.add(row)
            changes.append((old, default))
    await seed_policies(session)  # the defaults the table lacked (no change in force: defaults served them)
    await session.flush()
    changes.sort(key=lambda c: _sort_key(c[0] or c[1]))  # type: ignore[arg-type]
    return changes
