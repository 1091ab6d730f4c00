"""The one rule the wall and the pushed offers share, at row level: a wish is matched once.

A published wish (``WallWish``) is taken either by a wall claim (``open`` → ``reserved``) or by a pushed offer that a
volunteer accepts (``open`` → ``matched_offer``), each through a conditional UPDATE on the same row, so when both
happen at once exactly one wins — on SQLite (writers serialised) and on PostgreSQL (the second UPDATE waits for the
first and then finds the row no longer ``open``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import WallWish

#: wall states in which a donor from the wall holds the wish
HELD_BY_WALL = ("reserved", "confirmed", "fulfilled")


async def take_for_offer(session: AsyncSession, *, case_id: int, now: datetime) -> bool:
    """Before a pushed offer becomes the match: take the wish off the wall. False when a wall claim holds it
    (the offer must then not be accepted); True when the wish was not on the wall or was still open."""
    result = await session.exec(
        sa.update(WallWish)
        .where(col(WallWish.case_id) == case_id, col(WallWish.status) == "open")
        .values(status="matched_offer", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return True
    status = (await session.exec(select(WallWish.status).where(WallWish.case_id == case_id))).first()
    return status not in HELD_BY_WALL


async def reserve(session: AsyncSession, *, wish_id: int, until: datetime, now: datetime) -> bool:
    """A wall claim takes an open wish (conditional UPDATE); False when someone else was faster."""
    result = await session.exec(
        sa.update(WallWish)
        .where(col(WallWish.id) == wish_id, col(WallWish.status) == "open")
        .values(status="reserved", reserved_until=until, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


async def set_wish_status(
    session: AsyncSession, *, wish_id: int, expect: tuple[str, ...], now: datetime, **values: object
) -> bool:
    """Move a wall wish only from an expected status; False when it was not in one of them."""
    result = await session.exec(
        sa.update(WallWish)
        .where(col(WallWish.id) == wish_id, col(WallWish.status).in_(expect))
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)
