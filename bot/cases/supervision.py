"""督办 (city supervision of a case): a city supervisor presses a case; the town must answer by a deadline of its
own (working days), or the press is escalated to the town's supervisors and the city.

Pressing and answering are written on the case's timeline (kind ``supervision``) and tell the people concerned
through the outbox in the same transaction: the town's staff, its supervisors and the case's owner when pressed;
the supervisor who pressed when answered; the town's supervisors and the city when escalated. ``escalate_due``
is a sweep: it selects due rows through an index and marks each once, so running it twice sends nothing twice."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import CITY_ROLES, TOWN_WORKERS, Actor
from bot.cases.table import LifecycleError
from bot.cases.timeline import record_event
from bot.deadlines.workdays import add_working_days
from bot.delivery.outbox import enqueue
from bot.models import Case, Staff, Supervision, TownSupervision
from bot.states import ActorType, EventKind, MessageKind, Role

#: the two kinds of press: of a case and of a whole town (same deadline and escalation columns)
T = TypeVar("T", Supervision, TownSupervision)

DEFAULT_DAYS = 3
MAX_DAYS = 20


class SupervisionError(LifecycleError):
    """A press or an answer that cannot be recorded, with a message staff can read."""


async def supervisions_of(session: AsyncSession, *, case_id: int | None) -> list[Supervision]:
    rows = await session.exec(
        select(Supervision).where(Supervision.case_id == case_id).order_by(col(Supervision.id))
    )
    return list(rows.all())


async def notify_staff(
    session: AsyncSession,
    *,
    people: list[Staff],
    text: str,
    key: str,
    link: str,
    subject: str,
    now: datetime,
    case_id: int | None = None,
    kind: str = MessageKind.ALERT,
) -> int:
    """Tell each active, bound person once (deduplicated per person by ``key``) about a press of a case or a town."""
    sent = 0
    for person in {p.id: p for p in people}.values():
        if person.openid and person.active:
            sent += await enqueue(
                session,
                openid=person.openid,
                kind=kind,
                text=text,
                recipient_type=ActorType.STAFF,
                case_id=case_id,
                link=link,
                dedupe_key=f"{key}:{person.id}",
                template={"case_no": subject[:20], "status": "督办"},
                now=now,
            )
    return sent


async def _tell_staff(
    session: AsyncSession,
    *,
    people: list[Staff],
    case: Case,
    text: str,
    key: str,
    now: datetime,
    kind: str = MessageKind.ALERT,
) -> int:
    return await notify_staff(
        session,
        now=now,
        people=people,
        text=text,
        key=key,
        link=f"/staff/cases/{case.case_no}",
        subject=case.case_no,
        case_id=case.id,
        kind=kind,
    )


async def town_people(session: AsyncSession, *, town: str, roles: tuple[str, ...]) -> list[Staff]:
    rows = await session.exec(
        select(Staff).where(Staff.town == town, col(Staff.role).in_(roles), Staff.active == True)  # noqa: E712
    )
    return list(rows.all())


async def escalation_people(session: AsyncSession, *, town: str, pressed_by_id: int | None) -> list[Staff]:
    """Whom an overdue press goes up to: the town's supervisors, the city's supervisors and whoever pressed."""
    people = await town_people(session, town=town, roles=(Role.TOWN_SUPERVISOR,))
    others = await session.exec(
        select(Staff).where(sa.or_(col(Staff.role) == Role.CITY_SUPERVISOR, col(Staff.id) == pressed_by_id))
    )
    return people + list(others.all())


async def claim_overdue(session: AsyncSession, table: type[T], *, now: datetime, batch: int) -> list[T]:
    """Unanswered presses (of cases or towns) past their deadline and not escalated yet, each marked escalated by
    a conditional UPDATE so that two workers never escalate the same one."""
    due = (
        await session.exec(
            select(table)
            .where(
                col(table.answered_at).is_(None),
                col(table.escalated_at).is_(None),
                col(table.due_at) <= now,
            )
            .order_by(col(table.due_at))
            .limit(batch)
        )
    ).all()
    claimed: list[T] = []
    for row in due:
        marked = await session.exec(
            update(table)
            .where(col(table.id) == row.id, col(table.escalated_at).is_(None))
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount == 1:  # else another worker took it
            claimed.append(row)
    return claimed


async def press(
    session: AsyncSession, *, case: Case, actor: Actor, request: str, days: int = DEFAULT_DAYS, now: datetime
) -> Supervision:
    """A city supervisor presses the case: the record, the timeline and the town told, with the answer's
    deadline ``days`` working days from now."""
    if actor.type != ActorType.STAFF or actor.role not in CITY_ROLES:
        raise SupervisionError("只有市级督办可以督办诉求")
    request = request.strip()
    if not request:
        raise SupervisionError("请写明督办要求")
    if len(request) > 500:
        raise SupervisionError("督办要求太长（最多500字）")
    if not 1 <= days <= MAX_DAYS:
        raise SupervisionError(f"答复时限须为1到{MAX_DAYS}个工作日")
    due = add_working_days(now, days)
    row = Supervision(
        case_id=case.id or 0,
        town=case.town,
        request=request,
        pressed_by_id=actor.id,
        due_at=due,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    record_event(
        session,
        case=case,
        kind=EventKind.SUPERVISION,
        actor=actor,
        at=now,
        note=f"市级督办：{request}",
        data={"supervision_id": row.id, "due": due.isoformat(), "step": "pressed"},
    )
    people = await town_people(session, town=case.town, roles=tuple(TOWN_WORKERS))
    if case.claimed_by_id is not None and (owner := await session.get(Staff, case.claimed_by_id)) is not None:
        people.append(owner)
    await _tell_staff(
        session,
        people=people,
        case=case,
        text=f"【督办】诉求{case.case_no}被市级督办：{request}。请在{days}个工作日内答复。",
        key=f"supervision:{row.id}:pressed",
        now=now,
    )
    await session.flush()
    return row


async def answer(
    session: AsyncSession, *, case: Case, supervision_id: int, actor: Actor, text: str, now: datetime
) -> Supervision:
    """The town answers the press: recorded on the row and the timeline, the supervisor who pressed is told."""
    row = await session.get(Supervision, supervision_id)
    if row is None or row.case_id != case.id:
        raise SupervisionError("没有这条督办")
    if row.answered_at is not None:
        raise SupervisionError("这条督办已经答复过了")
    if actor.type != ActorType.STAFF or not (actor.role in TOWN_WORKERS and actor.town == row.town):
        raise SupervisionError("只有本镇街工作人员可以答复督办")
    text = text.strip()
    if not text:
        raise SupervisionError("请填写答复内容")
    if len(text) > 1000:
        raise SupervisionError("答复太长（最多1000字）")
    done = await session.exec(
        update(Supervision)
        .where(col(Supervision.id) == row.id, col(Supervision.answered_at).is_(None))
        .values(answer=text, answered_by_id=actor.id, answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise SupervisionError("这条督办已经答复过了")
    await session.refresh(row)
    record_event(
        session,
        case=case,
        kind=EventKind.SUPERVISION,
        actor=actor,
        at=now,
        note=f"督办答复：{text}",
        data={"supervision_id": row.id, "step": "answered", "late": now > row.due_at},
    )
    presser = await session.get(Staff, row.pressed_by_id) if row.pressed_by_id else None
    await _tell_staff(
        session,
        people=[presser] if presser else [],
        case=case,
        text=f"【督办答复】{case.town}已答复诉求{case.case_no}的督办：{text[:120]}",
        key=f"supervision:{row.id}:answered",
        now=now,
    )
    await session.flush()
    return row


async def escalate_due(session: AsyncSession, *, now: datetime, batch: int = 500) -> int:
    """Unanswered presses past their deadline: escalated once each to the town's supervisors and the city."""
    count = 0
    for row in await claim_overdue(session, Supervision, now=now, batch=batch):
        case = await session.get(Case, row.case_id)
        if case is None:
            continue
        record_event(
            session,
            case=case,
            kind=EventKind.SUPERVISION,
            actor=Actor.system(),
            at=now,
            note="督办逾期未答复，已上报镇街负责人和市级督办",
            data={"supervision_id": row.id, "step": "escalated"},
        )
        await _tell_staff(
            session,
            people=await escalation_people(session, town=row.town, pressed_by_id=row.pressed_by_id),
            case=case,
            text=f"【督办逾期】{row.town}未在时限内答复诉求{case.case_no}的督办，请跟进。",
            key=f"supervision:{row.id}:escalated",
            kind=MessageKind.ESCALATION,
            now=now,
        )
        count += 1
    await session.flush()
    return count
