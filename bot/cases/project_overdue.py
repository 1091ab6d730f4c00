"""微实事 past their due date: a sweep that reports each approved project not accepted by the end of its due date
(China's calendar day) once, to the town's supervisors and staff and the community's workers, and marks it
(``Project.overdue_at``), so running it twice or in two workers sends nothing twice.

It lives beside the case sweeps so the one sweep runner (``bot.cases.sweeps``) calls it; it reads the project
table through ``bot.models`` like any table and writes only its own mark."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.workdays import CHINA
from bot.delivery.outbox import enqueue
from bot.models import Project, Staff
from bot.states import ActorType, MessageKind, Role

UNDER_WAY = ("approved", "in_progress")


async def report_overdue(session: AsyncSession, *, now: datetime, batch: int = 500) -> int:
    today = now.astimezone(CHINA).date()
    due = (
        await session.exec(
            select(Project)
            .where(
                col(Project.status).in_(UNDER_WAY),
                col(Project.due_date) < today,
                col(Project.overdue_at).is_(None),
            )
            .order_by(col(Project.due_date))
            .limit(batch)
        )
    ).all()
    count = 0
    for project in due:
        marked = await session.exec(
            update(Project)
            .where(col(Project.id) == project.id, col(Project.overdue_at).is_(None))
            .values(overdue_at=now)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:
            continue  # another worker took it
        people = (
            await session.exec(
                select(Staff).where(
                    Staff.town == project.town,
                    Staff.active == True,  # noqa: E712
                    col(Staff.openid).is_not(None),
                    col(Staff.role).in_((Role.TOWN_SUPERVISOR, Role.TOWN_STAFF, Role.COMMUNITY_WORKER)),
                )
            )
        ).all()
        for person in people:
            if person.role == Role.COMMUNITY_WORKER and person.community not in (None, project.community):
                continue
            await enqueue(
                session,
                openid=person.openid or "",
                kind=MessageKind.ESCALATION,
                text=(
                    f"【微实事逾期】「{project.title}」（{project.community}）完成期限{project.due_date}已过，"
                    f"仍未验收，请{project.unit or '实施单位'}抓紧并登记进度。"
                ),
                recipient_type=ActorType.STAFF,
                link=f"/staff/projects/{project.id}",
                dedupe_key=f"project:{project.id}:overdue:{person.id}",
                now=now,
            )
        count += 1
    await session.flush()
    return count
