"""Demo content for `make run` (development only): a year of cases behind the charts and the forecast, this week's
spike and a repeat requester behind 预警, the 圆梦墙 with claims, a group claim and a thank-you, the leads inbox,
a policy referral, the fund ledger, the call queue and an open-API key. Micro-projects: bot.ops.demo_projects.

Idempotent: the demo API client is the marker; when it exists nothing is added."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.funds import allocate, spend
from bot.cases.numbering import create_case
from bot.cases.policies import list_policies, route_to_policy
from bot.cases.transition import transition
from bot.models import ApiClient, CallBack, CallTask, Case, CaseEvent, Resident, Staff
from bot.pool.leads import check_signup, record_chat_lead, sign_up
from bot.pool.wall import check_claim_form, claim_wish, confirm_claim, fulfil_claim, publish
from bot.pool.wallgroup import claim_group

TOWN = "厚街镇"
#: the open API key of the demo (development only, like the demo passwords): try it at /api/docs
DEMO_API_KEY = "dgj_demo0000cafe_daguanjia-demo-key-2026"
DEMO_API_CLIENT = "演示接口调用方"
#: the 12345 caller without WeChat: texted when their case is claimed (the SMS simulator's /sms?phone=)
DEMO_SMS_PHONE = "13655556666"

#: (category, item, description) of the year's wishes
WISHES = (
    ("助残", "轮椅", "家里老人中风后走不了路，想申请一辆轮椅"),
    ("助残", "助听器", "爷爷耳朵背，想要一台助听器"),
    ("助学", "书包", "孩子读三年级，书包坏了想换个新的"),
    ("助学", "台灯", "小孩晚上写作业光线不够，想要一盏护眼台灯"),
    ("生活物资", "大米", "独居老人家里米快吃完了，想要一袋大米"),
    ("生活物资", "冬被", "天冷了，老人家里缺一床厚被子"),
    ("助老", "老花镜", "奶奶眼睛不好，想配一副老花镜"),
)
TOWNS = ("厚街镇", "厚街镇", "厚街镇", "虎门镇", "长安镇", "莞城街道")
COMMUNITIES = {"厚街镇": "新围社区", "虎门镇": "南栅社区", "长安镇": "霄边社区", "莞城街道": "博厦社区"}


@dataclass
class DemoWall:
    wall_id: str = ""
    claim_token: str = ""  # the donor's page of a confirmed claim
    done_token: str = ""  # the donor's page of a fulfilled claim: thanks and the certificate
    group_token: str = ""
    notes: list[str] = field(default_factory=list)


async def _staff(session: AsyncSession, username: str) -> Staff:
    return (await session.exec(select(Staff).where(col(Staff.username) == username))).one()


async def already_seeded(session: AsyncSession) -> bool:
    return (
        await session.exec(select(ApiClient).where(col(ApiClient.name) == DEMO_API_CLIENT))
    ).first() is not None


async def _resident(session: AsyncSession, n: int, phone: str | None = None) -> Resident:
    r = Resident(openid=f"o-demo-resident-{n:04d}", phone=phone or f"139{n:08d}")
    session.add(r)
    await session.flush()
    return r


async def seed_history(session: AsyncSession, *, now: datetime) -> int:
    """About 400 cases over the last 13 months in several towns: most completed on time, some late, some still
    open; a seasonal swing (winter quilts, school bags in August and February) so the forecast has a shape."""
    rng = random.Random(2026)
    owners = {TOWN: (await _staff(session, "houjie")).id, "虎门镇": (await _staff(session, "humen")).id}
    made = 0
    for day in range(395, 8, -1):
        at = now - timedelta(days=day, hours=rng.randint(0, 9))
        month = at.month
        per_day = 1 + (1 if month in (1, 2, 8, 12) else 0) + (1 if rng.random() < 0.3 else 0)
        for _ in range(per_day if day % 2 == 0 else per_day - 1):
            category, item, text = rng.choice(WISHES)
            if month in (11, 12, 1) and rng.random() < 0.3:
                category, item, text = WISHES[5]
            town = rng.choice(TOWNS)
            made += 1
            r = await _resident(session, 1000 + made)
            c = await create_case(
                session,
                kind="micro_wish",
                description=text,
                town=town,
                resident_id=r.id,
                item=item,
                category=category,
                community=COMMUNITIES[town],
                now=at,
            )
            late = rng.random() < 0.15
            c.status = "completed" if day > 20 or rng.random() < 0.5 else "claimed"
            c.claimed_by_id = owners.get(town)  # the town's demo worker; other towns' cases have none
            if c.status == "completed":
                c.completed_at = at + timedelta(days=rng.randint(8, 20) if late else rng.randint(1, 6))
            session.add(c)
    await session.flush()
    return made


async def seed_warnings(session: AsyncSession, *, now: datetime) -> int:
    """This week's spike of quilt requests in 厚街镇, three street-light proposals of one community (merged with one
    click), and one phone behind three wishes this month."""
    made = 0
    for i in range(12):
        r = await _resident(session, 100 + i)
        await create_case(
            session,
            kind="micro_wish",
            description="寒潮来了，家里老人被子太薄，想要一床冬被",
            town=TOWN,
            resident_id=r.id,
            item="冬被",
            category="生活物资",
            community="新围社区",
            now=now - timedelta(days=1 + i % 6, hours=i),
        )
        made += 1
    for i, text in enumerate(
        ("涌口路口的路灯不亮了", "涌口村那段路晚上太黑", "路灯坏了好几盏，晚上不敢出门")
    ):
        r = await _resident(session, 150 + i)
        await create_case(
            session,
            kind="micro_project",
            description=text,
            town=TOWN,
            resident_id=r.id,
            item="路灯",
            category="照明",
            community="涌口社区",
            now=now - timedelta(days=2 + i),
        )
        made += 1
    r = await _resident(session, 200, phone="13800138000")
    for i, (item, text) in enumerate(
        (("大米", "想要一袋大米"), ("食用油", "想要一桶油"), ("电饭锅", "电饭锅坏了"))
    ):
        await create_case(
            session,
            kind="micro_wish",
            description=text,
            town=TOWN,
            resident_id=r.id,
            item=item,
            category="生活物资",
            community="新围社区",
            contact_phone="13800138000",
            now=now - timedelta(days=3 + 5 * i),
        )
        made += 1
    return made


async def _wish(
    session: AsyncSession, n: int, *, staff: Staff, item: str, category: str, text: str, now: datetime
) -> Case:
    r = await _resident(session, 300 + n)
    c = await create_case(
        session,
        kind="micro_wish",
        description=text,
        town=TOWN,
        resident_id=r.id,
        item=item,
        category=category,
        community="新围社区",
        address="新围村三巷8号",
        beneficiary="陈伯",
        contact_phone=r.phone,
        now=now,
    )
    c.status = "claimed"
    c.claimed_by_id = staff.id
    await session.flush()
    return c


async def seed_wall(session: AsyncSession, *, now: datetime) -> DemoWall:
    """Published wishes on the wall; a confirmed claim, a fulfilled one with the resident's thanks (certificate and
    爱心榜), a group claim of two wishes by a party branch; a chat lead and a sign-up in the leads inbox."""
    staff = await _staff(session, "houjie")
    out = DemoWall()
    hold = timedelta(days=3650)
    published = []
    for n, (category, item, text, public) in enumerate(
        (
            ("助残", "轮椅", "奶奶中风后走不了路，想要一辆轮椅", "一位行动不便的老人需要一辆轮椅"),
            ("助学", "书包", "孩子书包坏了", "一名三年级女生需要一个新书包"),
            ("助残", "助听器", "爷爷耳背", "一位听力不好的老人需要一台助听器"),
            ("生活物资", "大米", "家里米快吃完了", "一户困难家庭需要一袋大米"),
            ("生活物资", "冬被", "天冷缺被子", "一位独居老人需要一床冬被"),
            ("助学", "台灯", "写作业光线暗", "一名初中生需要一盏护眼台灯"),
            ("助老", "老花镜", "看不清字", "一位老奶奶需要一副老花镜"),
        )
    ):
        case = await _wish(
            session, n, staff=staff, item=item, category=category, text=text, now=now - timedelta(days=n)
        )
        w = await publish(
            session,
            case=case,
            staff=staff,
            text=public,
            handover="community_centre",
            now=now - timedelta(days=n),
        )
        published.append(w.public_id)
    out.wall_id = published[0]
    c = await claim_wish(
        session,
        public_id=published[1],
        form=check_claim_form(
            donor_name="厚街爱心党支部", donor_type="party_branch", phone="13600001111", message="好好学习"
        ),
        now=now,
        hold=hold,
        notify=False,
    )
    await confirm_claim(session, claim_id=c.id or 0, staff=staff, now=now)
    out.claim_token = c.token
    done = await claim_wish(
        session,
        public_id=published[2],
        form=check_claim_form(
            donor_name="东莞爱心五金厂", donor_type="enterprise", phone="13600004444", message="祝您听得清楚"
        ),
        now=now,
        hold=hold,
        listed=True,
        notify=False,
    )
    await confirm_claim(session, claim_id=done.id or 0, staff=staff, now=now)
    await fulfil_claim(session, claim_id=done.id or 0, staff=staff, note="已送到社区", now=now)
    done.thanks, done.thanks_at = "助听器很好用，谢谢你们！", now
    session.add(done)
    out.done_token = done.token
    group = await claim_group(
        session,
        public_ids=published[3:5],
        form=check_claim_form(
            donor_name="厚街某社区党支部", donor_type="party_branch", phone="13600005555", message=""
        ),
        now=now,
        hold=hold,
    )
    out.group_token = group.token
    await record_chat_lead(session, openid="o-demo-lead", text="我想献爱心，可以捐大米", now=now)
    await sign_up(
        session,
        form=check_signup(
            name="厚街爱心粮油店",
            kind="enterprise",
            contact="林经理",
            phone="13700001234",
            town=TOWN,
            categories=["生活物资"],
            items="大米, 食用油",
            capacity="3",
            max_fund="",
        ),
        now=now,
    )
    return out


async def seed_town_work(session: AsyncSession, *, now: datetime) -> None:
    """A wish routed to a policy, the town's fund ledger (allocations and a spending), the call queue."""
    staff = await _staff(session, "houjie")
    lead = await _staff(session, "houjie_lead")
    policies = await list_policies(session, active_only=True)
    wish = await _wish(
        session,
        50,
        staff=staff,
        item="轮椅",
        category="助残",
        text="残疾人，想申请一辆轮椅",
        now=now - timedelta(days=4),
    )
    if policies:
        await route_to_policy(
            session,
            case=wish,
            policy_id=policies[0].id or 0,
            applied_for="已为居民申请残疾人辅助器具适配",
            actor=Actor.of_staff(staff),
            now=now - timedelta(days=3),
        )
    boss = Actor.of_staff(lead)
    for source, fen, note, days in (
        ("town", 5_000_000, "2026年度镇街微心愿专项资金", 60),
        ("charity", 2_000_000, "镇慈善会拨付", 30),
    ):
        await allocate(
            session,
            town=TOWN,
            source=source,
            amount_fen=fen,
            note=note,
            actor=boss,
            now=now - timedelta(days=days),
        )
    done = await _wish(
        session,
        51,
        staff=staff,
        item="电饭锅",
        category="生活物资",
        text="电饭锅坏了",
        now=now - timedelta(days=6),
    )
    await spend(
        session,
        town=TOWN,
        source="town",
        amount_fen=29_900,
        note="为困难家庭购买电饭锅",
        actor=boss,
        now=now - timedelta(days=5),
        case_id=done.id,
    )
    session.add(
        CallTask(
            case_id=wish.id or 0,
            town=TOWN,
            phone="13912345678",
            reason="微信和短信都无法送达，请电话回访",
            created_at=now,
            due_at=now + timedelta(days=1),
        )
    )
    session.add(
        CallBack(
            town=TOWN,
            phone="13712345678",
            note="想找人问问轮椅的事",
            created_at=now,
            due_at=now + timedelta(hours=6),
        )
    )
    # a 12345 hotline case without WeChat: claiming it texts the resident (the SMS simulator's list)
    hotline = await create_case(
        session,
        kind="micro_wish",
        description="12345转来：独居老人想要一台电风扇",
        town=TOWN,
        resident_id=None,
        channel="hotline_12345",
        item="电风扇",
        category="生活物资",
        community="新围社区",
        contact_phone=DEMO_SMS_PHONE,
        actor_type="staff",
        now=now - timedelta(hours=3),
    )
    hotline.status = "accepted"
    await session.flush()
    await transition(session, case=hotline, action="claim", actor=Actor.of_staff(staff), note=None, now=now)
    session.add(
        CaseEvent(
            case_id=wish.id or 0, at=now, actor_type="staff", kind="note", note="已电话联系居民，约定周三上门"
        )
    )


async def seed_api_client(session: AsyncSession, *, now: datetime) -> None:
    """The demo's open-API client with a fixed key (development only), read-write in 厚街镇."""
    prefix = DEMO_API_KEY.split("_")[1]
    session.add(
        ApiClient(
            name=DEMO_API_CLIENT,
            key_prefix=prefix,
            key_hash=hashlib.sha256(DEMO_API_KEY.encode()).hexdigest(),
            scopes=["cases:read", "cases:write"],
            town=TOWN,
            created_at=now,
        )
    )
