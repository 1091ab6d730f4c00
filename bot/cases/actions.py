"""The actions on a case that staff, residents and volunteers take: claim, release, reassign, edit, notes,
questions to the resident and their answers, completion, merging, cancelling, cases recorded from the hotline and
windows with their binding codes, and the resident's signed link. Each either calls ``transition()`` or writes its
timeline event through ``bot.cases.timeline``.

Reopening: ``reopen`` moves a completed or closed case to ``reopened``, a holding state that keeps its owner and
shows up in the queue. From there ``resume`` sends it back to ``in_progress`` (the same unit or donor finishes the
work), or ``release`` returns it to ``accepted`` so that someone else claims it and starts again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases import throttle
from bot.cases.actors import ALL_STAFF, CITY_ROLES, SUPERVISORS, TOWN_WORKERS, Actor
from bot.cases.communities import resolve
from bot.cases.numbering import CHANNELS, KIND_LABEL, create_case
from bot.cases.table import (
    OWNED_STATES,
    STATE_LABEL,
    TERMINAL,
    BindError,
    ClaimConflict,
    TransitionError,
    in_jurisdiction,
)
from bot.cases.timeline import record_event
from bot.cases.transition import event_for_request, notify_resident, staff_name, transition
from bot.deadlines import sla
from bot.delivery.links import sign_link
from bot.models import Case, CaseEvent, Community, Resident, Staff
from bot.states import ActorType, CaseChannel, CaseStatus, EventKind, Role
from reference.towns import TOWNS


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
    if actor.type != ActorType.STAFF or actor.role not in roles:
        raise TransitionError(f"您的身份不能{what}")
    if not in_jurisdiction(case, actor):
        raise TransitionError("这不是您辖区的诉求")


# ------------------------------------------------------------------ claim, release, reassign
async def claim(
    session: AsyncSession, *, case: Case, actor: Actor, now: datetime, request_key: str | None = None
) -> CaseEvent:
    """Atomic: of two concurrent claims exactly one wins; the other raises ClaimConflict naming the owner."""
    if case.status == CaseStatus.CLAIMED and case.claimed_by_id is not None:
        if case.claimed_by_id == actor.id:
            raise TransitionError("您已经认领了这件诉求")
        raise ClaimConflict(case.claimed_by_id, await staff_name(session, case.claimed_by_id))
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
    if case.status == CaseStatus.ACCEPTED:
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
        earlier := await event_for_request(session, case_id=case.id, request_key=request_key)
    ):
        return earlier
    old = case.claimed_by_id
    result = await session.exec(
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
        kind=EventKind.REASSIGN,
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
    new_town = (town or "").strip() or case.town
    if community is not None and (community.strip() != (case.community or "") or new_town != case.town):
        # picked from the town's list; a transfer to another town without a new pick clears it
        keep = community.strip() != (case.community or "")
        row = await _registry_community(session, town=new_town, name=community) if keep else None
        if (row.id if row else None) != case.community_id or (row is None and case.community):
            changes.append(("community", row.name if row else None))
            case.community_id = row.id if row else None
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
            kind=EventKind.EDIT,
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
    event = _event(session, case, actor, kind=EventKind.NOTE, now=now, note=note.strip())
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
        earlier := await event_for_request(session, case_id=case.id, request_key=request_key)
    ):
        return earlier
    extra = {"request_key": request_key} if request_key else {}
    event = _event(session, case, actor, kind=EventKind.QUESTION, now=now, note=question, **extra)
    case.awaiting_resident = True
    await sla.pause_clock(
        session, case=case, now=now
    )  # waiting for the resident does not count against staff
    case.updated_at = now
    await session.flush()
    text = f"关于您的{KIND_LABEL.get(case.kind, '')}诉求（编号{case.case_no}），工作人员想向您了解：{question}\n请直接回复这条消息。"
    await notify_resident(
        session,
        case=case,
        text=text,
        dedupe_key=f"case:{case.id}:ask:{request_key or event.id}",
        now=now,
    )
    return event


async def record_resident_answer(session: AsyncSession, *, case: Case, text: str, now: datetime) -> CaseEvent:
    """The dialogue calls this when a resident with an open question writes again."""
    resident = await session.get(Resident, case.resident_id) if case.resident_id else None
    event = record_event(
        session,
        case=case,
        kind=EventKind.ANSWER,
        actor=Actor(ActorType.RESIDENT, resident.id if resident else None, "居民"),
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
        earlier := await event_for_request(session, case_id=case.id, request_key=request_key)
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
        session,
        into,
        actor,
        kind=EventKind.NOTE,
        now=now,
        note=f"合并了重复诉求{case.case_no}",
        merged=case.case_no,
    )
    await session.flush()
    return event


async def cancel_by_resident(
    session: AsyncSession, *, case: Case, resident_id: int, reason: str | None, now: datetime
) -> CaseEvent:
    if case.resident_id != resident_id:
        raise TransitionError("只能撤销您本人提交的诉求")
    actor = Actor(ActorType.RESIDENT, resident_id, "居民")
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


def my_cases_url(
    *, base_url: str, link_secret: str, resident_id: int, now: datetime, ttl: int = 7 * 86400
) -> str:
    """A signed link to the resident's own cases and timelines (`/my/cases?t=...`), e.g. for a progress reply;
    it expires ``ttl`` after ``now`` (the app's clock, which the page checks it against)."""
    token = sign_link(link_secret, RESIDENT_LINK_KIND, resident_id, ttl=ttl, now=now.timestamp())
    return f"{base_url.rstrip('/')}/my/cases?t={token}"


#: timeline events a resident sees (internal notes, edits and reassignments stay with staff)
RESIDENT_VISIBLE_EVENTS = frozenset({EventKind.TRANSITION, EventKind.QUESTION, EventKind.ANSWER})
RESIDENT_VISIBLE_NOTES = frozenset(
    {CaseStatus.REJECTED, CaseStatus.COMPLETED, CaseStatus.CANCELLED, CaseStatus.REOPENED, CaseStatus.MERGED}
)


async def _registry_community(session: AsyncSession, *, town: str, name: str | None) -> Community | None:
    """The registry row staff picked by name from the town's list; "" or None: none; anything else is refused."""
    if not (name or "").strip():
        return None
    row = await resolve(session, town=town, name=name)
    if row is None or not row.active:
        raise TransitionError(f"请从{town}的村（社区）名单中选择（名单中没有“{(name or '').strip()[:32]}”）")
    return row


# ------------------------------------------------------------------ cases from the hotline and windows
@dataclass(slots=True)
class StaffCaseInput:
    kind: str
    description: str
    town: str
    channel: str = CaseChannel.HOTLINE_12345
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
    if actor.type != ActorType.STAFF or actor.role not in TOWN_WORKERS | {Role.COMMUNITY_WORKER} | CITY_ROLES:
        raise TransitionError("您的身份不能代录诉求")
    if data.kind not in KIND_LABEL:
        raise TransitionError("请选择诉求类型")
    if data.channel not in CHANNELS or data.channel in (CaseChannel.WECHAT, CaseChannel.QRCODE):
        raise TransitionError("请选择来源渠道")
    if not data.description.strip():
        raise TransitionError("请填写诉求内容")
    if data.town not in {t.name for t in TOWNS}:
        raise TransitionError("请选择正确的镇街")
    if not actor.city_wide and data.town != actor.town:
        raise TransitionError("只能为本镇街的居民代录诉求")
    community = data.community
    if actor.role == Role.COMMUNITY_WORKER:
        community = actor.community
    else:
        await _registry_community(session, town=data.town, name=community)  # refuses a name not on the list
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
        actor_type=ActorType.STAFF,
        actor_id=actor.id,
        actor_name=actor.name,
        now=now,
    )


#: a hotline case's binding code works this long after the case was recorded
HOTLINE_BIND_TTL = timedelta(days=30)


async def bind_case(session: AsyncSession, *, code: str, resident: Resident, now: datetime) -> Case:
    """A resident sends the short code printed for them by staff: the case becomes theirs in WeChat."""
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
    result = await session.exec(
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
        Actor(ActorType.RESIDENT, resident.id, "居民"),
        kind=EventKind.NOTE,
        now=now,
        note="居民在微信中绑定了诉求",
    )
    await session.flush()
    # no progress message here: the chat reply that carried the code is the one confirmation the resident gets
    return case
