"""What the case page shows of the government's side, in one call: the policies that may cover the wish, the
policy applications and their answers, the money the town or the 慈善会 fund spent, and the city's 督办; for a
微实事, the project it became or the town's open rounds it can be proposed to."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.casepage import CaseExtras
from bot.cases.funds import SOURCES
from bot.cases.policies import Suggestion, list_policies, referrals_of, suggest
from bot.cases.supervision import supervisions_of
from bot.models import Case, FundEntry, PolicyReferral, Project, ProjectRound, Supervision, WelfarePolicy
from bot.refcache import cached
from bot.states import CaseKind


@dataclass(slots=True)
class GovPanel:
    suggestions: list[Suggestion] = field(default_factory=list)
    policies: list[WelfarePolicy] = field(default_factory=list)
    referrals: list[PolicyReferral] = field(default_factory=list)
    spending: list[FundEntry] = field(default_factory=list)
    supervisions: list[Supervision] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=lambda: dict(SOURCES))
    project: Project | None = None  # the micro-project this case became
    rounds: list[ProjectRound] = field(default_factory=list)  # the town's rounds still collecting proposals


async def case_panel(session: AsyncSession, *, case: Case, extras: CaseExtras | None = None) -> GovPanel:
    """``extras`` (``bot.cases.casepage``) says which of the case's lists have rows; the others are not read."""
    has = extras or CaseExtras()
    panel = GovPanel(supervisions=await supervisions_of(session, case_id=case.id) if has.supervisions else [])
    if case.kind == CaseKind.MICRO_PROJECT:
        panel.project = (await session.exec(select(Project).where(Project.case_id == case.id))).first()
        if panel.project is None:
            panel.rounds = list(
                (
                    await session.exec(
                        select(ProjectRound)
                        .where(ProjectRound.town == case.town, col(ProjectRound.meeting_at).is_(None))
                        .order_by(col(ProjectRound.id).desc())
                    )
                ).all()
            )
        return panel
    if case.kind != CaseKind.MICRO_WISH:
        return panel
    # the catalogue is the same for every case: from the reference cache (bot.refcache)
    panel.policies = await cached(session, "policies", lambda: list_policies(session, active_only=True))
    panel.suggestions = suggest(case, panel.policies)
    panel.referrals = await referrals_of(session, case_id=case.id) if has.referrals else []
    if has.spending:
        panel.spending = list(
            (
                await session.exec(
                    select(FundEntry).where(FundEntry.case_id == case.id).order_by(col(FundEntry.id))
                )
            ).all()
        )
    return panel
