"""Call-back requests: a resident who asks for a person ("人工", "找人", "打电话给我") is phoned back by staff of
their town before the staff call queue's deadline — the one rule of every call staff owe a resident
(``bot.deadlines.calls.call_deadline``: the admin-editable ``call`` policy, moved into waking hours). This module
owns the writes of the `CallBack` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.calls import call_deadline
from bot.deadlines.waking import DEFAULT_WAKING, WakingHours
from bot.models import CallBack


async def request_callback(
    session: AsyncSession,
    *,
    resident_id: int | None,
    phone: str,
    town: str | None,
    note: str,
    now: datetime,
    waking: WakingHours = DEFAULT_WAKING,
    case_id: int | None = None,
) -> CallBack:
    """One open request per resident: asking again returns the open one (its deadline unchanged). A new one is
    due by ``call_deadline`` (the ``call`` policy in the ``waking`` window), as a call task is."""
    if resident_id is not None:
        open_one = (
            await session.exec(
                select(CallBack).where(
                    col(CallBack.resident_id) == resident_id, col(CallBack.done_at).is_(None)
                )
            )
        ).first()
        if open_one is not None:
            if town and not open_one.town:
                open_one.town = town
            open_one.phone = phone
            session.add(open_one)
            return open_one
    row = CallBack(
        resident_id=resident_id,
        case_id=case_id,
        town=town,
        phone=phone,
        note=note[:500],
        created_at=now,
        due_at=await call_deadline(session, now=now, waking=waking),
    )
    session.add(row)
    await session.flush()
    return row


async def open_callbacks(session: AsyncSession, *, town: str | None) -> list[CallBack]:
    """Open requests, earliest deadline first: one town's (and those whose town is unknown when `town` is None,
    i.e. city-wide staff see every one)."""
    q = select(CallBack).where(col(CallBack.done_at).is_(None))
    if town is not None:
        q = q.where(col(CallBack.town) == town)
    return list((await session.exec(q.order_by(col(CallBack.due_at)))).all())


async def mark_called(
    session: AsyncSession, *, callback_id: int, staff_id: int | None, town: str | None, now: datetime
) -> bool:
    """Staff phoned back: closes the request (only within the staff member's town when `town` is given)."""
    q = update(CallBack).where(col(CallBack.id) == callback_id, col(CallBack.done_at).is_(None))
    if town is not None:
        q = q.where(col(CallBack.town) == town)
    result = await session.exec(q.values(done_at=now, done_by_id=staff_id))
    return bool(result.rowcount == 1)
