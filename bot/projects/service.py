"""A micro-project's life, one function per step, each writing its rows, the case's timeline (when the project
came from a case) and the messages to the residents and the community in the caller's transaction.

proposed ─visit→ visited ─meeting→ selected | rejected;  selected ─approve→ approved (公示 open: objections
recorded and answered) ─stage→ in_progress ─accept→ accepted. A proposal not visited before its round's meeting
is carried to a later round of the town (``carry_over``, kept on the project's ``history``) and visited there.

Town and charity money of an approved budget is spent through the town's fund ledger (``bot.cases.funds``), so
the ledger and the project agree by construction; city matching funds and a sponsor's money are recorded on the
project. Work may start only after the objection window closed and every objection was answered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import CITY_ROLES, SUPERVISORS, TOWN_WORKERS, Actor
from bot.cases.funds import spend, yuan
from bot.cases.table import TERMINAL, LifecycleError
from bot.cases.timeline import record_event
from bot.cases.transition import notify_resident
from bot.deadlines.workdays import add_working_days
from bot.delivery.outbox import enqueue
from bot.models import Case, Resident, Staff
from bot.projects.tables import (
    Project,
    ProjectFunding,
    ProjectObjection,
    ProjectRound,
    ProjectStage,
    ProjectVote,
)
from bot.states import ActorType, CaseKind, EventKind, MessageKind, Role

STATUS_LABEL: dict[str, str] = {
    "proposed": "已征集",
    "visited": "已踏勘",
    "selected": "已入选",
    "rejected": "未入选",
    "approved": "公示中",
    "in_progress": "实施中",
    "accepted": "已验收",
}
SOURCE_LABEL: dict[str, str] = {
    "chat": "居民微信反映",
    "staff": "工作人员提出",
    "consultation": "社区议事协商",
}
FUNDING_LABEL: dict[str, str] = {
    "city": "市级配套资金",
    "town": "镇街资金",
    "charity": "慈善会资金",
    "sponsor": "社会赞助",
}
STAGES: tuple[str, ...] = ("开工", "施工中", "完工")
MAX_OBJECTION_DAYS = 30
APPROVED = ("approved", "in_progress", "accepted")


class ProjectError(LifecycleError):
    """A step that cannot be taken, with a message staff (or the public) can read."""


def _text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ProjectError(f"请填写{field}")
    if len(value) > limit:
        raise ProjectError(f"{field}太长（最多{limit}字）")
    return value


def may_work_in(actor: Actor, town: str) -> bool:
    """Town staff work on their own town's projects; the city on every town's."""
    return actor.type == ActorType.STAFF and (
        actor.role in CITY_ROLES
        or (actor.town == town and actor.role in (*TOWN_WORKERS, Role.COMMUNITY_WORKER))
    )


def require_town(actor: Actor, town: str, *, supervisors: bool = False) -> None:
    if not may_work_in(actor, town):
        raise ProjectError("只能办理本镇街的微实事")
    if supervisors and actor.role not in SUPERVISORS:
        raise ProjectError("须由镇街负责人或市级督办批准")


# ------------------------------------------------------------------ who is told
async def _tell(session: AsyncSession, *, project: Project, text: str, key: str, now: datetime) -> int:
    """The resident who raised it (through the case), the residents who voted for it, and the community's
    workers and the town's staff (by WeChat when their account is bound)."""
    told = 0
    if project.case_id is not None and (case := await session.get(Case, project.case_id)) is not None:
        told += int(await notify_resident(session, case=case, text=text, dedupe_key=f"{key}:case", now=now))
    voters = await session.exec(
        select(Resident)
        .join(ProjectVote, col(ProjectVote.resident_id) == col(Resident.id))
        .where(ProjectVote.project_id == project.id, Resident.subscribed == True)  # noqa: E712
    )
    for resident in voters.all():
        told += int(
            await enqueue(
                session,
                openid=resident.openid,
                kind=MessageKind.PROGRESS,
                text=text,
                dedupe_key=f"{key}:r{resident.id}",
                link=f"/public/projects/{project.id}",
                now=now,
            )
        )
    staff = await session.exec(
        select(Staff).where(
            Staff.town == project.town,
            Staff.active == True,  # noqa: E712
            col(Staff.openid).is_not(None),
            col(Staff.role).in_((Role.COMMUNITY_WORKER, Role.TOWN_STAFF)),
        )
    )
    for person in staff.all():
        if (
            person.role == Role.COMMUNITY_WORKER
            and person.community
            and person.community != project.community
        ):
            continue
        told += int(
            await enqueue(
                session,
                openid=person.openid or "",
                kind=MessageKind.ALERT,
                text=f"【微实事】{text}",
                recipient_type=ActorType.STAFF,
                dedupe_key=f"{key}:s{person.id}",
                link=f"/staff/projects/{project.id}",
                now=now,
            )
        )
    return told


