"""Test data built in each test: staff, residents, cases, resources, offers, and hostile spreadsheet files.

Append new factories; never import from a test module."""

from __future__ import annotations

import io
import itertools
import os
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from bot import keys
from bot.cases.access import create_staff
from bot.cases.communities import resolve as resolve_community
from bot.cases.numbering import create_case
from bot.db import transaction
from bot.delivery.links import sign_link, sign_short
from bot.models import (
    CallBack,
    CallTask,
    Case,
    CaseEvent,
    InboundMessage,
    Notice,
    Offer,
    Resident,
    Resource,
    Staff,
    Survey,
)
from bot.pool.leads import check_signup, record_chat_lead, sign_up
from bot.pool.wall import check_claim_form, claim_wish, confirm_claim, fulfil_claim, publish
from bot.pool.wallgroup import claim_group

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Dongguan
PASSWORD = "Passw0rd!x"
TOWN, OTHER = "厚街镇", "虎门镇"


# ---------------------------------------------------------------------------------------------- the pool
async def mk_resource(
    db,
    key: str,
    *,
    town: str = TOWN,
    categories=("助残",),
    items=("轮椅",),
    openid: str | None = None,
    served: list[str] | None = None,
    capacity_open: int = 2,
    capacity_month: int = 4,
    accepts: int = 0,
    declines: int = 0,
    name: str | None = None,
    active: bool = True,
    phone: str = "13800001111",
) -> Resource:
    r = Resource(
        key=key,
        kind="individual",
        name=name or f"志愿者{key}",
        contact=name or f"联系人{key}",
        phone=phone,
        openid=openid,
        categories=list(categories),
        items=list(items),
        home_town=town,
        towns_served=served if served is not None else [town],
        capacity_open=capacity_open,
        capacity_month=capacity_month,
        accepts=accepts,
        declines=declines,
        active=active,
        created_at=NOW,
        updated_at=NOW,
    )
    db.add(r)
    await db.flush()
    return r


async def mk_wish(
    db,
    *,
    town: str = TOWN,
    category: str = "助残",
    item: str | None = "轮椅",
    status: str = "claimed",
    owner: int | None = None,
    resident_openid: str | None = None,
    phone: str = "13912345678",
    now: datetime = NOW,
) -> Case:
    r = Resident(openid=resident_openid or f"o-res-{os.urandom(4).hex()}", phone=phone)
    db.add(r)
    await db.flush()
    c = await create_case(
        db,
        kind="micro_wish",
        description="家里老人腿脚不便，需要一辆轮椅",
        town=town,
        resident_id=r.id,
        community="新围社区",
        category=category,
        item=item,
        address="新围村三巷8号",
        beneficiary="陈伯",
        contact_phone=phone,
        now=now,
    )
    c.status = status
    c.claimed_by_id = owner
    await db.flush()
    return c


async def mk_staff(
    db, username: str, role: str = "town_staff", town: str | None = TOWN, openid: str | None = None
) -> Staff:
    s = await create_staff(
        db,
        username=username,
        password=PASSWORD,
        role=role,
        town=town,
        community="新围社区" if role == "community_worker" else None,
        display_name=username,
    )
    if openid:
        s.openid = openid
        await db.flush()
    return s


# ---------------------------------------------------------------------------------------------- through a session factory
# (each opens and commits its own transaction: for tests that hold the app's ``sessions``, not a ``db``)
async def add_staff(
    sessions: Any, username: str, role: str, town: str | None = TOWN, community: str | None = None
) -> Staff:
    """A staff account with password ``PASSWORD``; community workers get 新围社区 unless told otherwise."""
    async with transaction(sessions) as db:
        return await create_staff(
            db,
            username=username,
            password=PASSWORD,
            role=role,
            town=town,
            community=community or ("新围社区" if role == "community_worker" else None),
            display_name=username,
        )


async def add_resident(sessions: Any, *, openid: str | None = None, phone: str = "13812345678") -> Resident:
    async with transaction(sessions) as db:
        r = Resident(openid=openid or f"o-{os.urandom(4).hex()}", phone=phone)
        db.add(r)
        await db.flush()
        return r


