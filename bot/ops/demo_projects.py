"""Demo 微实事 for `make run` (development only): a project in each stage across three rounds of 厚街镇 — accepted,
under way, rejected at the 联席会议, approved in 公示 with an answered objection, selected, proposed, visited —
the residents' vote open on the third round, and a city 督办 of the town."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.numbering import create_case
from bot.cases.supervision_town import press_town
from bot.models import Project, ProjectRound, Resident, Staff
from bot.projects import service as svc
from bot.projects.votes import open_vote

TOWN = "厚街镇"
#: the resident whose 微实事 case started the first round; the guide prints their vote link
DEMO_VOTER_OPENID = "o-demo-project-resident"


@dataclass
class DemoProjects:
    in_progress: int = 0  # a project page with stages, funding and an answered objection
    accepted: int = 0
    met_round: int = 0  # a round whose 联席会议 was held
    vote_round: int = 0
    vote_resident: int = 0  # a resident who may vote in vote_round


async def seed_projects(session: AsyncSession, *, now: datetime) -> DemoProjects:
    lead = (await session.exec(select(Staff).where(col(Staff.username) == "houjie_lead"))).one()
    city = (await session.exec(select(Staff).where(col(Staff.username) == "city"))).one()
    actor = Actor.of_staff(lead)
    out = DemoProjects()
    resident = Resident(openid=DEMO_VOTER_OPENID, phone="13812340001")
    session.add(resident)
    await session.flush()
    out.vote_resident = resident.id or 0
    case = await create_case(
        session,
        kind="micro_project",
        description="巷口路灯坏了，晚上老人出门看不清路",
        town=TOWN,
        resident_id=resident.id,
        community="新围社区",
        now=now - timedelta(days=120),
    )

    async def proposal(
        round_: ProjectRound, title: str, summary: str, category: str, source: str = "staff", **kw: Any
    ) -> Project:
        return await svc.propose(
            session,
            round_=round_,
            title=title,
            summary=summary,
            community=kw.pop("community", "新围社区"),
            category=category,
            source=source,
            actor=actor,
            now=kw.pop("at"),
            **kw,
        )

    # round 1, met three months ago: one accepted, one under way, one rejected
    t1 = now - timedelta(days=110)
    r1 = await svc.create_round(
        session, town=TOWN, name="2026年第一批", objection_days=5, actor=actor, now=t1
    )
    a = await proposal(
        r1, "新围村巷口修复路灯", "巷口两盏路灯损坏，更换为LED路灯。", "照明", "chat", case=case, at=t1
    )
    b = await proposal(
        r1, "新围公园增设长椅和遮阳棚", "公园老人多，缺少休息的地方。", "文体设施", "consultation", at=t1
    )
    c = await proposal(
        r1, "涌口市场加装雨棚", "市场入口无遮挡，雨天湿滑。", "其他", community="涌口社区", at=t1
    )
    for p in (a, b, c):
        await svc.visit(session, project=p, notes="已到现场查看，情况属实", photos=[], actor=actor, now=t1)
    await svc.hold_meeting(
        session,
        round_=r1,
        attendees="公共服务办、住建、城管、新围社区",
        minutes="研究了三个提案，两个入选。",
        decisions={
            a.id or 0: ("selected", ""),
            b.id or 0: ("selected", ""),
            c.id or 0: ("rejected", "已列入市场改造计划"),
        },
        actor=actor,
        now=t1 + timedelta(days=2),
    )
    for p, fen, unit in ((a, 1_200_000, "厚街镇市政所"), (b, 3_000_000, "厚街镇公共服务办")):
        await svc.approve(
            session,
            project=p,
            funding=[
                svc.FundingLine("city", fen),
                svc.FundingLine("sponsor", 100_000, "厚街某照明公司", True),
            ],
            unit=unit,
            due=(now + timedelta(days=30)).date(),
            actor=actor,
            now=t1 + timedelta(days=3),
        )
    o = await svc.raise_objection(
        session, project=b, text="遮阳棚会挡住路灯", channel="public", now=t1 + timedelta(days=4)
    )
    await svc.answer_objection(
        session,
        project=b,
        objection_id=o.id or 0,
        answer="调整位置，避开路灯",
        actor=actor,
        now=t1 + timedelta(days=5),
    )
    for p, stages in ((a, ("开工", "完工")), (b, ("开工",))):
        for i, name in enumerate(stages):
            await svc.add_stage(
                session,
                project=p,
                name=name,
                note="施工队进场" if name == "开工" else "路灯已全部更换",
                photos=[],
                spent_fen=500_000,
                actor=actor,
                now=t1 + timedelta(days=20 + 20 * i),
            )
    await svc.accept(
        session, project=a, note="验收合格，路灯正常", photos=[], actor=actor, now=t1 + timedelta(days=50)
    )
    out.accepted, out.in_progress, out.met_round = a.id or 0, b.id or 0, r1.id or 0

    # round 2, met two days ago: one approved and in 公示, one selected awaiting approval
    t2 = now - timedelta(days=10)
    r2 = await svc.create_round(
        session, town=TOWN, name="2026年第二批", objection_days=7, actor=actor, now=t2
    )
    d = await proposal(r2, "学校门口增设减速带", "上下学车多，孩子过马路危险。", "道路交通", at=t2)
    e = await proposal(r2, "菜市场旁疏通排水沟", "下雨积水，老人容易滑倒。", "环境卫生", at=t2)
    for p in (d, e):
        await svc.visit(session, project=p, notes="已到现场查看", photos=[], actor=actor, now=t2)
    await svc.hold_meeting(
        session,
        round_=r2,
        attendees="公共服务办、交警中队、新围社区",
        minutes="两个提案均入选。",
        decisions={d.id or 0: ("selected", ""), e.id or 0: ("selected", "")},
        actor=actor,
        now=now - timedelta(days=2),
    )
    await svc.approve(
        session,
        project=d,
        funding=[svc.FundingLine("city", 800_000)],
        unit="厚街镇交通办",
        due=(now + timedelta(days=60)).date(),
        actor=actor,
        now=now - timedelta(days=1),
    )

    # round 3, collecting: one proposed, two visited, the residents' vote open
    r3 = await svc.create_round(
        session, town=TOWN, name="2026年第三批", objection_days=5, actor=actor, now=now
    )
    await proposal(r3, "社区活动室添置乒乓球台", "居民希望有地方锻炼。", "文体设施", at=now)
    for title in ("小区门口加装无障碍坡道", "公交站增设候车座椅"):
        p = await proposal(r3, title, title, "道路交通", at=now)
        await svc.visit(session, project=p, notes="已到现场查看", photos=[], actor=actor, now=now)
    await open_vote(session, round_=r3, closes_at=now + timedelta(days=14), actor=actor, now=now)
    out.vote_round = r3.id or 0
    await press_town(
        session,
        town=TOWN,
        actor=Actor.of_staff(city),
        request="本月逾期未办结的微心愿较多，请说明原因并限期办结",
        days=5,
        now=now,
    )
    return out