async def _on_case(
    session: AsyncSession, *, project: Project, actor: Actor, now: datetime, note: str
) -> None:
    if project.case_id is not None and (case := await session.get(Case, project.case_id)) is not None:
        record_event(
            session,
            case=case,
            kind=EventKind.NOTE,
            actor=actor,
            at=now,
            note=f"微实事项目：{note}",
            data={"project_id": project.id},
        )


# ------------------------------------------------------------------ rounds and proposals
async def create_round(
    session: AsyncSession, *, town: str, name: str, objection_days: int, actor: Actor, now: datetime
) -> ProjectRound:
    require_town(actor, town)
    if actor.role not in (*TOWN_WORKERS, *CITY_ROLES):
        raise ProjectError("批次由镇街工作人员建立")
    name = _text(name, field="批次名称", limit=64)
    if not 1 <= objection_days <= MAX_OBJECTION_DAYS:
        raise ProjectError(f"公示期须为1到{MAX_OBJECTION_DAYS}个工作日")
    found = await session.exec(
        select(ProjectRound).where(ProjectRound.town == town, ProjectRound.name == name)
    )
    if found.first() is not None:
        raise ProjectError("本镇街已有同名批次")
    row = ProjectRound(
        town=town, name=name, objection_days=objection_days, created_by_id=actor.id, created_at=now
    )
    session.add(row)
    await session.flush()
    return row


