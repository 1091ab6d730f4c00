"""Jurisdiction and the query helpers every figure shares.

``scope_for`` turns the signed-in staff member into a :class:`Scope` (a town, and a community for community
workers; ``town=None`` means city-wide); ``where`` turns a scope and a half-open ``[start, end)`` range of aware UTC
datetimes into WHERE conditions on :class:`~bot.models.Case`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import CITY_ROLES
from bot.models import Case, Community
from reference.towns import TOWNS

TOWN_NAMES = tuple(t.name for t in TOWNS)


# ------------------------------------------------------------------ scope (jurisdiction)
@dataclass(frozen=True, slots=True)
class Scope:
    town: str | None  # None = city-wide
    community: str | None = None


def scope_for(
    *, role: str, own_town: str | None, own_community: str | None, requested_town: str | None
) -> Scope:
    """What a staff member may see: city roles any town (or all), everyone else only their own town (community
    workers only their community), whatever the URL asks for."""
    if role in CITY_ROLES:
        return Scope(requested_town if requested_town in TOWN_NAMES else None)
    town = own_town or "\x00"  # a town-level account without a town sees nothing rather than everything
    if role == "community_worker":
        return Scope(town, own_community or "\x00")
    return Scope(town)


def dialect(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``: the few expressions that differ (durations, day buckets) ask this."""
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def where(
    *,
    town: str | None,
    community: str | None,
    start: datetime | None,
    end: datetime | None,
    column: Any = None,
) -> list[Any]:
    """The scope and the range ``[start, end)`` on ``column`` (default: ``Case.created_at``) as conditions."""
    column = col(Case.created_at) if column is None else column
    conds: list[Any] = []
    if town is not None:
        conds.append(col(Case.town) == town)
    if (
        community is not None
    ):  # by the registry's id, like the case queue: the community of that name in the town
        ids = sa_select(col(Community.id)).where(col(Community.name) == community)
        if town is not None:
            ids = ids.where(col(Community.town) == town)
        conds.append(col(Case.community_id).in_(ids))
    if start is not None:
        conds.append(column >= start)
    if end is not None:
        conds.append(column < end)
    return conds


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 4 places; None when ``whole`` is 0 (no rate, rather than 0% or 100%)."""
    return round(part / whole, 4) if whole else None


async def grouped(
    session: AsyncSession, column: Any, conds: Sequence[Any], *, null: str = "未分类"
) -> list[tuple[str, int]]:
    """``(value, count)`` of the rows matching ``conds`` grouped by ``column``, largest first; NULL is ``null``."""
    n = func.count()
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(column, n).where(*conds).group_by(column).order_by(n.desc(), column)
    )
    return [(key if key is not None else null, int(count)) for key, count in rows]
