"""Row-level steps shared by offers, volunteers and the case panel: lock a case, load its offers in order,
change an offer's status only from an expected one, count a resource's history, the volunteer as an actor; and
the two rules every volunteer action and page applies (``volunteer_refusal``, ``contact_visible``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import STATE_LABEL, TERMINAL, Actor
from bot.models import Case, Offer, Resource
from bot.pool.config import OPEN_MATCH, PoolError

#: case states in which a volunteer has nothing left to do (and sees no contact details)
CASE_OVER = TERMINAL | {"completed"}
INACTIVE_TEXT = "您的爱心资源已停用，不能再认领或报告进度。如有疑问请联系镇街工作人员。"


def volunteer_refusal(*, case: Case, resource: Resource) -> str | None:
    """Why a volunteer may not act on this case now (accept, report progress), or None when they may."""
    if not resource.active:
        return INACTIVE_TEXT
    if case.status in CASE_OVER:
        label = "已办结" if case.status in ("completed", "closed") else STATE_LABEL.get(case.status, "已结束")
        return f"这个微心愿（编号{case.case_no}）{label}，无需再操作，感谢您的爱心。"
    return None


def contact_visible(*, offer: Offer, case: Case, resource: Resource) -> bool:
    """The resident's phone and address are shown only while this volunteer's accepted offer is open, the case is
    not over and the resource is active; never after completion, cancellation or deactivation."""
    return offer.status in OPEN_MATCH and case.status not in CASE_OVER and resource.active


async def lock_case(session: AsyncSession, case_id: int) -> Case:
    stmt = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    found = (await session.exec(stmt)).first()
    if found is None:
        raise PoolError("找不到这个心愿")
    return found


async def case_offers(session: AsyncSession, case_id: int) -> list[Offer]:
    stmt = (
        select(Offer)
        .where(Offer.case_id == case_id)
        .order_by(col(Offer.offered_at), col(Offer.id))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(stmt)).all())


async def add_resource_counts(session: AsyncSession, resource_id: int, now: datetime, **deltas: int) -> None:
    values: dict[str, Any] = {name: getattr(Resource, name) + n for name, n in deltas.items()}
    values["updated_at"] = now
    await session.exec(
        sa.update(Resource)
        .where(col(Resource.id) == resource_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def set_offer_status(
    session: AsyncSession, offer: Offer, *, expect: Sequence[str], **values: Any
) -> bool:
    result = await session.exec(
        sa.update(Offer)
        .where(col(Offer.id) == offer.id, col(Offer.status).in_(expect))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    for k, v in values.items():
        set_committed_value(offer, k, v)
    return True


def volunteer_actor(resource: Resource) -> Actor:
    return Actor("volunteer", resource.id, resource.name[:64])
