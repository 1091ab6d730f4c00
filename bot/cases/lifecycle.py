"""The case lifecycle: one explicit state machine for micro-wishes and micro-projects.

Every change of status goes through `transition()`, which checks the table below and the actor's role,
moves the case with a conditional UPDATE (two concurrent requests can never both succeed), writes the timeline
event, and then performs the move's side effects itself, explicitly and in the caller's transaction: the deadline
clock restarts (`bot.deadlines.sla.restart_clock`), offers end when the case does (`withdraw_offers`: volunteers lose
access on cancellation, rejection, merging, completion and closing), the survey starts on completion
(`bot.cases.survey_send.start_survey`), and the resident's progress message goes into the outbox.

Reopening: `reopen` moves a completed or closed case to `reopened`, a holding state that keeps its owner and
shows up in the queue. From there `resume` sends it back to `in_progress` (the same unit or donor finishes the
work), or `release` returns it to `accepted` so that someone else claims it and starts again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases import throttle
from bot.cases.actors import ALL_STAFF, CITY_ROLES, SUPERVISORS, TOWN_WORKERS, Actor
from bot.cases.actors import ROLE_LABEL as ROLE_LABEL  # re-exported for the views
from bot.cases.actors import ROLES as ROLES  # re-exported for bot.cases.access
from bot.cases.numbering import CHANNELS, KIND_LABEL, create_case
from bot.cases.survey_send import start_survey
from bot.cases.timeline import record_event
from bot.deadlines import sla
from bot.delivery.links import sign_link
from bot.delivery.outbox import enqueue
from bot.models import Case, CaseEvent, Offer, Resident, Resource, Staff
from reference.towns import TOWNS

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ states
STATE_LABEL: dict[str, str] = {
    "submitted": "已提交",
    "verified": "社区已核实",
    "accepted": "已受理",
    "rejected": "不予受理",
    "claimed": "已认领",
    "matching": "对接爱心资源中",
    "dispatched": "已派单",
    "in_progress": "办理中",
    "completed": "已办结",
    "closed": "已归档",
    "cancelled": "已撤销",
    "reopened": "已重新打开",
    "merged": "已合并",
}
TERMINAL = frozenset({"rejected", "closed", "cancelled", "merged"})
#: the case ended without the help being given: every open offer is withdrawn
CASE_ENDED_UNDONE = frozenset({"rejected", "cancelled", "merged"})
#: entering these ends the volunteers' part (offers withdrawn or finished)
OFFERS_END = TERMINAL | {"completed"}
#: offers through which a volunteer can still see or act on the case
OFFER_OPEN = ("offered", "accepted", "delivered")
OPEN_STATES = frozenset(STATE_LABEL) - TERMINAL - {"completed"}
#: states in which a case has (or may have) an owner doing the work
OWNED_STATES = frozenset({"claimed", "matching", "dispatched", "in_progress", "reopened"})

ACTION_LABEL: dict[str, str] = {
    "verify": "核实",
    "accept": "受理",
    "reject": "不予受理",
    "claim": "认领",
    "assign": "指派",
    "release": "释放",
    "match": "对接爱心资源",
    "dispatch": "派单",
    "start": "开始办理",
    "complete": "办结",
    "close": "归档",
    "cancel": "撤销",
    "reopen": "重新打开",
    "resume": "继续办理",
    "merge": "合并",
}


@dataclass(frozen=True, slots=True)
class Rule:
    to: str
    roles: frozenset[str]  # staff roles; "resident", "system", "volunteer" for the other actor types
    reason: bool = False  # a human decides: a reason is required
    message: str | None = None  # what the resident hears ({case_no}, {note}, {kind}); None = internal step
    kinds: frozenset[str] = frozenset({"micro_wish", "micro_project"})
    owner_only: bool = False  # only the owner (or a supervisor) may do it on a claimed case


_STAFF_WORK = TOWN_WORKERS | CITY_ROLES
_MSG_CLAIMED = "您的{kind}诉求（编号{case_no}）已有工作人员专门负责跟进，请耐心等待。"
_MSG_STARTED_BY_TOWN = "您的微心愿（编号{case_no}）由镇街工作人员安排办理，正在办理中。"
#: offer statuses that mean a donor said yes
DONOR_SAID_YES = ("accepted", "delivered", "done")

TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("submitted", "verify"): Rule(
        "verified",
        frozenset({"community_worker"}) | TOWN_WORKERS,
        message="您的{kind}诉求（编号{case_no}）已经社区核实，正在等待镇街审核。",
    ),
    ("verified", "accept"): Rule(
        "accepted", TOWN_WORKERS, message="您的{kind}诉求（编号{case_no}）已受理，我们会尽快安排。"
    ),
    ("submitted", "reject"): Rule(
        "rejected",
        TOWN_WORKERS,
        reason=True,
        message="很抱歉，您的{kind}诉求（编号{case_no}）暂不能受理，原因：{note}。如有疑问可拨打12345咨询。",
    ),
    ("verified", "reject"): Rule(
        "rejected",
        TOWN_WORKERS,
        reason=True,
        message="很抱歉，您的{kind}诉求（编号{case_no}）暂不能受理，原因：{note}。如有疑问可拨打12345咨询。",
    ),
    ("accepted", "claim"): Rule("claimed", TOWN_WORKERS, message=_MSG_CLAIMED),
    ("accepted", "assign"): Rule("claimed", SUPERVISORS, message=_MSG_CLAIMED),
    ("claimed", "release"): Rule("accepted", TOWN_WORKERS | CITY_ROLES, owner_only=True),
    ("reopened", "release"): Rule("accepted", TOWN_WORKERS | CITY_ROLES, owner_only=True),
    ("claimed", "match"): Rule(
        "matching",
        _STAFF_WORK | {"system"},
        owner_only=True,
        kinds=frozenset({"micro_wish"}),
        message="您的微心愿（编号{case_no}）正在为您联系爱心企业和志愿者，有进展会第一时间告诉您。",
    ),
    ("claimed", "dispatch"): Rule(
        "dispatched",
        _STAFF_WORK,
        owner_only=True,
        kinds=frozenset({"micro_project"}),
        message="您反映的微实事（编号{case_no}）已派给责任单位处理。",
    ),
    ("matching", "start"): Rule(
        "in_progress",
        _STAFF_WORK | {"system", "volunteer"},
        owner_only=True,
        message="好消息！您的微心愿（编号{case_no}）已有爱心人士认领，正在办理中。",
    ),
    ("dispatched", "start"): Rule(
        "in_progress",
        _STAFF_WORK | {"system"},
        owner_only=True,
        message="您反映的微实事（编号{case_no}）责任单位已开始办理。",
    ),
    ("in_progress", "complete"): Rule(
        "completed",
        _STAFF_WORK | {"volunteer"},
        reason=True,
        owner_only=True,
        message="您的{kind}诉求（编号{case_no}）已办结：{note}。稍后请您为这次服务打个分。",
    ),
    ("completed", "close"): Rule("closed", SUPERVISORS | {"town_staff", "system"}),
    ("completed", "reopen"): Rule(
        "reopened",
        _STAFF_WORK | {"system"},
        reason=True,
        message="您的{kind}诉求（编号{case_no}）已重新打开继续处理，原因：{note}。",
    ),
    ("closed", "reopen"): Rule(
        "reopened",
        SUPERVISORS | {"system"},
        reason=True,
        message="您的{kind}诉求（编号{case_no}）已重新打开继续处理，原因：{note}。",
    ),
    ("reopened", "resume"): Rule("in_progress", _STAFF_WORK, owner_only=True),
}
_CANCELLABLE = (
    "submitted",
    "verified",
    "accepted",
    "claimed",
    "matching",
    "dispatched",
    "in_progress",
    "reopened",
)
for _state in _CANCELLABLE:
    TRANSITIONS[(_state, "cancel")] = Rule(
        "cancelled",
        TOWN_WORKERS | {"resident"},
        reason=True,
        message="您的{kind}诉求（编号{case_no}）已撤销。{note_line}",
    )
    TRANSITIONS[(_state, "merge")] = Rule(
        "merged",
        TOWN_WORKERS | CITY_ROLES,
        reason=True,
        message="您的{kind}诉求（编号{case_no}）与同类诉求合并处理，{note}。",
    )

#: actions that `transition()` refuses because they need their own function (extra data)
SPECIAL_ACTIONS = frozenset({"merge", "assign"})


# ------------------------------------------------------------------ actors and errors
class LifecycleError(Exception):
    """A domain error with a message staff or residents can read."""


class TransitionError(LifecycleError):
    pass


class ClaimConflict(LifecycleError):
    def __init__(self, owner_id: int | None, owner_name: str) -> None:
        super().__init__(f"该诉求已由{owner_name}认领")
        self.owner_id = owner_id
        self.owner_name = owner_name


class BindError(LifecycleError):
    pass


# ------------------------------------------------------------------ queries about the table
def allowed_actions(case: Case, actor: Actor) -> list[str]:
    """The transitions this actor may perform on this case now (for the buttons on the case page)."""
    out: list[str] = []
    for (state, action), rule in TRANSITIONS.items():
        if state != case.status:
            continue
        if _refusal(case, actor, action, rule) is None:
            out.append(action)
    return out


def in_jurisdiction(case: Case, actor: Actor) -> bool:
    if actor.type in ("system", "volunteer"):
        return True
    if actor.type == "resident":
        return case.resident_id is not None and case.resident_id == actor.id
    if actor.role in CITY_ROLES:
        return True
    if actor.town != case.town:
        return False
    if actor.role == "community_worker":
        return bool(actor.community) and actor.community == case.community
    return True


def _refusal(case: Case, actor: Actor, action: str, rule: Rule) -> str | None:
    if actor.role_key not in rule.roles:
        return f"您的身份不能对诉求执行「{ACTION_LABEL.get(action, action)}」"
    if case.kind not in rule.kinds:
        return f"{KIND_LABEL.get(case.kind, case.kind)}不能执行「{ACTION_LABEL.get(action, action)}」"
    if not in_jurisdiction(case, actor):
        return "这不是您辖区的诉求"
    if (
        rule.owner_only
        and actor.type == "staff"
        and case.claimed_by_id is not None
        and case.claimed_by_id != actor.id
        and actor.role not in SUPERVISORS
    ):
        return "该诉求由其他工作人员负责，只有负责人或镇街负责人可以操作"
    return None


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
        earlier = await _event_for_request(session, case_id=case.id, request_key=request_key)
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
    refusal = _refusal(case, actor, action, rule)
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
    if rule.to == "completed":
        values["completed_at"] = now
    if rule.to in ("closed", "cancelled", "rejected", "merged"):
        values["closed_at"] = now
    if rule.to == "reopened":
        values["completed_at"] = None
        values["closed_at"] = None
    if rule.to in TERMINAL or rule.to == "completed":
        values["awaiting_resident"] = False
    values.update(_set or {})
    result = await session.exec(  # type: ignore[call-overload]
        update(Case).where(*conditions).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await session.refresh(case)
        if action == "claim" and case.claimed_by_id is not None:
            raise ClaimConflict(case.claimed_by_id, await _staff_name(session, case.claimed_by_id))
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
        kind="transition",
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
        if (from_status, action) == ("matching", "start") and not await _donor_accepted(session, case=case):
            template = _MSG_STARTED_BY_TOWN  # no donor said yes: the town does it, and says so
        text = template.format(
            case_no=case.case_no,
            kind=KIND_LABEL.get(case.kind, ""),
            note=note.rstrip("。"),
            note_line=f"说明：{note}" if note and actor.type != "resident" else "如需帮助可随时再找我们。",
        )
        await notify_resident(
            session, case=case, text=text, dedupe_key=f"case:{case.id}:ev:{request_key or event.id}"
        )
    # the side effects of the move, each called here explicitly (no lower module reaches up to the case)
    await sla.restart_clock(session, case=case, from_status=from_status, to_status=rule.to, now=now)
    if rule.to in OFFERS_END:
        await withdraw_offers(session, case=case, to_status=rule.to, now=now)
    if rule.to == "completed":
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
    withdrawn = await session.exec(  # type: ignore[call-overload]
        update(Offer)
        .where(
            col(Offer.case_id) == case.id,
            col(Offer.status).in_(OFFER_OPEN if to_status in CASE_ENDED_UNDONE else ("offered",)),
        )
        .values(status="withdrawn", answered_at=func.coalesce(col(Offer.answered_at), now))
        .execution_options(synchronize_session=False)
    )
    changed = int(withdrawn.rowcount or 0)
    if to_status not in CASE_ENDED_UNDONE:
        finished = await session.exec(  # type: ignore[call-overload]
            update(Offer)
            .where(col(Offer.case_id) == case.id, col(Offer.status).in_(("accepted", "delivered")))
            .values(status="done", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        changed += int(finished.rowcount or 0)
    if changed:
        log.info("case %s: %d offer(s) ended on %s", case.case_no, changed, to_status)
    for offer_id, status, openid in to_tell:  # volunteers hear that the case ended (issue 11)
        text, label = _offer_end_text(case, to_status, helping=status in ("accepted", "delivered"))
        await enqueue(
            session,
            openid=openid,
            recipient_type="volunteer",
            kind="offer",
            case_id=case.id,
            text=text,
            template={"case_no": case.case_no[:20], "status": label},
            dedupe_key=f"offer-ended:{offer_id}:{to_status}",
        )
    return changed


def _offer_end_text(case: Case, to_status: str, *, helping: bool) -> tuple[str, str]:
    """What a volunteer hears when a case they were invited to or helping with ends: (text, short status)."""
    if not helping:
        return f"微心愿{case.case_no}的邀请已结束，无需再答复，感谢您的关注。", "邀请已结束"
    if to_status in ("completed", "closed"):
        return f"微心愿{case.case_no}已办结，无需再跟进。感谢您的帮助！", "已办结"
    if to_status == "merged":
        return f"微心愿{case.case_no}已与其他诉求合并处理，无需再送达或联系居民，感谢您的热心。", "已合并处理"
    return f"微心愿{case.case_no}已撤销，无需再送达或联系居民，感谢您的热心。", "已撤销"


async def notify_resident(session: AsyncSession, *, case: Case, text: str, dedupe_key: str) -> bool:
    """Queue a progress message to the case's resident (nothing when no WeChat user is bound)."""
    if case.resident_id is None:
        return False
    resident = await session.get(Resident, case.resident_id)
    if resident is None or not resident.subscribed:
        return False
    return await enqueue(
        session,
        openid=resident.openid,
        kind="progress",
        text=text,
        case_id=case.id,
        dedupe_key=dedupe_key,
        template={"case_no": case.case_no[:20], "status": STATE_LABEL.get(case.status, case.status)[:20]},
    )


