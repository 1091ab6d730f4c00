"""One statement the staff case page starts with: the resident's number, the owner's name and, for each optional
panel (messages sent, 督办, policy applications, fund spending, files), whether the case has any row there. The
page then reads only the panels that have rows: most cases have none in most of them, and every statement costs
a round trip to the database's thread (SQLite) or server. Each probe is an ``EXISTS`` on the table's ``case_id``
index."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, literal, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.media.tables import StoredMedia
from bot.models import (
    Case,
    FundEntry,
    InboundMessage,
    Outbox,
    PolicyReferral,
    Resident,
    Staff,
    Supervision,
)


@dataclass(frozen=True, slots=True)
class CaseExtras:
    resident_phone: str | None = None
    owner: str | None = None  # the claiming staff member's display name (the username when it has none)
    deliveries: bool = True
    supervisions: bool = True
    referrals: bool = True
    spending: bool = True
    media: bool = True


async def case_extras(session: AsyncSession, *, case: Case) -> CaseExtras:
    cid = case.id or 0
    phone = (
        select(Resident.phone).where(Resident.id == case.resident_id).scalar_subquery()
        if case.resident_id
        else literal(None)
    )
    owner = (
        select(func.coalesce(func.nullif(Staff.display_name, ""), Staff.username))
        .where(Staff.id == case.claimed_by_id)
        .scalar_subquery()
        if case.claimed_by_id
        else literal(None)
    )
    linked = select(col(InboundMessage.id)).where(col(InboundMessage.case_id) == cid)
    row = (
        await session.exec(  # type: ignore[call-overload]
            sa_select(  # seven columns: beyond sqlmodel.select's typed overloads
                phone,
                owner,
                exists().where(col(Outbox.case_id) == cid),
                exists().where(col(Supervision.case_id) == cid),
                exists().where(col(PolicyReferral.case_id) == cid),
                exists().where(col(FundEntry.case_id) == cid),
                exists().where(or_(col(StoredMedia.case_id) == cid, col(StoredMedia.inbound_id).in_(linked))),
            )
        )
    ).one()
    return CaseExtras(
        resident_phone=row[0],
        owner=row[1],
        deliveries=bool(row[2]),
        supervisions=bool(row[3]),
        referrals=bool(row[4]),
        spending=bool(row[5]),
        media=bool(row[6]),
    )
