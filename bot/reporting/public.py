"""项目公示: what the public may see of the programme's work — completed micro-projects (public works: item,
category, town, community, month), fulfilled micro-wishes (category, town and month only) and the figures per town.
The queries select only those columns: no name, phone, address or description can reach a public page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.numbering import CHINA
from bot.models import Case
from bot.reporting.scope import grouped
from bot.states import DONE


# ------------------------------------------------------------------ 项目公示 (public disclosure, no personal data)
@dataclass(frozen=True, slots=True)
class PublicProject:
    """A completed micro-project: public works, so item, category, town and community may be shown."""

    item: str
    category: str
    town: str
    community: str
    month: str


@dataclass(frozen=True, slots=True)
class PublicWish:
    """A fulfilled micro-wish: only category, town and month. No name, phone, address, item or description."""

    category: str
    town: str
    month: str


@dataclass(slots=True)
class PublicFigures:
    wishes_done: int = 0
    projects_done: int = 0
    by_town: list[tuple[str, int, int]] = field(default_factory=list)  # town, wishes, projects
    wish_categories: list[tuple[str, int]] = field(default_factory=list)
    project_categories: list[tuple[str, int]] = field(default_factory=list)


def _done(town: str | None) -> list[Any]:
    conds: list[Any] = [col(Case.status).in_(DONE), col(Case.completed_at).is_not(None)]
    if town is not None:
        conds.append(col(Case.town) == town)
    return conds


def _month(dt: datetime | None) -> str:
    if dt is None:
        return ""
    local = dt.astimezone(CHINA)
    return f"{local.year}年{local.month}月"


async def public_figures(session: AsyncSession, *, town: str | None = None) -> PublicFigures:
    out = PublicFigures()
    wish = func.sum(case((col(Case.kind) == "micro_wish", 1), else_=0))
    proj = func.sum(case((col(Case.kind) == "micro_project", 1), else_=0))
    rows = await session.exec(  # type: ignore[call-overload]
        sa_select(col(Case.town), wish, proj).where(*_done(town)).group_by(col(Case.town))
    )
    out.by_town = sorted(
        ((t, int(w or 0), int(p or 0)) for t, w, p in rows), key=lambda r: (-(r[1] + r[2]), r[0])
    )
    out.wishes_done = sum(r[1] for r in out.by_town)
    out.projects_done = sum(r[2] for r in out.by_town)
    out.wish_categories = await grouped(
        session, col(Case.category), [*_done(town), col(Case.kind) == "micro_wish"], null="其他"
    )
    out.project_categories = await grouped(
        session, col(Case.category), [*_done(town), col(Case.kind) == "micro_project"], null="其他"
    )
    return out


async def public_projects(
    session: AsyncSession, *, town: str | None = None, page: int = 1, per_page: int = 30
) -> tuple[list[PublicProject], bool]:
    """Completed micro-projects, newest first; returns (rows, has_next). Only public columns are selected."""
    rows = list(
        await session.exec(  # type: ignore[call-overload]
            sa_select(
                col(Case.item),
                col(Case.category),
                col(Case.town),
                col(Case.community),
                col(Case.completed_at),
            )
            .where(*_done(town), col(Case.kind) == "micro_project")
            .order_by(col(Case.completed_at).desc(), col(Case.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    out = [
        PublicProject(item or category or "微实事", category or "其他", t, community or "", _month(at))
        for item, category, t, community, at in rows[:per_page]
    ]
    return out, len(rows) > per_page


async def public_wishes(
    session: AsyncSession, *, town: str | None = None, page: int = 1, per_page: int = 30
) -> tuple[list[PublicWish], bool]:
    """Fulfilled micro-wishes, newest first: category, town and month only."""
    rows = list(
        await session.exec(  # type: ignore[call-overload]
            sa_select(col(Case.category), col(Case.town), col(Case.completed_at))
            .where(*_done(town), col(Case.kind) == "micro_wish")
            .order_by(col(Case.completed_at).desc(), col(Case.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    out = [PublicWish(category or "其他", t, _month(at)) for category, t, at in rows[:per_page]]
    return out, len(rows) > per_page