async def _event_for_request(
    session: AsyncSession, *, case_id: int | None, request_key: str
) -> CaseEvent | None:
    rows = await session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id).desc()).limit(30)
    )
    for event in rows:
        if event.data.get("request_key") == request_key:
            return event
    return None


async def _staff_name(session: AsyncSession, staff_id: int | None) -> str:
    staff = await session.get(Staff, staff_id) if staff_id is not None else None
    return (staff.display_name or staff.username) if staff else "其他工作人员"


def _event(
    session: AsyncSession,
    case: Case,
    actor: Actor,
    *,
    kind: str,
    now: datetime,
    note: str = "",
    **data: object,
) -> CaseEvent:
    return record_event(session, case=case, kind=kind, actor=actor, at=now, note=note, data=data)


def _require_staff(case: Case, actor: Actor, roles: frozenset[str], what: str) -> None:
    if actor.type != "staff" or actor.role not in roles:
        raise TransitionError(f"您的身份不能{what}")
    if not in_jurisdiction(case, actor):
        raise TransitionError("这不是您辖区的诉求")


# ------------------------------------------------------------------ claim, release, reassign
async def claim(
    session: AsyncSession, *, case: Case, actor: Actor, now: datetime, request_key: str | None = None
) -> CaseEvent:
    """Atomic: of two concurrent claims exactly one wins; the other raises ClaimConflict naming the owner."""
    if case.status == "claimed" and case.claimed_by_id is not None:
        if case.claimed_by_id == actor.id:
            raise TransitionError("您已经认领了这件诉求")
        raise ClaimConflict(case.claimed_by_id, await _staff_name(session, case.claimed_by_id))
    return await transition(
        session, case=case, action="claim", actor=actor, note=None, now=now, request_key=request_key
    )