async def add_case(
    sessions: Any,
    *,
    town: str = TOWN,
    status: str = "submitted",
    owner: int | None = None,
    community: str = "新围社区",
    desc: str = "家里老人需要轮椅",
    deadline: datetime | None = None,
    kind: str = "micro_wish",
    now: datetime = NOW,
) -> Case:
    """A case numbered by the real ``create_case``, filed by a new resident, put straight into ``status``."""
    async with transaction(sessions) as db:
        r = Resident(openid=f"o-{os.urandom(4).hex()}", phone="13812345678")
        db.add(r)
        await db.flush()
        c = await create_case(
            db, kind=kind, description=desc, town=town, resident_id=r.id, community=community, now=now
        )
        c.status = status
        c.claimed_by_id = owner
        c.stage_deadline = deadline
        await db.flush()
        return c


async def add_offer(
    sessions: Any, *, case_id: int, resource_id: int, status: str = "offered", **fields: Any
) -> Offer:
    """An offer of a resource for a case, offered at ``NOW`` unless told otherwise."""
    async with transaction(sessions) as db:
        o = Offer(case_id=case_id, resource_id=resource_id, status=status, **{"offered_at": NOW, **fields})
        db.add(o)
        await db.flush()
        return o


async def add_rows(sessions: Any, *objs: Any) -> tuple[Any, ...]:
    """Add model rows as they are (for seeded figures) in one transaction."""
    async with transaction(sessions) as db:
        for o in objs:
            if isinstance(o, Case) and o.community and o.community_id is None:
                # as the app stores a case: the registry's id beside the name (when the name is on the list)
                row = await resolve_community(db, town=o.town, name=o.community)
                o.community_id = row.id if row is not None else None
            db.add(o)
        await db.flush()
    return objs


# ---------------------------------------------------------------------------------------------- bare rows (figures)
STATS_NOW = datetime(2026, 3, 18, 4, 0, tzinfo=UTC)  # Wednesday 12:00 China time
_seq = itertools.count(1)


def case_row(
    *,
    town: str = TOWN,
    kind: str = "micro_wish",
    status: str = "submitted",
    created: datetime = STATS_NOW - timedelta(days=2),
    completed: datetime | None = None,
    category: str | None = "助老",
    item: str | None = None,
    channel: str = "wechat",
    community: str | None = "新围社区",
    deadline: datetime | None = None,
    description: str = "",
) -> Case:
    """A bare ``Case`` row (not through ``create_case``) with a unique test number, for seeded figures."""
    return Case(
        case_no=f"MS-T{next(_seq):06d}",
        kind=kind,
        status=status,
        town=town,
        category=category,
        item=item,
        channel=channel,
        community=community,
        created_at=created,
        updated_at=created,
        completed_at=completed,
        stage_deadline=deadline,
        description=description,
    )


