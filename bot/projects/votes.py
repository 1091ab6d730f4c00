"""The residents' vote of a round, in WeChat: the town opens it, each resident who raised a case in the town gets a
signed link (``/vote/<token>``), and may vote once per round — the unique constraint on (round, resident) refuses
a second vote even when two arrive at the same moment. Results are counted from the votes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.delivery.outbox import enqueue
from bot.models import Case, Resident
from bot.projects.service import ProjectError, projects_of_round, require_town
from bot.projects.tables import Project, ProjectRound, ProjectVote
from bot.states import MessageKind

VOTE_LINK_KIND = "vote"
VOTABLE = ("visited", "selected")


class AlreadyVoted(ProjectError):
    """The resident has voted in this round already."""


def vote_subject(round_id: int, resident_id: int) -> str:
    return f"{round_id}-{resident_id}"


def parse_subject(subject: str) -> tuple[int, int]:
    round_id, _, resident_id = subject.partition("-")
    if not (round_id.isascii() and round_id.isdigit() and resident_id.isascii() and resident_id.isdigit()):
        raise ProjectError("链接无效")
    return int(round_id), int(resident_id)


def vote_is_open(round_: ProjectRound, now: datetime) -> bool:
    return round_.vote_open and (round_.vote_closes_at is None or now < round_.vote_closes_at)


async def open_vote(
    session: AsyncSession, *, round_: ProjectRound, closes_at: datetime, actor: Actor, now: datetime
) -> int:
    """Opens the vote until ``closes_at`` and sends each resident of the town with a case a signed link.
    Returns how many residents were invited."""
    require_town(actor, round_.town)
    if round_.meeting_at is not None:
        raise ProjectError("联席会议已开，不能再发起投票")
    if closes_at <= now:
        raise ProjectError("投票截止时间须晚于现在")
    candidates = [p for p in await projects_of_round(session, round_id=round_.id or 0) if p.status in VOTABLE]
    if len(candidates) < 2:
        raise ProjectError("至少要有两个已踏勘的提案才能投票")
    round_.vote_open = True
    round_.vote_closes_at = closes_at
    session.add(round_)
    residents = await session.exec(
        select(Resident)
        .where(
            col(Resident.id).in_(select(Case.resident_id).where(Case.town == round_.town)),
            Resident.subscribed == True,  # noqa: E712
        )
        .order_by(col(Resident.id))
    )
    invited = 0
    for resident in residents.all():
        invited += int(
            await enqueue(
                session,
                openid=resident.openid,
                kind=MessageKind.PROGRESS,
                text=(
                    f"{round_.town}微实事“{round_.name}”请您投票：{len(candidates)}个提案，每人一票。"
                    "\n点此投票：{link}"
                ),
                link=f"sign:{VOTE_LINK_KIND}:{vote_subject(round_.id or 0, resident.id or 0)}",
                dedupe_key=f"round:{round_.id}:vote:{resident.id}",
                now=now,
            )
        )
    await session.flush()
    return invited


async def cast_vote(
    session: AsyncSession, *, round_: ProjectRound, project_id: int, resident_id: int, now: datetime
) -> ProjectVote:
    if not vote_is_open(round_, now):
        raise ProjectError("投票已经结束")
    project = await session.get(Project, project_id)
    if project is None or project.round_id != round_.id or project.status not in VOTABLE:
        raise ProjectError("请选择本轮的一个提案")
    vote = ProjectVote(round_id=round_.id or 0, project_id=project_id, resident_id=resident_id, at=now)
    try:
        async with session.begin_nested():
            session.add(vote)
            await session.flush()
    except IntegrityError:
        raise AlreadyVoted("您在本轮已经投过票了，每人只能投一票") from None
    return vote


async def my_vote(session: AsyncSession, *, round_id: int, resident_id: int) -> ProjectVote | None:
    rows = await session.exec(
        select(ProjectVote).where(ProjectVote.round_id == round_id, ProjectVote.resident_id == resident_id)
    )
    return rows.first()


async def results(session: AsyncSession, *, round_id: int) -> dict[int, int]:
    """Votes per project of the round."""
    rows = await session.exec(
        select(ProjectVote.project_id, func.count())
        .where(ProjectVote.round_id == round_id)
        .group_by(col(ProjectVote.project_id))
    )
    return {pid: int(n) for pid, n in rows.all()}
