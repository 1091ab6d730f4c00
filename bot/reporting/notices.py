"""信息发布: notices — the public list (city-wide ones and a town's own) and the supervisors' writes (publish,
edit, delete). A town supervisor publishes for their own town only; city roles for the whole city or any town.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import CITY_ROLES, SUPERVISORS
from bot.models import Notice, Staff
from bot.reporting.scope import TOWN_NAMES


# ------------------------------------------------------------------ 信息发布 (notices)
class NoticeError(Exception):
    """A domain error with a message staff can read."""


async def public_notices(
    session: AsyncSession,
    *,
    town: str | None = None,
    page: int = 1,
    per_page: int = 20,
    now: datetime | None = None,
) -> tuple[list[Notice], bool]:
    """Published notices, newest first: city-wide ones and, when `town` is given, that town's."""
    q = select(Notice)
    if town is not None:
        q = q.where(or_(col(Notice.town).is_(None), col(Notice.town) == town))
    if now is not None:
        q = q.where(col(Notice.published_at) <= now)
    q = q.order_by(col(Notice.published_at).desc(), col(Notice.id).desc()).offset((page - 1) * per_page)
    rows = list(await session.exec(q.limit(per_page + 1)))
    return rows[:per_page], len(rows) > per_page


async def get_public_notice(
    session: AsyncSession, *, notice_id: int, now: datetime | None = None
) -> Notice | None:
    notice = await session.get(Notice, notice_id)
    if notice is None or (now is not None and notice.published_at > now):
        return None
    return notice


def can_publish(staff: Staff) -> bool:
    return staff.role in SUPERVISORS


def _may_edit(staff: Staff, notice: Notice) -> bool:
    return staff.role in CITY_ROLES or bool(
        staff.role in SUPERVISORS and staff.town and notice.town == staff.town
    )


async def notices_for_staff(session: AsyncSession, *, staff: Staff, limit: int = 100) -> list[Notice]:
    """The notices a supervisor may edit: all for city roles, their own town's for a town supervisor."""
    if not can_publish(staff):
        raise NoticeError("只有负责人可以发布公告")
    q = select(Notice)
    if staff.role not in CITY_ROLES:
        q = q.where(col(Notice.town) == (staff.town or "\x00"))
    q = q.order_by(col(Notice.published_at).desc(), col(Notice.id).desc()).limit(limit)
    return list(await session.exec(q))


async def get_notice_for(session: AsyncSession, *, staff: Staff, notice_id: int) -> Notice | None:
    notice = await session.get(Notice, notice_id)
    if notice is None or not _may_edit(staff, notice):
        return None
    return notice


async def save_notice(
    session: AsyncSession,
    *,
    staff: Staff,
    title: str,
    body: str,
    town: str | None,
    now: datetime,
    notice: Notice | None = None,
) -> Notice:
    """Publish a new notice (``notice=None``) or edit one. A town supervisor publishes for their own town only;
    city roles for the whole city (``town=None``) or any one town."""
    if not can_publish(staff):
        raise NoticeError("只有负责人可以发布公告")
    title, body = title.strip(), body.strip()
    if not title:
        raise NoticeError("请填写标题")
    if len(title) > 128:
        raise NoticeError("标题不能超过128个字")
    if not body:
        raise NoticeError("请填写正文")
    if len(body) > 20_000:
        raise NoticeError("正文过长")
    town = (town or "").strip() or None
    if staff.role in CITY_ROLES:
        if town is not None and town not in TOWN_NAMES:
            raise NoticeError("请选择正确的镇街")
    else:
        town = staff.town
    if notice is None:
        notice = Notice(title=title, body=body, town=town, published_at=now, author_id=staff.id)
        session.add(notice)
    else:
        if not _may_edit(staff, notice):
            raise NoticeError("您不能修改这条公告")
        notice.title, notice.body, notice.town = title, body, town
        session.add(notice)
    await session.flush()
    return notice


async def delete_notice(session: AsyncSession, *, staff: Staff, notice: Notice) -> None:
    if not can_publish(staff) or not _may_edit(staff, notice):
        raise NoticeError("您不能删除这条公告")
    await session.delete(notice)
    await session.flush()