# ---------------------------------------------------------------------------------------------- hostile files
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def raw_xlsx(sheet_xml: str, *, extra: dict[str, bytes] | None = None) -> bytes:
    """A minimal XLSX written by hand (no library fixes what the sheet claims)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def _inline_row(r: int, values: list[str]) -> str:
    from openpyxl.utils import get_column_letter

    cells = "".join(
        f'<c r="{get_column_letter(i)}{r}" t="inlineStr"><is><t>{v}</t></is></c>'
        for i, v in enumerate(values, 1)
    )
    return f'<row r="{r}">{cells}</row>'


POOL_HEADER = ["编号", "类型", "名称", "电话", "服务类别", "所在镇街"]
POOL_ROW = ["R1", "热心市民", "厚街爱心米店", "13800001111", "助残", "厚街"]


def lying_dimension_xlsx(*, corner_value: bool = False) -> bytes:
    """About 1.5 KB: a header and one good record, a ``<dimension>`` that claims the whole sheet (A1:XFD1048576,
    17 billion cells), and a last row element at 1048576 — empty (as a formatted row), or with values in A and XFD."""
    last = '<c r="A1048576"><v>1</v></c><c r="XFD1048576"><v>1</v></c>' if corner_value else ""
    return raw_xlsx(
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<dimension ref="A1:XFD1048576"/><sheetData>'
        f'{_inline_row(1, POOL_HEADER)}{_inline_row(2, POOL_ROW)}<row r="1048576">{last}</row>'
        "</sheetData></worksheet>"
    )


def wide_xlsx(columns: int = 5_000, rows: int = 3) -> bytes:
    """A sheet whose rows are ``columns`` cells wide."""
    from openpyxl.utils import get_column_letter

    body = "".join(
        f'<row r="{r}">'
        + "".join(f'<c r="{get_column_letter(c)}{r}"><v>{c}</v></c>' for c in range(1, columns + 1))
        + "</row>"
        for r in range(1, rows + 1)
    )
    return raw_xlsx(
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{body}</sheetData></worksheet>"
    )


def zip_bomb_xlsx(megabytes: int = 64) -> bytes:
    """A valid small sheet plus a member that inflates to ``megabytes`` MB of zeros."""
    return raw_xlsx(
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c></row></sheetData></worksheet>',
        extra={"xl/media/padding.bin": b"\0" * (megabytes * 1024 * 1024)},
    )


def long_field_csv(chars: int = 200_000) -> bytes:
    """A pool CSV with one quoted field of ``chars`` characters (over the csv module's 128 KB field limit)."""
    header = "编号,类型,名称,电话,服务类别,所在镇街\n"
    return (header + f'R1,热心市民,"{"长" * chars}",13800001111,助残,厚街\n').encode("utf-8")


# ---------------------------------------------------------------------------------------------- every page, seeded
#: the link secret the browser tests' app signs with; the resident's latest message on the seeded wish
PAGE_LINK_SECRET = "l" * 40
LATEST_MESSAGE = "门口有两级台阶，轮椅推不进来，能不能顺便帮忙看看"


@dataclass
class Site:
    app: Any  # the aiohttp application, served at `base`
    base: str
    wish_no: str = ""
    project_no: str = ""
    resident_token: str = ""
    survey_token: str = ""
    survey_short: str = ""  # the short survey link of a text message (/s/<token>)
    offer_pending: str = ""
    offer_mine: str = ""
    tasks_token: str = ""
    notice_id: int = 0
    resource_key: str = "R001"
    wall_id: str = ""  # 圆梦墙: a published wish's public id
    wall_claim: str = ""  # the donor's page token of a confirmed claim
    wall_done: str = ""  # the donor's page token of a fulfilled claim (thanks and the certificate)
    wall_group: str = ""  # a group claim's page token
    micro_project: int = 0  # 微实事: an approved project under way, its round, and a vote page's token
    project_round: int = 0
    #: a proposal its round's 联席会议 missed (not visited): its page offers a later round
    project_late: int = 0
    vote_token: str = ""
    #: (name, path, role) — role is None (anyone), "staff" (town staff) or "admin" (city admin)
    pages: list[tuple[str, str, str | None]] = field(default_factory=list)


def _page_token(kind: str, subject: int) -> str:
    # a long life: the resident view checks expiry against the real clock, the others against the app clock
    return sign_link(PAGE_LINK_SECRET, kind, subject, ttl=3650 * 86400, now=NOW.timestamp())


async def seed_every_page(site: Site) -> None:
    """One case in every state a page family shows, and `site.pages`: every page a person can open, by role."""
    async with transaction(site.app[keys.SESSIONS]) as db:
        worker = await create_staff(
            db, username="hj-staff", password=PASSWORD, role="town_staff", town=TOWN, display_name="厚街小陈"
        )
        await create_staff(db, username="city-admin", password=PASSWORD, role="admin", town=None)
        resident = Resident(openid="o-a11y-resident", phone="13812345678")
        db.add(resident)
        await db.flush()
        assert resident.id
        wish = await create_case(
            db,
            kind="micro_wish",
            description="奶奶中风后走不了路，想申请一辆轮椅，家住二楼",
            town=TOWN,
            resident_id=resident.id,
            item="轮椅",
            category="助残",
            community="新围社区",
            address="新围村三巷8号",
            beneficiary="陈奶奶",
            now=NOW - timedelta(days=2),
        )
        wish.status = "claimed"
        wish.claimed_by_id = worker.id
        project = await create_case(
            db,
            kind="micro_project",
            description="巷口路灯坏了，晚上老人出门看不清路",
            town=TOWN,
            resident_id=resident.id,
            community="新围社区",
            now=NOW - timedelta(days=1),
        )
        project.status = "completed"
        await db.flush()
        assert wish.id and project.id
        db.add(
            CaseEvent(
                case_id=wish.id,
                at=NOW - timedelta(hours=5),
                actor_type="staff",
                kind="question",
                note="请问家门口的门宽大约多少厘米？",
            )
        )
        db.add(
            CaseEvent(
                case_id=wish.id,
                at=NOW - timedelta(hours=4),
                actor_type="resident",
                kind="answer",
                note="大概八十厘米",
            )
        )
        for i, text in enumerate(["喂 你好 我奶奶走不了路 想要个轮椅", "大概八十厘米", LATEST_MESSAGE]):
            db.add(
                InboundMessage(
                    delivery_key=f"a11y-{i}",
                    openid=resident.openid,
                    resident_id=resident.id,
                    msg_type="text",
                    text=text,
                    case_id=wish.id,
                    reply_mode="none",
                    received_at=NOW - timedelta(hours=6 - i),
                )
            )
        resources = []
        for n in range(5):
            r = Resource(
                key=f"R00{n + 1}",
                kind="individual",
                name=f"爱心人士{n + 1}",
                contact=f"联系人{n + 1}",
                phone=f"1380000111{n}",
                openid=f"o-a11y-vol-{n}" if n % 2 == 0 else None,
                categories=["助残"],
                items=["轮椅"],
                home_town=TOWN,
                towns_served=[TOWN],
                created_at=NOW,
                updated_at=NOW,
            )
            db.add(r)
            resources.append(r)
        await db.flush()
        pending = Offer(
            case_id=wish.id,
            resource_id=resources[0].id or 0,
            status="offered",
            offered_at=NOW - timedelta(hours=1),
            deadline=NOW + timedelta(hours=20),
        )
        # the accepted offer belongs to another wish so the first wish still shows its candidates
        other = await create_case(
            db,
            kind="micro_wish",
            description="想要一台助听器",
            town=TOWN,
            resident_id=resident.id,
            item="助听器",
            category="助残",
            now=NOW,
        )
        other.status = "dispatched"
        await db.flush()
        mine = Offer(
            case_id=other.id or 0,
            resource_id=resources[0].id or 0,
            status="accepted",
            offered_at=NOW - timedelta(hours=3),
            answered_at=NOW - timedelta(hours=2),
        )
        db.add_all([pending, mine])
        survey = Survey(
            case_id=project.id,
            resident_id=resident.id,
            status="sent",
            sent_at=NOW,
            deadline=NOW + timedelta(days=3),
        )
        db.add(survey)
        notice = Notice(
            title="厚街镇助残微心愿征集",
            body="本月征集轮椅、助听器等助残物品。\n欢迎报名。",
            town=TOWN,
            published_at=NOW,
        )
        db.add(notice)
        await db.flush()
        site.wish_no, site.project_no = wish.case_no, project.case_no
        site.resident_token = _page_token("my_cases", resident.id)
        site.survey_token = _page_token("survey", survey.id or 0)
        site.survey_short = sign_short(
            PAGE_LINK_SECRET, "survey", survey.id or 0, ttl=3650 * 86400, now=NOW.timestamp()
        )
        # the staff call queue: one call task (nobody reached) and one call-back request (asked for a person)
        db.add(
            CallTask(
                case_id=wish.id or 0,
                town=TOWN,
                phone="13912345678",
                reason="微信和短信都无法送达，请电话回访",
                created_at=NOW,
                due_at=NOW + timedelta(days=1),
            )
        )
        db.add(
            CallBack(
                town=TOWN,
                phone="13712345678",
                note="想找人问问轮椅的事",
                created_at=NOW,
                due_at=NOW + timedelta(hours=6),
            )
        )
        site.offer_pending = _page_token("offer", pending.id or 0)
        site.offer_mine = _page_token("offer", mine.id or 0)
        site.tasks_token = _page_token("tasks", resources[0].id or 0)
        site.notice_id = notice.id or 0
    await _seed_wall(site)
    await _seed_projects(site)
    site.pages = [
        ("public-home", "/public", None),
        ("public-notices", "/public/notices", None),
        ("public-notice", f"/public/notices/{site.notice_id}", None),
        ("resident-cases", f"/my/cases?t={site.resident_token}", None),
        ("resident-case", f"/my/cases/{site.wish_no}?t={site.resident_token}", None),
        ("survey", f"/survey/{site.survey_token}", None),
        ("survey-short", f"/s/{site.survey_short}", None),
        ("volunteer-offer", f"/v/offer/{site.offer_pending}", None),
        ("volunteer-offer-accepted", f"/v/offer/{site.offer_mine}", None),
        ("volunteer-tasks", f"/v/tasks?t={site.tasks_token}", None),
        ("wall", "/wall", None),
        ("wall-wish", f"/wall/{site.wall_id}", None),
        ("wall-donor", f"/wall/claims/{site.wall_claim}", None),
        ("wall-donor-fulfilled", f"/wall/claims/{site.wall_done}", None),
        ("wall-group", "/wall/group", None),
        ("wall-group-donor", f"/wall/groups/{site.wall_group}", None),
        ("wall-near", "/wall?lat=22.95&lon=113.67", None),
        ("donor-signup", "/donate", None),
        ("staff-login", "/staff/login", None),
        ("staff-queue", "/staff/cases", "staff"),
        ("staff-case", f"/staff/cases/{site.wish_no}", "staff"),
        ("staff-case-done", f"/staff/cases/{site.project_no}", "staff"),
        ("staff-new", "/staff/cases/new", "staff"),
        ("staff-account", "/staff/account", "staff"),
        ("staff-outbox", "/staff/outbox", "staff"),
        ("staff-calls", "/staff/calls", "staff"),
        ("staff-pool", "/staff/pool", "staff"),
        ("staff-pool-resource", f"/staff/pool/{site.resource_key}", "staff"),
        ("staff-pool-import", "/staff/pool/import", "admin"),
        ("staff-batch", "/staff/batch", "admin"),
        ("staff-stats", "/staff/stats", "admin"),
        ("staff-charts", "/staff/stats/charts", "admin"),
        ("staff-charts-town", "/staff/stats/charts", "staff"),
        ("staff-notices", "/staff/notices", "admin"),
        ("staff-audit", "/staff/audit", "admin"),
        ("staff-wall-publish", f"/staff/cases/{site.wish_no}/wall", "staff"),
        ("staff-wall", "/staff/wall", "staff"),
        ("staff-leads", "/staff/leads", "staff"),
        ("admin-staff", "/staff/admin/staff", "admin"),
        ("admin-categories", "/staff/admin/categories", "admin"),
        ("admin-deadlines", "/staff/admin/deadlines", "admin"),
        ("staff-communities", "/staff/communities", "staff"),
        ("admin-communities", "/staff/communities?town=厚街镇", "admin"),
        ("staff-policies", "/staff/policies", "admin"),
        ("staff-funds", "/staff/funds", "staff"),
        ("staff-league", "/staff/league", "admin"),
        ("staff-warnings", "/staff/warnings", "staff"),
        ("staff-erasure", "/staff/erasure", "admin"),
        ("staff-projects", "/staff/projects", "staff"),
        ("staff-project", f"/staff/projects/{site.micro_project}", "staff"),
        ("staff-project-round", f"/staff/projects/rounds/{site.project_round}", "staff"),
        ("staff-project-carry", f"/staff/projects/{site.project_late}", "staff"),
        ("public-projects", "/public/projects", None),
        ("public-project", f"/public/projects/{site.micro_project}", None),
        ("project-vote", f"/vote/{site.vote_token}", None),
        ("staff-duties", "/staff/duties", "admin"),
        ("staff-duties-town", "/staff/duties", "staff"),
        ("staff-town-supervision", "/staff/town-supervision", "admin"),
        ("staff-town-supervision-town", "/staff/town-supervision", "staff"),
        ("error-404", "/no-such-page", None),
        ("error-403", "/my/cases?t=forged", None),
        ("error-405", f"/staff/cases/{site.wish_no}/phone", "staff"),
    ]


async def _seed_wall(site: Site) -> None:
    """圆梦墙 for the page list: two published wishes of the town, one claimed and confirmed (the donor's page), a
    chat lead and a sign-up in the leads inbox."""
    async with transaction(site.app[keys.SESSIONS]) as db:
        worker = (await db.exec(select(Staff).where(Staff.username == "hj-staff"))).one()
        open_wish = await mk_wish(db, owner=worker.id, now=NOW - timedelta(days=3))
        w = await publish(
            db,
            case=open_wish,
            staff=worker,
            text="一位行动不便的老人需要一辆轮椅",
            handover="community_centre",
            now=NOW - timedelta(days=3),
        )
        claimed = await mk_wish(db, owner=worker.id, item="书包", category="助学")
        w2 = await publish(
            db,
            case=claimed,
            staff=worker,
            text="一名三年级女生需要一个新书包",
            handover="door_with_staff",
            now=NOW,
        )
        form = check_claim_form(
            donor_name="厚街爱心党支部", donor_type="party_branch", phone="13600001111", message="好好学习"
        )
        c = await claim_wish(db, public_id=w2.public_id, form=form, now=NOW, hold=timedelta(days=3650))
        await confirm_claim(db, claim_id=c.id or 0, staff=worker, now=NOW)
        await record_chat_lead(db, openid="o-a11y-lead", text="我想献爱心，可以捐大米", now=NOW)
        signup = check_signup(
            name="厚街爱心粮油店",
            kind="enterprise",
            contact="林经理",
            phone="13700001234",
            town=TOWN,
            categories=["生活物资"],
            items="大米, 食用油",
            capacity="3",
            max_fund="",
        )
        await sign_up(db, form=signup, now=NOW)
        site.wall_id, site.wall_claim = w.public_id, c.token
        # a fulfilled claim whose resident said thanks, and a group claim of two wishes by a party branch
        done = await mk_wish(db, owner=worker.id, item="助听器", category="助残")
        w3 = await publish(
            db,
            case=done,
            staff=worker,
            text="一位听力不好的老人需要一台助听器",
            handover="community_centre",
            now=NOW,
        )
        form3 = check_claim_form(
            donor_name="东莞爱心五金厂", donor_type="enterprise", phone="13600004444", message="祝您听得清楚"
        )
        c3 = await claim_wish(
            db, public_id=w3.public_id, form=form3, now=NOW, hold=timedelta(days=3650), listed=True
        )
        await confirm_claim(db, claim_id=c3.id or 0, staff=worker, now=NOW)
        await fulfil_claim(db, claim_id=c3.id or 0, staff=worker, note="已送到社区", now=NOW)
        c3.thanks, c3.thanks_at = "助听器很好用，谢谢你们！", NOW
        group_ids = []
        for text in ("一户困难家庭需要一袋大米", "一位独居老人需要一床冬被"):
            case = await mk_wish(db, owner=worker.id, item=None, category="生活物资")
            group_ids.append(
                (
                    await publish(
                        db, case=case, staff=worker, text=text, handover="community_centre", now=NOW
                    )
                ).public_id
            )
        group = await claim_group(
            db,
            public_ids=group_ids,
            form=check_claim_form(
                donor_name="厚街某社区党支部", donor_type="party_branch", phone="13600005555", message=""
            ),
            now=NOW,
            hold=timedelta(days=3650),
        )
        site.wall_done, site.wall_group = c3.token, group.token


async def _seed_projects(site: Site) -> None:
    """微实事 for the page list: a round whose 联席会议 chose one of two visited proposals, approved with city and
    sponsor money, under way with an answered objection; a second round with the residents' vote open."""
    # lazy: only the page list needs the project domain
    from bot.cases.actors import Actor
    from bot.cases.supervision_town import press_town
    from bot.projects import service as svc
    from bot.projects.votes import open_vote

    async with transaction(site.app[keys.SESSIONS]) as db:
        lead = await create_staff(
            db,
            username="hj-lead",
            password=PASSWORD,
            role="town_supervisor",
            town=TOWN,
            display_name="厚街负责人",
        )
        actor = Actor.of_staff(lead)
        case = (await db.exec(select(Case).where(Case.case_no == site.project_no))).one()
        start = NOW - timedelta(days=30)
        r1 = await svc.create_round(
            db, town=TOWN, name="2026年第一批", objection_days=5, actor=actor, now=start
        )
        a = await svc.propose(
            db,
            round_=r1,
            title="新围村巷口修复路灯",
            summary="巷口两盏路灯损坏，更换为LED路灯。",
            community="新围社区",
            category="照明",
            source="chat",
            case=case,
            actor=actor,
            now=start,
        )
        b = await svc.propose(
            db,
            round_=r1,
            title="新围公园增设长椅",
            summary="议事会提出增设长椅。",
            community="新围社区",
            category="文体设施",
            source="consultation",
            actor=actor,
            now=start,
        )
        late = await svc.propose(
            db,
            round_=r1,
            title="涌口市场加装雨棚",
            summary="市场入口无遮挡，雨天湿滑。",
            community="涌口社区",
            category="其他",
            source="staff",
            actor=actor,
            now=start,
        )  # not visited before the meeting: to be carried to a later round
        for p in (a, b):
            await svc.visit(db, project=p, notes="已到现场查看", photos=[], actor=actor, now=start)
        await svc.hold_meeting(
            db,
            round_=r1,
            attendees="公共服务办、住建、城管",
            minutes="研究了两个提案。",
            decisions={a.id or 0: ("selected", ""), b.id or 0: ("rejected", "已列入年度计划")},
            actor=actor,
            now=start + timedelta(days=1),
        )
        await svc.approve(
            db,
            project=a,
            funding=[
                svc.FundingLine("city", 1_200_000),
                svc.FundingLine("sponsor", 100_000, "厚街某照明公司", True),
            ],
            unit="厚街镇市政所",
            due=(NOW + timedelta(days=60)).date(),
            actor=actor,
            now=start + timedelta(days=2),
        )
        o = await svc.raise_objection(
            db, project=a, text="灯太亮", channel="public", now=start + timedelta(days=3)
        )
        await svc.answer_objection(
            db,
            project=a,
            objection_id=o.id or 0,
            answer="将加装遮光罩",
            actor=actor,
            now=start + timedelta(days=4),
        )
        await svc.add_stage(
            db,
            project=a,
            name="开工",
            note="施工队进场",
            photos=[],
            spent_fen=500_000,
            actor=actor,
            now=start + timedelta(days=12),
        )
        r2 = await svc.create_round(
            db, town=TOWN, name="2026年第二批", objection_days=5, actor=actor, now=NOW
        )
        for title in ("学校门口增设减速带", "菜市场旁疏通排水沟"):
            p = await svc.propose(
                db,
                round_=r2,
                title=title,
                summary=title,
                community="新围社区",
                category="道路交通",
                source="staff",
                actor=actor,
                now=NOW,
            )
            await svc.visit(db, project=p, notes="已到现场查看", photos=[], actor=actor, now=NOW)
        await open_vote(db, round_=r2, closes_at=NOW + timedelta(days=3650), actor=actor, now=NOW)
        city = (await db.exec(select(Staff).where(Staff.username == "city-admin"))).one()
        await press_town(
            db,
            town=TOWN,
            actor=Actor.of_staff(city),
            request="本月逾期未办结的微心愿较多，请说明原因",
            days=5,
            now=NOW,
        )
        site.micro_project, site.project_round = a.id or 0, r1.id or 0
        site.project_late = late.id or 0
        site.vote_token = sign_link(
            PAGE_LINK_SECRET, "vote", f"{r2.id}-{case.resident_id}", ttl=3650 * 86400, now=NOW.timestamp()
        )
