"""Leads: people who offer help — in chat ("我想献爱心") or through the sign-up page — reach staff.

Every lead has a state (new → contacted → joined / declined), an assignee, a deadline (``LEAD_WORKING_DAYS`` working
days) and a reminder when it passes unanswered (``remind_leads``, a sweep). A sign-up also creates a pending
(inactive) resource that staff review: activating it adds the donor to the pool; declining records the reason.

Towns: a sign-up names its town; a chat lead does not know one yet and is shown to every town's staff until someone
takes it (it holds no case and no resident's request, only the offer of help, with numbers masked on the page)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.workdays import add_working_days
from bot.delivery.outbox import enqueue
from bot.models import Lead, Resource, Staff
from bot.pool.config import PoolError
from bot.pool.volunteers import new_volunteer_bind_code
from reference.privacy import contains_personal_number, mask_text, parse_phone_field
from reference.towns import TOWN_NAMES

LEAD_STATES: dict[str, str] = {
    "new": "新线索",
    "contacted": "已联系",
    "joined": "已加入",
    "declined": "已婉拒",
}
OPEN_LEAD_STATES = ("new", "contacted")
LEAD_SOURCES: dict[str, str] = {"chat": "微信留言", "signup": "自主报名"}
LEAD_WORKING_DAYS = 2
SIGNUP_KINDS: dict[str, str] = {
    "individual": "爱心人士",
    "enterprise": "爱心企业",
    "organisation": "社会组织",
}
WISH_CATEGORIES = ("助学", "助医", "助老", "助残", "生活物资", "就业帮扶", "心理关爱", "其他")
_CITY = ("city_supervisor", "admin")


class LeadError(PoolError):
    pass


async def record_chat_lead(session: AsyncSession, *, openid: str, text: str, now: datetime) -> Lead:
    """Someone offered help in chat: a new lead, due in ``LEAD_WORKING_DAYS`` working days."""
    lead = Lead(
        openid=openid,
        text=text[:500],
        source="chat",
        state="new",
        created_at=now,
        updated_at=now,
        due_at=add_working_days(now, LEAD_WORKING_DAYS),
    )
    session.add(lead)
    await session.flush()
    return lead


# ------------------------------------------------------------------ sign-up
@dataclass(frozen=True, slots=True)
class SignUp:
    name: str
    kind: str
    contact: str
    phone: str
    town: str
    categories: list[str]
    items: list[str]
    capacity: int
    max_fund: int | None
    listed: bool = False  # agreed to be named on the public list of donors


def check_signup(
    *,
    name: str,
    kind: str,
    contact: str,
    phone: str,
    town: str,
    categories: list[str],
    items: str,
    capacity: str,
    max_fund: str,
    listed: bool = False,
) -> SignUp:
    """The sign-up form, strictly; a LeadError says what to fix."""
    name, contact = (name or "").strip(), (contact or "").strip()
    if not name or len(name) > 64:
        raise LeadError("请填写姓名或单位名称（64字以内）")
    if kind not in SIGNUP_KINDS:
        raise LeadError("请选择身份")
    if len(contact) > 32 or contains_personal_number(contact):
        raise LeadError("联系人请填写姓名（32字以内）")
    canonical = parse_phone_field(phone)
    if canonical is None:
        raise LeadError("请填写正确的手机号码或固定电话")
    if town not in TOWN_NAMES:
        raise LeadError("请选择所在镇街")
    cats = [c for c in categories if c in WISH_CATEGORIES]
    if not cats or len(cats) != len(categories):
        raise LeadError("请至少选择一个能帮助的类别")
    things = [t.strip() for t in (items or "").replace("，", ",").replace("、", ",").split(",") if t.strip()]
    if len(things) > 20 or any(len(t) > 32 for t in things):
        raise LeadError("能提供的物品或服务请用逗号分开，每项32字以内")
    cap = (capacity or "2").strip()
    if not cap.isascii() or not cap.isdigit() or not 1 <= int(cap) <= 50:
        raise LeadError("每月能帮助的心愿数请填1到50")
    fund: int | None = None
    if (max_fund or "").strip():
        raw = max_fund.strip()
        if not raw.isascii() or not raw.isdigit() or int(raw) > 10_000_000:
            raise LeadError("资助上限请填整数金额（元）")
        fund = int(raw)
    return SignUp(name, kind, contact or name, canonical, town, cats, things, int(cap), fund, listed)


async def sign_up(session: AsyncSession, *, form: SignUp, now: datetime) -> tuple[Lead, str]:
    """A donor signs up: a pending (inactive) resource and a lead for the town's staff to review; and the one-time
    code the donor sends to the official account (``志愿者绑定 123456``) to bind their WeChat in the same flow."""
    res = Resource(
        key=f"S{secrets.token_hex(5).upper()}",
        kind=form.kind,
        name=form.name,
        contact=form.contact,
        phone=form.phone,
        categories=form.categories,
        items=form.items,
        home_town=form.town,
        towns_served=[form.town],
        capacity_open=min(form.capacity, 5),
        capacity_month=form.capacity,
        max_fund=form.max_fund,
        active=False,
        listed_at=now if form.listed else None,
        created_at=now,
        updated_at=now,
    )
    session.add(res)
    await session.flush()
    code = await new_volunteer_bind_code(session, resource=res, now=now)
    what = "、".join(form.items or form.categories)
    lead = Lead(
        openid="",
        text=f"{SIGNUP_KINDS[form.kind]}「{form.name}」报名：{what}",
        source="signup",
        state="new",
        town=form.town,
        resource_id=res.id,
        created_at=now,
        updated_at=now,
        due_at=add_working_days(now, LEAD_WORKING_DAYS),
    )
    session.add(lead)
    await session.flush()
    return lead, code


# ------------------------------------------------------------------ the inbox
@dataclass(frozen=True, slots=True)
class LeadRow:
    lead: Lead
    text: str  # numbers masked
    state_label: str
    source_label: str
    assignee: str
    overdue: bool
    resource: Resource | None


def _visible(staff: Staff) -> sa.ColumnElement[bool]:
    if staff.role in _CITY or not staff.town:
        return sa.true()
    return or_(col(Lead.town) == staff.town, col(Lead.town).is_(None))


async def inbox(
    session: AsyncSession, *, staff: Staff, now: datetime, state: str | None = None, limit: int = 200
) -> list[LeadRow]:
    stmt = select(Lead).where(_visible(staff))
    stmt = stmt.where(Lead.state == state) if state else stmt.where(col(Lead.state).in_(OPEN_LEAD_STATES))
    stmt = stmt.order_by(col(Lead.due_at), col(Lead.id)).limit(limit)
    leads = list((await session.exec(stmt)).all())
    names = {s.id: s.display_name or s.username for s in (await session.exec(select(Staff))).all()}
    out = []
    for lead in leads:
        res = await session.get(Resource, lead.resource_id) if lead.resource_id else None
        out.append(
            LeadRow(
                lead=lead,
                text=mask_text(lead.text),
                state_label=LEAD_STATES.get(lead.state, lead.state),
                source_label=LEAD_SOURCES.get(lead.source, lead.source),
                assignee=names.get(lead.assigned_to_id, "") if lead.assigned_to_id else "",
                overdue=lead.state in OPEN_LEAD_STATES and lead.due_at is not None and lead.due_at <= now,
                resource=res,
            )
        )
    return out


async def _lead_for(session: AsyncSession, *, lead_id: int, staff: Staff) -> Lead:
    lead = (await session.exec(select(Lead).where(Lead.id == lead_id, _visible(staff)))).first()
    if lead is None:
        raise LeadError("找不到这条线索")
    return lead


async def update_lead(
    session: AsyncSession, *, lead_id: int, staff: Staff, state: str, note: str, take: bool, now: datetime
) -> Lead:
    """Staff record what happened: a new state, a note, taking the lead (it becomes their town's and theirs)."""
    lead = await _lead_for(session, lead_id=lead_id, staff=staff)
    if state not in LEAD_STATES:
        raise LeadError("请选择状态")
    note = (note or "").strip()
    if state == "declined" and not note:
        raise LeadError("请填写婉拒的原因")
    if len(note) > 200:
        raise LeadError("备注请控制在200字以内")
    if lead.resource_id and state == "joined":
        raise LeadError("报名的爱心资源请用“审核通过”加入资源库")
    lead.state = state
    if note:
        lead.note = note
    if take:
        lead.assigned_to_id = staff.id
        lead.town = lead.town or staff.town
    if state in OPEN_LEAD_STATES and state != "new":
        lead.due_at = add_working_days(now, LEAD_WORKING_DAYS)  # the next follow-up
        lead.reminded_at = None
    lead.handled = state not in OPEN_LEAD_STATES
    lead.updated_at = now
    session.add(lead)
    await session.flush()
    return lead


async def review_signup(
    session: AsyncSession, *, lead_id: int, staff: Staff, activate: bool, reason: str, now: datetime
) -> Lead:
    """Activate a signed-up resource (it joins the pool) or decline it with a reason."""
    lead = await _lead_for(session, lead_id=lead_id, staff=staff)
    res = await session.get(Resource, lead.resource_id) if lead.resource_id else None
    if res is None:
        raise LeadError("这条线索没有报名资料")
    if lead.state not in OPEN_LEAD_STATES:
        raise LeadError("这条报名已经审核过了")
    if staff.role not in _CITY and staff.town != res.home_town:
        raise LeadError("只能审核本镇街的报名")
    reason = (reason or "").strip()
    if activate:
        res.active = True
        res.updated_at = now
        session.add(res)
        lead.state = "joined"
    else:
        if not reason:
            raise LeadError("请填写婉拒的原因")
        lead.state = "declined"
        lead.note = reason[:200]
    lead.assigned_to_id = lead.assigned_to_id or staff.id
    lead.handled = True
    lead.updated_at = now
    session.add(lead)
    await session.flush()
    return lead


async def remind_leads(session: AsyncSession, *, now: datetime, batch: int = 200) -> int:
    """Leads past their deadline, not yet reminded: the assignee (or the town's staff, or every town's when the
    town is not known) hears about it once per deadline."""
    stmt = (
        select(Lead)
        .where(
            col(Lead.state).in_(OPEN_LEAD_STATES), col(Lead.due_at) <= now, col(Lead.reminded_at).is_(None)
        )
        .order_by(col(Lead.due_at))
        .limit(batch)
    )
    leads = list((await session.exec(stmt)).all())
    for lead in leads:
        if lead.assigned_to_id:
            targets = [s for s in [await session.get(Staff, lead.assigned_to_id)] if s is not None]
        else:
            q = select(Staff).where(col(Staff.active), col(Staff.role).in_(("town_staff", "town_supervisor")))
            if lead.town:
                q = q.where(Staff.town == lead.town)
            targets = list((await session.exec(q)).all())
        source = LEAD_SOURCES.get(lead.source, "")
        for s in targets:
            if s.openid:
                await enqueue(
                    session,
                    openid=s.openid,
                    recipient_type="staff",
                    kind="reminder",
                    text=f"有一条爱心线索（{source}）已超过跟进期限，请尽快联系并在线索页面更新状态。",
                    template={"status": "爱心线索待跟进"},
                    dedupe_key=f"lead-remind:{lead.id}:{lead.due_at.isoformat() if lead.due_at else ''}:{s.id}",
                    now=now,
                )
        lead.reminded_at = now
        session.add(lead)
    await session.flush()
    return len(leads)
