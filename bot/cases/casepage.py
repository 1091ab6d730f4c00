"""What the staff case page reads in the same statement as the case itself: the resident's number, the owner's
name and, for each optional panel (messages sent, 督办, policy applications, fund spending, files, the pool's
offers), whether the case has any row there. The page then reads only the panels that have rows: most cases have
none in most of them, and every statement costs a round trip to the database's thread (SQLite) or server. Each
probe is an ``EXISTS`` on the table's ``case_id`` index."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, exists, func, or_, table
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.models import (
    Case,
    FundEntry,
    InboundMessage,
    Offer,
    Outbox,
    PolicyReferral,
    Resident,
    Staff,
    Supervision,
)

#: the media package's table (bot/media/tables.py), named here only for the probe: the case package sits below media
#: and does not import it (tests/unit/test_case_layers.py); its name and two columns are checked by a test
STORED_MEDIA = table("storedmedia", column("case_id"), column("inbound_id"))


@dataclass(frozen=True, slots=True)
class CaseExtras:
    resident_phone: str | None = None
    owner: str | None = None  # the claiming staff member's display name (the username when it has none)
    deliveries: bool = True
    supervisions: bool = True
    referrals: bool = True
    spending: bool = True
    media: bool = True
    offers: bool = True


def owner_name() -> Any:
    """The claiming staff member's display name (the username when it has none) as a column correlated to the
    ``case`` row of the enclosing query; NULL when unclaimed."""
    return (
        select(func.coalesce(func.nullif(Staff.display_name, ""), Staff.username))
        .where(Staff.id == Case.claimed_by_id)
        .scalar_subquery()
    )


@functools.cache
def _extras_columns() -> tuple[Any, ...]:
    """The probe as columns correlated to the ``case`` row of the enclosing query: built once (statements are
    immutable; building these eight subqueries cost ~0.4 ms of CPU per case page)."""
    # two levels down: correlated by hand, or the subquery would read the whole case table on its own
    linked = select(col(InboundMessage.id)).where(col(InboundMessage.case_id) == Case.id).correlate(Case)
    return (
        select(Resident.phone).where(Resident.id == Case.resident_id).scalar_subquery(),
        owner_name(),
        exists().where(col(Outbox.case_id) == Case.id),
        exists().where(col(Supervision.case_id) == Case.id),
        exists().where(col(PolicyReferral.case_id) == Case.id),
        exists().where(col(FundEntry.case_id) == Case.id),
        exists().where(or_(STORED_MEDIA.c.case_id == Case.id, STORED_MEDIA.c.inbound_id.in_(linked))),
        exists().where(col(Offer.case_id) == Case.id),
    )


def _extras(case: Case, row: Sequence[Any]) -> CaseExtras:
    return CaseExtras(
        resident_phone=row[0] if case.resident_id else None,
        owner=row[1] if case.claimed_by_id else None,
        deliveries=bool(row[2]),
        supervisions=bool(row[3]),
        referrals=bool(row[4]),
        spending=bool(row[5]),
        media=bool(row[6]),
        offers=bool(row[7]),
    )


async def page_case(session: AsyncSession, query: SelectOfScalar[Case]) -> tuple[Case, CaseExtras] | None:
    """The case ``query`` finds (a jurisdiction query: ``cases_query(staff).where(...)``) with its probe, in one
    statement; None when it finds none."""
    stmt = sa_select(Case, *_extras_columns())
    if query.whereclause is not None:
        stmt = stmt.where(query.whereclause)
    row = (await session.exec(stmt)).first()  # type: ignore[call-overload]
    if row is None:
        return None
    case: Case = row[0]
    return case, _extras(case, row[1:])


async def case_extras(session: AsyncSession, *, case: Case) -> CaseExtras:
    """The probe of a case already loaded."""
    row = (
        await session.exec(  # type: ignore[call-overload]
            sa_select(*_extras_columns()).where(col(Case.id) == (case.id or 0))
        )
    ).one()
    return _extras(case, row)
