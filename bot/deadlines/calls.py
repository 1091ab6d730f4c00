"""The staff call queue's deadlines: one rule for both kinds of call (回电: a resident asked for a person,
``CallBack``; 回访: neither WeChat nor SMS reached a resident, ``CallTask``).

- ``call_deadline``: when a call is due — the ``call`` policy of the SLA table (``SlaPolicy``, editable by admins;
  by default 18:00 of the next working day), moved into waking hours.
- ``call_deadlines``: the ladder, as for case deadlines (``bot.deadlines.sweeps``): a reminder to the town's staff
  ``lead`` before the deadline (the policy's ``remind_before_hours``), then, once it has passed, an escalation to
  the town supervisors (city supervisors for a request whose town is unknown). Each step once per row and
  deadline (``reminded_at`` / ``escalated_at`` and a dedupe key per message), rows locked as the other sweeps
  lock theirs; messages to staff wait for waking hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions
from bot.deadlines.sla import policy_for
from bot.deadlines.sweeps import _local, _locked, _StaffIndex, guarded_sweep, queue_many
from bot.deadlines.waking import DEFAULT_WAKING, WakingHours
from bot.deadlines.workdays import add_working_days
from bot.models import CallBack, CallTask, Case, Staff
from bot.states import ActorType, MessageKind, Role

CALL_STAGE = "call"
QUEUE_LINK = "/staff/calls"
_Call = TypeVar("_Call", CallTask, CallBack)
#: what staff are told each kind of call is
REASON_LABEL = {"calltask": "电话回访", "callback": "居民要求回电"}


async def call_deadline(
    session: AsyncSession, *, now: datetime, waking: WakingHours = DEFAULT_WAKING
) -> datetime:
    """When a call that starts ``now`` is due (the ``call`` policy, in waking hours)."""
    policy = await policy_for(session, "any", CALL_STAGE)
    due = policy.deadline(now) if policy is not None else add_working_days(now, 1)
    return waking.clamp(due)


async def _due(
    session: AsyncSession, model: type[_Call], *, mark: str, before: datetime, batch: int
) -> Sequence[_Call]:
    stmt = (
        select(model)
        .where(
            col(model.done_at).is_(None),
            col(model.due_at) <= before,
            col(getattr(model, mark)).is_(None),
        )
        .order_by(col(model.due_at))
        .limit(batch)
    )
    return (await session.exec(_locked(stmt, session))).all()  # type: ignore[no-any-return]


def _source(row: CallTask | CallBack) -> str:
    return "calltask" if isinstance(row, CallTask) else "callback"


def _people(staff: _StaffIndex, town: str | None, roles: tuple[str, ...]) -> list[Staff]:
    if not town:
        return staff.city()
    return staff.town(town, roles) or staff.town(town, (Role.TOWN_SUPERVISOR,)) or staff.city()


async def _ladder_step(
    session: AsyncSession,
    *,
    rows: Sequence[CallTask | CallBack],
    step: str,
    now: datetime,
    waking: WakingHours,
) -> int:
    if not rows:
        return 0
    case_ids = {r.case_id for r in rows if r.case_id is not None}
    case_nos: dict[int, str] = {}
    if case_ids:
        found = await session.exec(
            select(col(Case.id), col(Case.case_no)).where(col(Case.id).in_(sorted(case_ids)))
        )
        case_nos = {cid: no for cid, no in found.all() if cid is not None}
    staff = await _StaffIndex.load(session, {r.town for r in rows if r.town}, claimers=set())
    send_at = waking.clamp(now)
    messages: list[dict[str, Any]] = []
    for r in rows:
        source = _source(r)
        what = REASON_LABEL[source] + (f"（诉求{case_nos[r.case_id]}）" if r.case_id in case_nos else "")
        where = r.town or "镇街未知"
        if step == "remind":
            overdue = r.due_at <= now
            text = (
                f"{'【已超时】' if overdue else '【即将到期】'}{where}有一条{what}"
                f"{'已于' if overdue else '将于'}{_local(r.due_at)}到期，请尽快打电话并记下结果。"
            )
            people = _people(staff, r.town, (Role.TOWN_STAFF,))
            kind, status = MessageKind.REMINDER, f"{_local(r.due_at)}到期"
        else:
            text = f"【超时督办】{where}的{what}已于{_local(r.due_at)}超时仍未处理，请督促尽快回电。"
            people = _people(staff, r.town, (Role.TOWN_SUPERVISOR,))
            kind, status = MessageKind.ESCALATION, "已超时"
        key = f"call-{step}:{source}:{r.id}:{r.due_at.isoformat()}"
        for s in people:
            messages.append(
                {
                    "openid": s.openid,
                    "recipient_type": ActorType.STAFF,
                    "kind": kind,
                    "text": text,
                    "case_id": r.case_id,
                    "template": {
                        "case_no": case_nos.get(r.case_id or 0, REASON_LABEL[source])[:20],
                        "status": status[:20],
                    },
                    "link": QUEUE_LINK,
                    "dedupe_key": f"{key}:{s.id}",
                    "next_attempt_at": send_at,
                }
            )
        setattr(r, "reminded_at" if step == "remind" else "escalated_at", now)
        session.add(r)
    await queue_many(session, messages, now=now)
    return len(rows)


async def call_deadlines(
    *, sessions: Sessions, now: datetime, waking: WakingHours = DEFAULT_WAKING, batch: int = 500
) -> int:
    """Remind before, escalate after the deadline of every open call (both kinds). Returns the steps taken."""

    async def work(session: AsyncSession) -> int:
        policy = await policy_for(session, "any", CALL_STAGE)
        lead = policy.lead if policy is not None else timedelta(hours=4)
        done = 0
        for remind, escalate in (
            (
                await _due(session, CallTask, mark="reminded_at", before=now + lead, batch=batch),
                await _due(session, CallTask, mark="escalated_at", before=now, batch=batch),
            ),
            (
                await _due(session, CallBack, mark="reminded_at", before=now + lead, batch=batch),
                await _due(session, CallBack, mark="escalated_at", before=now, batch=batch),
            ),
        ):
            done += await _ladder_step(session, rows=remind, step="remind", now=now, waking=waking)
            done += await _ladder_step(session, rows=escalate, step="escalate", now=now, waking=waking)
        return done

    return await guarded_sweep("call queue deadline sweep", sessions, work)