async def release(
    session: AsyncSession,
    *,
    case: Case,
    actor: Actor,
    now: datetime,
    note: str | None = None,
    request_key: str | None = None,
) -> CaseEvent:
    return await transition(
        session, case=case, action="release", actor=actor, note=note, now=now, request_key=request_key
    )


async def reassign(
    session: AsyncSession,
    *,
    case: Case,
    actor: Actor,
    to_staff: Staff,
    note: str | None,
    now: datetime,
    request_key: str | None = None,
) -> CaseEvent:
    """A supervisor gives the case to another staff member of its town."""
    _require_staff(case, actor, SUPERVISORS, "指派诉求")
    if not to_staff.active or to_staff.role not in TOWN_WORKERS or to_staff.town != case.town:
        raise TransitionError("只能指派给本镇街在岗的工作人员")
    name = to_staff.display_name or to_staff.username
    if case.status == "accepted":
        return await transition(
            session,
            case=case,
            action="assign",
            actor=actor,
            note=note or f"指派给{name}",
            now=now,
            request_key=request_key,
            data={"to_staff_id": to_staff.id},
            _set={"claimed_by_id": to_staff.id},
        )
    if case.status not in OWNED_STATES:
        raise TransitionError(f"诉求当前状态为「{STATE_LABEL.get(case.status, case.status)}」，不能指派")
    if request_key and (
        earlier := await _event_for_request(session, case_id=case.id, request_key=request_key)
    ):
        return earlier
    old = case.claimed_by_id
    result = await session.exec(  # type: ignore[call-overload]
        update(Case)
        .where(col(Case.id) == case.id, col(Case.status) == case.status)
        .values(claimed_by_id=to_staff.id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise TransitionError("诉求状态刚刚被他人更改，请刷新页面后再试")
    set_committed_value(case, "claimed_by_id", to_staff.id)
    set_committed_value(case, "updated_at", now)
    extra = {"request_key": request_key} if request_key else {}
    event = _event(
        session,
        case,
        actor,
        kind="reassign",
        now=now,
        note=note or f"改派给{name}",
        from_staff_id=old,
        to_staff_id=to_staff.id,
        **extra,
    )
    await session.flush()
    return event


# ------------------------------------------------------------------ edits, notes, questions
async def edit_case(
    session: AsyncSession,
    *,
    case: Case,
    actor: Actor,
    now: datetime,
    category: str | None = None,
    town: str | None = None,
    community: str | None = None,
) -> list[CaseEvent]:
    """Change category, town or community; every change is a timeline event. Moving a case to another
    town is a transfer: only before anyone has claimed it."""
    _require_staff(case, actor, TOWN_WORKERS | CITY_ROLES, "修改诉求")
    if case.status in TERMINAL:
        raise TransitionError("已结束的诉求不能修改")
    events: list[CaseEvent] = []
    changes: list[tuple[str, str | None]] = []
    if category is not None and category.strip() and category.strip() != case.category:
        changes.append(("category", category.strip()))
    if community is not None and (community.strip() or None) != case.community:
        changes.append(("community", community.strip() or None))
    if town is not None and town.strip() and town.strip() != case.town:
        town = town.strip()
        if town not in {t.name for t in TOWNS}:
            raise TransitionError("请选择正确的镇街")
        if case.claimed_by_id is not None or case.status in OWNED_STATES:
            raise TransitionError("已认领的诉求需先释放，才能转给其他镇街")
        changes.append(("town", town))
    labels = {"category": "类别", "town": "镇街", "community": "村（社区）"}
    for name, new in changes:
        old = getattr(case, name)
        setattr(case, name, new)
        ev = _event(
            session,
            case,
            actor,
            kind="edit",
            now=now,
            note=f"{labels[name]}：{old or '未填'} → {new or '未填'}",
            field=name,
            old=old,
            new=new,
        )
        events.append(ev)
    if events:
        if case.needs_triage and any(n == "category" for n, _ in changes):
            case.needs_triage = False
        case.updated_at = now
        await session.flush()
    return events


async def add_note(session: AsyncSession, *, case: Case, actor: Actor, note: str, now: datetime) -> CaseEvent:
    """An internal note on the timeline (the resident hears nothing)."""
    if not note.strip():
        raise TransitionError("备注不能为空")
    if not in_jurisdiction(case, actor):
        raise TransitionError("这不是您辖区的诉求")
    event = _event(session, case, actor, kind="note", now=now, note=note.strip())
    await session.flush()
    return event


async def ask_resident(
    session: AsyncSession,
    *,
    case: Case,
    actor: Actor,
    question: str,
    now: datetime,
    request_key: str | None = None,
) -> CaseEvent:
    """Send the resident a question in WeChat; their next message becomes an 'answer' event on this case."""
    _require_staff(case, actor, ALL_STAFF, "向居民提问")
    question = question.strip()
    if not question:
        raise TransitionError("请填写要问居民的问题")
    if case.status in TERMINAL:
        raise TransitionError("已结束的诉求不能再提问")
    if case.resident_id is None:
        raise TransitionError("该诉求没有绑定微信用户，请电话联系居民")
    if request_key and (
        earlier := await _event_for_request(session, case_id=case.id, request_key=request_key)
    ):
        return earlier
    extra = {"request_key": request_key} if request_key else {}
    event = _event(session, case, actor, kind="question", now=now, note=question, **extra)
    case.awaiting_resident = True
    await sla.pause_clock(
        session, case=case, now=now
    )  # waiting for the resident does not count against staff
    case.updated_at = now
    await session.flush()
    text = f"关于您的{KIND_LABEL.get(case.kind, '')}诉求（编号{case.case_no}），工作人员想向您了解：{question}\n请直接回复这条消息。"
    await notify_resident(
        session, case=case, text=text, dedupe_key=f"case:{case.id}:ask:{request_key or event.id}"
    )
    return event


async def record_resident_answer(session: AsyncSession, *, case: Case, text: str, now: datetime) -> CaseEvent:
    """The dialogue calls this when a resident with an open question writes again."""
    resident = await session.get(Resident, case.resident_id) if case.resident_id else None
    event = record_event(
        session,
        case=case,
        kind="answer",
        actor=Actor("resident", resident.id if resident else None, "居民"),
        at=now,
        note=text.strip(),
    )
    case.awaiting_resident = False
    await sla.resume_clock(session, case=case, now=now)  # the deadline moves by the paused time
    case.updated_at = now
    await session.flush()
    return event


# ------------------------------------------------------------------ complete, merge, cancel by resident
async def complete(
    session: AsyncSession,
    *,
    case: Case,
    actor: Actor,
    note: str,
    now: datetime,
    photos: Sequence[str] = (),
    request_key: str | None = None,
) -> CaseEvent:
    clean = [p.strip() for p in photos if p and p.strip()]
    bad = [p for p in clean if not p.startswith(("https://", "http://", "/"))]
    if bad:
        raise TransitionError("照片地址应以 http:// 或 https:// 开头")
    return await transition(
        session,
        case=case,
        action="complete",
        actor=actor,
        note=note,
        now=now,
        request_key=request_key,
        data={"photos": clean[:9]} if clean else None,
    )


async def merge_case(
    session: AsyncSession,
    *,
    case: Case,
    into: Case,
    actor: Actor,
    note: str | None,
    now: datetime,
    request_key: str | None = None,
) -> CaseEvent:
    """Close `case` as a duplicate of `into` (same town, still open)."""
    if into.id == case.id:
        raise TransitionError("不能合并到自己")
    if into.status in TERMINAL:
        raise TransitionError(f"目标诉求{into.case_no}已结束，不能合并进去")
    if into.town != case.town or not in_jurisdiction(into, actor):
        raise TransitionError("只能合并到同一镇街的诉求")
    reason = (note or "").strip() or "重复诉求"
    if request_key and (
        earlier := await _event_for_request(session, case_id=case.id, request_key=request_key)
    ):
        return earlier
    event = await transition(
        session,
        case=case,
        action="merge",
        actor=actor,
        note=f"合并到{into.case_no}（{reason}）",
        now=now,
        request_key=request_key,
        data={"into": into.case_no},
        _set={"merged_into_id": into.id},
    )
    _event(
        session, into, actor, kind="note", now=now, note=f"合并了重复诉求{case.case_no}", merged=case.case_no
    )
    await session.flush()
    return event


async def cancel_by_resident(
    session: AsyncSession, *, case: Case, resident_id: int, reason: str | None, now: datetime
) -> CaseEvent:
    if case.resident_id != resident_id:
        raise TransitionError("只能撤销您本人提交的诉求")
    actor = Actor("resident", resident_id, "居民")
    return await transition(
        session,
        case=case,
        action="cancel",
        actor=actor,
        note=(reason or "").strip() or "居民主动撤销",
        now=now,
    )


# ------------------------------------------------------------------ the resident's own view
RESIDENT_LINK_KIND = "my_cases"


def my_cases_url(*, base_url: str, link_secret: str, resident_id: int, ttl: int = 7 * 86400) -> str:
    """A signed link to the resident's own cases and timelines (`/my/cases?t=...`), e.g. for a progress reply."""
    token = sign_link(link_secret, RESIDENT_LINK_KIND, resident_id, ttl=ttl)
    return f"{base_url.rstrip('/')}/my/cases?t={token}"


#: timeline events a resident sees (internal notes, edits and reassignments stay with staff)
RESIDENT_VISIBLE_EVENTS = frozenset({"transition", "question", "answer"})
RESIDENT_VISIBLE_NOTES = frozenset({"rejected", "completed", "cancelled", "reopened", "merged"})


# ------------------------------------------------------------------ cases from the hotline and windows
@dataclass(slots=True)
class StaffCaseInput:
    kind: str
    description: str
    town: str
    channel: str = "hotline_12345"
    community: str | None = None
    address: str | None = None
    beneficiary: str | None = None
    contact_phone: str | None = None
    category: str | None = None
    item: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


async def create_staff_case(
    session: AsyncSession, *, actor: Actor, data: StaffCaseInput, now: datetime
) -> Case:
    """A case a staff member records for a 12345-hotline or service-window resident. The case carries a short
    bind code the resident can send in WeChat to follow it there."""
    if actor.type != "staff" or actor.role not in TOWN_WORKERS | {"community_worker"} | CITY_ROLES:
        raise TransitionError("您的身份不能代录诉求")
    if data.kind not in KIND_LABEL:
        raise TransitionError("请选择诉求类型")
    if data.channel not in CHANNELS or data.channel == "wechat":
        raise TransitionError("请选择来源渠道")
    if not data.description.strip():
        raise TransitionError("请填写诉求内容")
    if data.town not in {t.name for t in TOWNS}:
        raise TransitionError("请选择正确的镇街")
    if not actor.city_wide and data.town != actor.town:
        raise TransitionError("只能为本镇街的居民代录诉求")
    community = data.community
    if actor.role == "community_worker":
        community = actor.community
    return await create_case(
        session,
        kind=data.kind,
        description=data.description.strip(),
        town=data.town,
        resident_id=None,
        channel=data.channel,
        community=(community or None),
        address=data.address or None,
        beneficiary=data.beneficiary or None,
        contact_phone=data.contact_phone or None,
        category=data.category or None,
        item=data.item or None,
        actor_type="staff",
        actor_id=actor.id,
        actor_name=actor.name,
        now=now,
    )


#: a hotline case's binding code works this long after the case was recorded
HOTLINE_BIND_TTL = timedelta(days=30)


async def bind_case(
    session: AsyncSession, *, code: str, resident: Resident, now: datetime | None = None
) -> Case:
    """A resident sends the short code printed for them by staff: the case becomes theirs in WeChat."""
    from bot.models import utcnow

    now = now or utcnow()
    code = code.strip().upper()
    if not code:
        raise BindError("请发送工作人员给您的绑定码")
    # counted on the server per resident before the code is looked up; the caller keeps the attempt row
    by_resident = throttle.key_of("case_bind", resident.id)
    row, over = await throttle.attempt(session, limit=throttle.CASE_BIND, key=by_resident, now=now)
    if over:
        raise BindError("绑定码输错次数过多，请1小时后再试，或致电12345")
    case = (await session.exec(select(Case).where(Case.bind_code == code))).first()
    if case is None or case.resident_id is not None:
        raise BindError("绑定码不正确或已使用，请核对后再发")
    if case.created_at + HOTLINE_BIND_TTL < now:
        raise BindError("绑定码已过期，请致电12345或联系工作人员重新登记")
    await throttle.succeeded(session, row, forget=(throttle.CASE_BIND, by_resident))
    result = await session.exec(  # type: ignore[call-overload]
        update(Case)
        .where(col(Case.id) == case.id, col(Case.resident_id).is_(None))
        .values(resident_id=resident.id, bind_code=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise BindError("绑定码不正确或已使用，请核对后再发")
    set_committed_value(case, "resident_id", resident.id)
    set_committed_value(case, "bind_code", None)
    _event(
        session,
        case,
        Actor("resident", resident.id, "居民"),
        kind="note",
        now=now,
        note="居民在微信中绑定了诉求",
    )
    await session.flush()
    # no progress message here: the chat reply that carried the code is the one confirmation the resident gets
    return case
