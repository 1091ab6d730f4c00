"""Totals of micro-projects per town and per round, and what the public pages show of a project.

Nothing here selects a person: a public project is its title, community, town, category, money, unit, dates,
stages and photos (taken of the site), and the town's answers to objections (the objections' own words stay on
the staff side: an objector may write their name)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.workdays import CHINA
from bot.projects.service import (
    APPROVED,
    FUNDING_LABEL,
    funding_of,
    objections_of,
    stages_of,
)
from bot.projects.tables import Project, ProjectFunding, ProjectRound, ProjectStage


@dataclass(slots=True)
class Totals:
    proposals: int = 0
    approved: int = 0
    budget_fen: int = 0
    spent_fen: int = 0
    completed: int = 0
    on_time: int = 0


def on_time(project: Project) -> bool:
    """Accepted on or before its due date (China's calendar day)."""
    return (
        project.accepted_at is not None
        and project.due_date is not None
        and project.accepted_at.astimezone(CHINA).date() <= project.due_date
    )


async def _spent(session: AsyncSession, project_ids: list[int]) -> dict[int, int]:
    if not project_ids:
        return {}
    out: dict[int, int] = defaultdict(int)
    rows = await session.exec(
        select(ProjectStage.project_id, ProjectStage.spent_fen).where(
            col(ProjectStage.project_id).in_(project_ids)
        )
    )
    for pid, fen in rows.all():
        out[pid] += fen
    return out


async def totals(
    session: AsyncSession, *, town: str | None = None
) -> tuple[dict[str, Totals], list[tuple[ProjectRound, Totals]]]:
    """Per town and per round (of ``town``, or of every town): proposals, approved, budget, spent, completed
    and completed on time."""
    stmt = select(Project)
    if town is not None:
        stmt = stmt.where(Project.town == town)
    projects = list((await session.exec(stmt)).all())
    spent = await _spent(session, [p.id for p in projects if p.id is not None])
    by_town: dict[str, Totals] = defaultdict(Totals)
    by_round: dict[int, Totals] = defaultdict(Totals)
    for p in projects:
        for t in (by_town[p.town], by_round[p.round_id]):
            t.proposals += 1
            if p.status in APPROVED:
                t.approved += 1
                t.budget_fen += p.budget_fen
                t.spent_fen += spent.get(p.id or 0, 0)
            if p.status == "accepted":
                t.completed += 1
                t.on_time += on_time(p)
    rstmt = select(ProjectRound).order_by(col(ProjectRound.town), col(ProjectRound.id))
    if town is not None:
        rstmt = rstmt.where(ProjectRound.town == town)
    rounds = [(r, by_round.get(r.id or 0, Totals())) for r in (await session.exec(rstmt)).all()]
    return dict(sorted(by_town.items())), rounds


@dataclass(slots=True)
class PublicProject:
    project: Project
    round_name: str
    funding: list[tuple[str, int]] = field(default_factory=list)  # (label, fen)
    spent_fen: int = 0
    stages: list[ProjectStage] = field(default_factory=list)
    objections: int = 0
    answers: list[str] = field(default_factory=list)
    open_objections: int = 0

    @property
    def on_time(self) -> bool:
        return on_time(self.project)


def _funding_label(f: ProjectFunding) -> str:
    if f.source == "sponsor":
        return f"社会赞助（{f.sponsor}）" if f.sponsor_public else "社会赞助（爱心单位）"
    return FUNDING_LABEL.get(f.source, f.source)


async def public_list(
    session: AsyncSession, *, town: str | None, page: int = 1, per_page: int = 30
) -> tuple[list[Project], bool]:
    stmt = select(Project).where(col(Project.status).in_(APPROVED))
    if town is not None:
        stmt = stmt.where(Project.town == town)
    stmt = stmt.order_by(col(Project.approved_at).desc(), col(Project.id).desc())
    rows = list((await session.exec(stmt.offset((page - 1) * per_page).limit(per_page + 1))).all())
    return rows[:per_page], len(rows) > per_page


async def public_project(session: AsyncSession, *, project_id: int, now: datetime) -> PublicProject | None:
    project = await session.get(Project, project_id)
    if project is None or project.status not in APPROVED:
        return None
    round_ = await session.get(ProjectRound, project.round_id)
    out = PublicProject(project=project, round_name=round_.name if round_ else "")
    out.funding = [
        (_funding_label(f), f.amount_fen) for f in await funding_of(session, project_id=project_id)
    ]
    out.stages = await stages_of(session, project_id=project_id)
    out.spent_fen = sum(s.spent_fen for s in out.stages)
    objections = await objections_of(session, project_id=project_id)
    out.objections = len(objections)
    out.answers = [o.answer for o in objections if o.answer]
    out.open_objections = sum(1 for o in objections if o.answered_at is None)
    return out