async def propose(
    session: AsyncSession,
    *,
    round_: ProjectRound,
    title: str,
    summary: str,
    community: str,
    category: str,
    source: str,
    actor: Actor,
    now: datetime,
    case: Case | None = None,
) -> Project:
    """A proposal collected: from a resident's 微实事 case (``chat``), by staff, or from a consultation."""
    require_town(actor, round_.town)
    if source not in SOURCE_LABEL:
        raise ProjectError("请选择提案来源")
    if round_.meeting_at is not None:
        raise ProjectError("这一批次已开过联席会议，请放入新的批次")
    if case is not None:
        if case.kind != CaseKind.MICRO_PROJECT or case.town != round_.town:
            raise ProjectError("只有本镇街的微实事诉求可以转为提案")
        taken = await session.exec(select(Project).where(Project.case_id == case.id))
        if taken.first() is not None:
            raise ProjectError("这条诉求已经是微实事提案了")
        source = "chat"
    elif source == "chat":
        raise ProjectError("居民微信反映的提案须从诉求转入")
    project = Project(
        round_id=round_.id or 0,
        town=round_.town,
        community=_text(community, field="村（社区）", limit=64),
        title=_text(title, field="项目名称", limit=64),
        summary=_text(summary, field="项目内容", limit=1000),
        category=_text(category, field="类别", limit=32),
        source=source,
        case_id=case.id if case is not None else None,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(project)
    await session.flush()
    await _on_case(session, project=project, actor=actor, now=now, note=f"已收集为「{round_.name}」提案")
    await _tell(
        session,
        project=project,
        text=f"您反映的「{project.title}」已作为微实事提案收集（{round_.name}），下一步将到现场踏勘。",
        key=f"project:{project.id}:proposed",
        now=now,
    )
    return project


async def visit(
    session: AsyncSession, *, project: Project, notes: str, photos: Sequence[str], actor: Actor, now: datetime
) -> Project:
    require_town(actor, project.town)
    if project.status not in ("proposed", "visited"):
        raise ProjectError("联席会议后不能再记录踏勘")
    round_ = await session.get(ProjectRound, project.round_id)
    if round_ is not None and round_.meeting_at is not None:
        raise ProjectError("这一批次已开过联席会议，请先把提案转入以后的批次再踏勘")
    project.visit_notes = _text(notes, field="踏勘情况", limit=2000)
    project.visit_photos = [*project.visit_photos, *photos][:12]
    first = project.visited_at is None
    project.visited_at = now
    project.status = "visited"
    session.add(project)
    await session.flush()
    if first:
        await _on_case(session, project=project, actor=actor, now=now, note="已现场踏勘")
        await _tell(
            session,
            project=project,
            text=f"微实事「{project.title}」已完成现场踏勘，将提交联席会议研究。",
            key=f"project:{project.id}:visited",
            now=now,
        )
    return project


async def projects_of_round(session: AsyncSession, *, round_id: int) -> list[Project]:
    rows = await session.exec(select(Project).where(Project.round_id == round_id).order_by(col(Project.id)))
    return list(rows.all())


async def hold_meeting(
    session: AsyncSession,
    *,
    round_: ProjectRound,
    attendees: str,
    minutes: str,
    decisions: dict[int, tuple[str, str]],
    actor: Actor,
    now: datetime,
) -> list[Project]:
    """The 联席会议: the list considered (every visited proposal of the round), a decision per proposal
    (selected / rejected with a reason) and the minutes. Proposals not yet visited wait for the next round."""
    require_town(actor, round_.town, supervisors=True)
    if round_.meeting_at is not None:
        raise ProjectError("这一批次的联席会议已经记录过了")
    listed = [p for p in await projects_of_round(session, round_id=round_.id or 0) if p.status == "visited"]
    if not listed:
        raise ProjectError("没有已踏勘的提案可以上会")
    missing = [p.title for p in listed if p.id not in decisions]
    if missing:
        raise ProjectError("每个上会提案都要有结论：" + "、".join(missing[:5]))
    round_.meeting_attendees = _text(attendees, field="参会单位", limit=500)
    round_.meeting_minutes = _text(minutes, field="会议纪要", limit=4000)
    round_.meeting_at = now
    round_.meeting_considered = [p.id for p in listed if p.id is not None]
    round_.vote_open = False
    session.add(round_)
    for project in listed:
        decision, note = decisions[project.id or 0]
        if decision not in ("selected", "rejected"):
            raise ProjectError("结论须为入选或不入选")
        note = _text(note, field="不入选理由", limit=500, required=decision == "rejected")
        project.status = decision
        project.decision_note = note
        project.decided_at = now
        session.add(project)
        await session.flush()
        said = "入选" if decision == "selected" else f"未入选（{note}）"
        await _on_case(session, project=project, actor=actor, now=now, note=f"联席会议结论：{said}")
        await _tell(
            session,
            project=project,
            text=f"微实事「{project.title}」经{round_.name}联席会议研究：{said}。",
            key=f"project:{project.id}:decided",
            now=now,
        )
    await session.flush()
    return listed


async def open_rounds(session: AsyncSession, *, town: str, besides: int | None = None) -> list[ProjectRound]:
    """The town's rounds whose meeting is still to come (where a proposal may go), oldest first."""
    stmt = select(ProjectRound).where(ProjectRound.town == town, col(ProjectRound.meeting_at).is_(None))
    if besides is not None:
        stmt = stmt.where(ProjectRound.id != besides)
    return list((await session.exec(stmt.order_by(col(ProjectRound.id)))).all())


async def carry_over(
    session: AsyncSession, *, project: Project, to_round: ProjectRound, actor: Actor, now: datetime
) -> Project:
    """A proposal that was not visited before its round's 联席会议 goes to a later round of the town (one whose
    meeting is still to come), where it is visited and considered. The move is kept on the project's history,
    the case's timeline, and told to the resident and the community."""
    require_town(actor, project.town)
    if project.status != "proposed":
        raise ProjectError("只有未踏勘的提案可以转入以后的批次")
    from_round = await session.get(ProjectRound, project.round_id)
    assert from_round is not None
    if from_round.meeting_at is None:
        raise ProjectError("本批次的联席会议还没开，踏勘后即可上会")
    if to_round.id == from_round.id or to_round.town != project.town:
        raise ProjectError("请选择本镇街以后的批次")
    if to_round.meeting_at is not None:
        raise ProjectError("所选批次已开过联席会议，请选择尚未开会的批次")
    project.round_id = to_round.id or 0
    project.history = [
        *project.history,
        {
            "at": now.isoformat(),
            "kind": "carried",
            "from_round": from_round.id,
            "from_name": from_round.name,
            "to_round": to_round.id,
            "to_name": to_round.name,
            "by": actor.id,
        },
    ]
    session.add(project)
    await session.flush()
    said = f"「{from_round.name}」联席会议前未踏勘，转入「{to_round.name}」"
    await _on_case(session, project=project, actor=actor, now=now, note=said)
    await _tell(
        session,
        project=project,
        text=f"微实事提案「{project.title}」{said}，踏勘后将提交该批次联席会议研究。",
        key=f"project:{project.id}:carried:{to_round.id}",
        now=now,
    )
    return project


# ------------------------------------------------------------------ approval, 公示 and objections
@dataclass(frozen=True, slots=True)
class FundingLine:
    source: str
    amount_fen: int
    sponsor: str = ""
    sponsor_agreed: bool = False


async def approve(
    session: AsyncSession,
    *,
    project: Project,
    funding: Sequence[FundingLine],
    unit: str,
    due: date,
    actor: Actor,
    now: datetime,
) -> Project:
    """Approval with a budget made of its funding lines, the implementing unit and the due date; town and
    charity money leaves the town's fund ledger now; 公示 opens for the round's objection days."""
    require_town(actor, project.town, supervisors=True)
    if project.status != "selected":
        raise ProjectError("只有联席会议入选的项目可以批准立项")
    lines = [f for f in funding if f.amount_fen > 0]
    if not lines:
        raise ProjectError("请至少填写一项资金来源")
    if len({f.source for f in lines}) != len(lines):
        raise ProjectError("同一资金来源只填一行")
    for f in lines:
        if f.source not in FUNDING_LABEL:
            raise ProjectError("未知的资金来源")
        if f.source == "sponsor" and not f.sponsor.strip():
            raise ProjectError("社会赞助请写明赞助单位")
    if due <= now.date():
        raise ProjectError("完成期限须晚于今天")
    round_ = await session.get(ProjectRound, project.round_id)
    assert round_ is not None
    project.unit = _text(unit, field="实施单位", limit=64)
    project.due_date = due
    project.budget_fen = sum(f.amount_fen for f in lines)
    project.status = "approved"
    project.approved_at = now
    project.notice_until = add_working_days(now, round_.objection_days)
    session.add(project)
    for f in lines:
        entry_id = None
        if f.source in ("town", "charity"):
            entry = await spend(
                session,
                town=project.town,
                source=f.source,
                amount_fen=f.amount_fen,
                note=f"微实事「{project.title}」",
                actor=actor,
                now=now,
                case_id=project.case_id,
            )
            entry_id = entry.id
        session.add(
            ProjectFunding(
                project_id=project.id or 0,
                source=f.source,
                amount_fen=f.amount_fen,
                sponsor=f.sponsor.strip()[:64] if f.source == "sponsor" else "",
                sponsor_public=f.source == "sponsor" and f.sponsor_agreed,
                fund_entry_id=entry_id,
            )
        )
    await session.flush()
    await _on_case(
        session, project=project, actor=actor, now=now, note=f"批准立项，预算{yuan(project.budget_fen)}元"
    )
    await _tell(
        session,
        project=project,
        text=(
            f"微实事「{project.title}」已批准立项：预算{yuan(project.budget_fen)}元，由{project.unit}实施，"
            f"{due:%Y年%m月%d日}前完成。现在公示，有意见可在公示页提出。"
        ),
        key=f"project:{project.id}:approved",
        now=now,
    )
    return project


def notice_open(project: Project, now: datetime) -> bool:
    return project.status == "approved" and project.notice_until is not None and now < project.notice_until


async def raise_objection(
    session: AsyncSession, *, project: Project, text: str, channel: str, now: datetime
) -> ProjectObjection:
    if not notice_open(project, now):
        raise ProjectError("这个项目不在公示期内，不能再提出异议")
    row = ProjectObjection(
        project_id=project.id or 0,
        text=_text(text, field="异议内容", limit=500),
        channel=channel,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def answer_objection(
    session: AsyncSession, *, project: Project, objection_id: int, answer: str, actor: Actor, now: datetime
) -> ProjectObjection:
    require_town(actor, project.town)
    row = await session.get(ProjectObjection, objection_id)
    if row is None or row.project_id != project.id:
        raise ProjectError("没有这条异议")
    if row.answered_at is not None:
        raise ProjectError("这条异议已经答复过了")
    row.answer = _text(answer, field="答复", limit=1000)
    row.answered_at = now
    row.answered_by_id = actor.id
    session.add(row)
    await session.flush()
    return row


async def objections_of(session: AsyncSession, *, project_id: int) -> list[ProjectObjection]:
    rows = await session.exec(
        select(ProjectObjection)
        .where(ProjectObjection.project_id == project_id)
        .order_by(col(ProjectObjection.id))
    )
    return list(rows.all())


# ------------------------------------------------------------------ the work and its acceptance
async def add_stage(
    session: AsyncSession,
    *,
    project: Project,
    name: str,
    note: str,
    photos: Sequence[str],
    spent_fen: int,
    actor: Actor,
    now: datetime,
) -> ProjectStage:
    require_town(actor, project.town)
    if project.status not in ("approved", "in_progress"):
        raise ProjectError("只有已批准的项目可以登记进度")
    if project.status == "approved":
        if notice_open(project, now):
            raise ProjectError("公示期未结束，还不能开工")
        if any(o.answered_at is None for o in await objections_of(session, project_id=project.id or 0)):
            raise ProjectError("还有公示异议未答复，答复后才能开工")
        project.status = "in_progress"
        project.started_at = now
    if name not in STAGES:
        raise ProjectError("请选择进度阶段")
    if spent_fen < 0:
        raise ProjectError("支出金额不能为负")
    stage = ProjectStage(
        project_id=project.id or 0,
        name=name,
        note=_text(note, field="进度说明", limit=1000),
        photos=list(photos)[:12],
        spent_fen=spent_fen,
        staff_id=actor.id,
        at=now,
    )
    session.add(stage)
    session.add(project)
    await session.flush()
    await _on_case(session, project=project, actor=actor, now=now, note=f"进度：{name}")
    await _tell(
        session,
        project=project,
        text=f"微实事「{project.title}」进度：{name}。{stage.note[:60]}",
        key=f"project:{project.id}:stage:{stage.id}",
        now=now,
    )
    return stage


async def stages_of(session: AsyncSession, *, project_id: int) -> list[ProjectStage]:
    rows = await session.exec(
        select(ProjectStage).where(ProjectStage.project_id == project_id).order_by(col(ProjectStage.id))
    )
    return list(rows.all())


async def accept(
    session: AsyncSession, *, project: Project, note: str, photos: Sequence[str], actor: Actor, now: datetime
) -> Project:
    """The acceptance check (验收) after the work was reported finished."""
    require_town(actor, project.town, supervisors=True)
    if project.status != "in_progress":
        raise ProjectError("项目还没有实施，不能验收")
    if not any(s.name == "完工" for s in await stages_of(session, project_id=project.id or 0)):
        raise ProjectError("请先登记“完工”进度再验收")
    project.acceptance_note = _text(note, field="验收意见", limit=1000)
    project.acceptance_photos = list(photos)[:12]
    project.status = "accepted"
    project.accepted_at = now
    session.add(project)
    await session.flush()
    await _on_case(session, project=project, actor=actor, now=now, note="已验收")
    await _tell(
        session,
        project=project,
        text=f"微实事「{project.title}」已通过验收，感谢您的参与。结果已在项目公示页公布。",
        key=f"project:{project.id}:accepted",
        now=now,
    )
    return project


async def funding_of(session: AsyncSession, *, project_id: int) -> list[ProjectFunding]:
    rows = await session.exec(
        select(ProjectFunding).where(ProjectFunding.project_id == project_id).order_by(col(ProjectFunding.id))
    )
    return list(rows.all())


async def cases_to_propose(session: AsyncSession, *, town: str, limit: int = 50) -> list[Case]:
    """The town's open 微实事 cases from residents that are not yet a proposal (newest first)."""
    rows = await session.exec(
        select(Case)
        .where(
            Case.town == town,
            Case.kind == CaseKind.MICRO_PROJECT,
            col(Case.status).not_in(TERMINAL),
            col(Case.id).not_in(select(Project.case_id).where(col(Project.case_id).is_not(None))),
        )
        .order_by(col(Case.created_at).desc())
        .limit(limit)
    )
    return list(rows.all())
