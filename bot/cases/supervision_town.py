"""督办 of a whole town (not one case): a city supervisor presses a town about its work as a whole (a backlog of
overdue cases, a slow stage); the town's staff and supervisors are told through the outbox; the town must answer
within its own deadline (working days) or the press is escalated once to the town's supervisors and the city.

The row is the record (request, deadline, escalation mark, answer); the views audit each step. ``escalate_due``
is a sweep like ``bot.cases.supervision.escalate_due``: due rows through an index, each marked once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import CITY_ROLES, TOWN_WORKERS, Actor
from bot.cases.supervision import claim_overdue, escalation_people, notify_staff, town_people
from bot.cases.table import LifecycleError
from bot.deadlines.workdays import add_working_days
from bot.models import Staff, TownSupervision
from bot.states import ActorType, MessageKind

DEFAULT_DAYS = 5
MAX_DAYS = 30


class TownSupervisionError(LifecycleError):
    """A press or an answer that cannot be recorded, with a message staff can read."""


async def _tell(
    session: AsyncSession,
    *,
    people: list[Staff],
    town: str,
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
        link=f"/staff/town-supervision?town={town}",
        subject=town,
        kind=kind,
    )


async def press_town(
    session: AsyncSession, *, town: str, actor: Actor, request: str, days: int = DEFAULT_DAYS, now: datetime
) -> TownSupervision:
    if actor.type != ActorType.STAFF or actor.role not in CITY_ROLES:
        raise TownSupervisionError("只有市级督办可以督办镇街")
    request = request.strip()
    if not request:
        raise TownSupervisionError("请写明督办要求")
    if len(request) > 500:
        raise TownSupervisionError("督办要求太长（最多500字）")
    if not 1 <= days <= MAX_DAYS:
        raise TownSupervisionError(f"答复时限须为1到{MAX_DAYS}个工作日")
    row = TownSupervision(
        town=town, request=request, pressed_by_id=actor.id, due_at=add_working_days(now, days), created_at=now
    )
    session.add(row)
    await session.flush()
    await _tell(
        session,
        people=await town_people(session, town=town, roles=tuple(TOWN_WORKERS)),
        town=town,
        text=f"【督办】市级督办{town}：{request[:120]}。请在{days}个工作日内答复。",
        key=f"town-supervision:{row.id}:pressed",
        now=now,
    )
    return row


async def answer_town(
    session: AsyncSession, *, supervision_id: int, actor: Actor, text: str, now: datetime
) -> TownSupervision:
    row = await session.get(TownSupervision, supervision_id)
    if row is None or (actor.role not in CITY_ROLES and actor.town != row.town):
        raise TownSupervisionError("没有这条督办")
    if actor.type != ActorType.STAFF or not (actor.role in TOWN_WORKERS and actor.town == row.town):
        raise TownSupervisionError("只有本镇街工作人员可以答复督办")
    text = text.strip()
    if not text:
        raise TownSupervisionError("请填写答复内容")
    if len(text) > 1000:
        raise TownSupervisionError("答复太长（最多1000字）")
    done = await session.exec(
        update(TownSupervision)
        .where(col(TownSupervision.id) == row.id, col(TownSupervision.answered_at).is_(None))
        .values(answer=text, answered_by_id=actor.id, answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise TownSupervisionError("这条督办已经答复过了")
    await session.refresh(row)
    presser = await session.get(Staff, row.pressed_by_id) if row.pressed_by_id else None
    await _tell(
        session,
        people=[presser] if presser else [],
        town=row.town,
        text=f"【督办答复】{row.town}已答复督办：{text[:120]}",
        key=f"town-supervision:{row.id}:answered",
        now=now,
    )
    return row


async def town_presses(session: AsyncSession, *, town: str | None, limit: int = 200) -> list[TownSupervision]:
    stmt = select(TownSupervision).order_by(col(TownSupervision.id).desc()).limit(limit)
    if town is not None:
        stmt = stmt.where(TownSupervision.town == town)
    return list((await session.exec(stmt)).all())


async def escalate_due(session: AsyncSession, *, now: datetime, batch: int = 500) -> int:
    """Unanswered presses of towns past their deadline: escalated once each to the town's supervisors and the
    city's supervisors (and the one who pressed)."""
    count = 0
    for row in await claim_overdue(session, TownSupervision, now=now, batch=batch):
        await _tell(
            session,
            people=await escalation_people(session, town=row.town, pressed_by_id=row.pressed_by_id),
            town=row.town,
            text=f"【督办逾期】{row.town}未在时限内答复市级督办，请跟进。",
            key=f"town-supervision:{row.id}:escalated",
            kind=MessageKind.ESCALATION,
            now=now,
        )
        count += 1
    await session.flush()
    return count
