"""Where to look after `make run`: every page family of the demo with its URL and the demo account to open it with.

Read from the database each time (the demo seed runs once), so a second start prints the same guide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot.cases.communities import list_town, scene_of
from bot.db import make_engine, make_sessions, transaction
from bot.delivery.links import sign_link
from bot.models import Case, Project, ProjectRound, Resident, WallClaim, WallWish, utcnow
from bot.ops.demo_cases import DEMO_API_KEY, DEMO_SMS_PHONE
from bot.ops.demo_projects import DEMO_VOTER_OPENID
from bot.projects.votes import VOTE_LINK_KIND, vote_subject
from bot.settings import Settings


@dataclass(frozen=True)
class Page:
    title: str
    path: str  # on the bot; starts with "sim:" for the simulator
    account: str | None  # a demo username (bot.ops.seed.DEMO_STAFF), or None: anyone


async def demo_pages(settings: Settings) -> list[Page]:
    engine = make_engine(settings.db_url)
    try:
        async with transaction(make_sessions(engine)) as db:
            wall = (await db.exec(select(WallWish).where(col(WallWish.status) == "open").limit(1))).first()
            claims = {
                c.status: c
                for c in (await db.exec(select(WallClaim).where(col(WallClaim.group_token).is_(None)))).all()
            }
            group = (
                await db.exec(select(WallClaim).where(col(WallClaim.group_token).is_not(None)).limit(1))
            ).first()
            projects = {
                p.status: p for p in (await db.exec(select(Project).where(Project.town == "厚街镇"))).all()
            }
            rounds = (await db.exec(select(ProjectRound).order_by(col(ProjectRound.id)))).all()
            voting = next((r for r in rounds if r.meeting_at is None), None)
            met = next((r for r in rounds if r.meeting_at is not None), None)
            hotline = (
                await db.exec(
                    select(Case.case_no).where(
                        col(Case.channel) == "hotline_12345", col(Case.contact_phone) == DEMO_SMS_PHONE
                    )
                )
            ).first()
            voter = (
                await db.exec(select(Resident.id).where(col(Resident.openid) == DEMO_VOTER_OPENID))
            ).first()
    finally:
        await engine.dispose()
    pages = [
        Page("居民手机（模拟微信，含扫一扫）", "sim:/phone", None),
        Page("短信模拟器：12345来电居民收到的短信", f"sim:/sms?phone={DEMO_SMS_PHONE}", None),
        Page(f"诉求查询：{hotline or '诉求编号'} + {DEMO_SMS_PHONE}，验证码见上面的短信页", "/query", None),
        Page("圆梦墙", "/wall", None),
        Page("集体认领", "/wall/group", None),
        Page("爱心人士报名", "/donate", None),
        Page("项目公示（公开）", "/public", None),
        Page("微实事公示（公开）", "/public/projects", None),
        Page("开放接口文档（密钥见下）", "/api/docs", None),
        Page("Open311 discovery", "/open311/v2/discovery.json", None),
        Page("诉求列表（工作人员）", "/staff/cases", "houjie"),
        Page("电话回访队列", "/staff/calls", "houjie"),
        Page("圆梦墙管理（认领确认）", "/staff/wall", "houjie"),
        Page("爱心线索", "/staff/leads", "houjie"),
        Page("爱心资源库", "/staff/pool", "houjie"),
        Page("村（社区）名单、二维码和海报", "/staff/communities", "houjie"),
        Page("本社区的诉求（村/社区干部）", "/staff/cases", "xinwei"),
        Page("微实事（批次、联席会议、投票）", "/staff/projects", "houjie_lead"),
        Page("资金台账", "/staff/funds", "houjie_lead"),
        Page("镇街督办（市级督办的要求）", "/staff/town-supervision", "houjie_lead"),
        Page("权责清单", "/staff/duties", "houjie_lead"),
        Page("预警（一键合并）", "/staff/warnings", "houjie_lead"),
        Page("统计", "/staff/stats", "city"),
        Page("数据图表和需求预测", "/staff/stats/charts", "city"),
        Page("镇街排行", "/staff/league", "city"),
        Page("政策库", "/staff/policies", "admin"),
        Page("操作日志", "/staff/audit", "admin"),
        Page("删除个人信息申请", "/staff/erasure", "admin"),
        Page("账号管理", "/staff/admin/staff", "admin"),
    ]
    if wall:
        pages.insert(3, Page("圆梦墙上的一个心愿", f"/wall/{wall.public_id}", None))
    for status, title in (
        ("confirmed", "捐赠人页面（已确认的认领）"),
        ("fulfilled", "捐赠人页面（已圆梦：感谢和证书）"),
    ):
        if status in claims:
            pages.insert(4, Page(title, f"/wall/claims/{claims[status].token}", None))
    if group and group.group_token:
        pages.insert(4, Page("捐赠人页面（集体认领）", f"/wall/groups/{group.group_token}", None))
    for status, title in (
        ("in_progress", "实施中的微实事"),
        ("accepted", "已验收的微实事"),
        ("approved", "公示中的微实事"),
    ):
        if status in projects:
            pages.append(Page(title, f"/staff/projects/{projects[status].id}", "houjie_lead"))
            pages.append(Page(f"{title}（公开）", f"/public/projects/{projects[status].id}", None))
    if met:
        pages.append(Page("开过联席会议的批次", f"/staff/projects/rounds/{met.id}", "houjie_lead"))
    if voting and voter:
        token = sign_link(
            settings.link_secret,
            VOTE_LINK_KIND,
            vote_subject(voting.id or 0, voter),
            ttl=int(timedelta(days=30).total_seconds()),
            now=utcnow().timestamp(),
        )
        pages.append(Page("居民投票页", f"/vote/{token}", None))
    return pages


async def demo_qr_codes(sessions: Any, wechat: Any, *, town: str = "厚街镇", n: int = 3) -> int:
    """The first communities of the demo town get their QR codes from the (simulated) WeChat at each start, so the
    phone page's 扫一扫 lists them (the simulator keeps its codes in memory; a permanent scene gets its ticket back)."""
    async with transaction(sessions) as db:
        rows = (await list_town(db, town=town))[:n]
        for c in rows:
            answer = await wechat.create_qrcode(scene_of(c))
            if not c.qr_url and answer.get("url"):
                c.qr_url, c.qr_ticket, c.updated_at = (
                    str(answer["url"])[:256],
                    str(answer.get("ticket") or "")[:128],
                    utcnow(),
                )
                db.add(c)
    return len(rows)


def guide_text(pages: list[Page], *, bot_url: str, sim_url: str, passwords: dict[str, str]) -> str:
    """The pages anyone opens first, then each demo account's pages under its sign-in."""
    lines = ["  居民、捐赠人和公众 (no sign-in):"]
    accounts = [None, *dict.fromkeys(p.account for p in pages if p.account)]
    for account in accounts:
        if account:
            lines.append(f"  以 {account} / {passwords[account]} 登录 {bot_url}/staff/login :")
        for p in pages:
            if p.account == account:
                url = sim_url + p.path[4:] if p.path.startswith("sim:") else bot_url + p.path
                lines.append(f"      {url}  {p.title}")
    lines.append(
        f"  开放接口演示密钥 (Authorization: Bearer …; 厚街镇; cases:read cases:write):\n      {DEMO_API_KEY}"
    )
    return "\n".join(lines)
