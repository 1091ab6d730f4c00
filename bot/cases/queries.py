"""Read models of the staff pages (no aiohttp, no writes): the messages sent about a case and the failed ones
in a staff member's scope, with their errors in plain Chinese; flagged cases and their counts; a case's deadline
state. Every query starts from the staff member's jurisdiction (bot.cases.access.cases_query)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.access import DUE_SOON, QueuePage, QueueRow, cases_query, mask_phone, staff_names
from bot.cases.actors import CITY_ROLES, SUPERVISORS
from bot.cases.callqueue import CallCounts, call_count_selects, call_counts_of
from bot.cases.lifecycle import OPEN_STATES
from bot.delivery.dispatcher import KIND_TITLE
from bot.models import Case, Outbox, Resident, Resource, Staff
from reference import privacy

# ------------------------------------------------------------------ deliveries
OUTBOX_STATUS_LABEL = {
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "failed": "发送失败",
    "unreachable": "无法送达",
}
OUTBOX_CHANNEL_LABEL = {"custom": "客服消息", "template": "模板消息"}
RECIPIENT_LABEL = {"resident": "居民", "staff": "工作人员", "volunteer": "志愿者"}
RETRYABLE_STATUSES = ("failed", "unreachable")
_ERRCODE_TEXT = {
    -1: "微信系统繁忙或网络不通，多次重试仍未成功",
    40001: "微信接口凭证失效，刷新后仍未成功",
    42001: "微信接口凭证过期，刷新后仍未成功",
    40003: "对方的微信身份无效（可能不是本公众号的用户）",
    43004: "对方已取消关注公众号，微信消息无法送达，请电话联系",
    43101: "对方拒收订阅消息",
    45015: "对方超过48小时没有和公众号互动，客服消息无法发送",
    45047: "客服消息已超过微信的条数限制",
    40037: "消息模板编号无效，请管理员检查模板设置",
    47003: "消息模板的内容不符合微信要求",
}


def explain_error(last_error: str | None) -> str:
    """The dispatcher's `last_error` ("43004 require subscribe …") in plain Chinese for staff."""
    if not last_error:
        return ""
    head, _, rest = last_error.strip().partition(" ")
    try:
        code = int(head)
    except ValueError:
        return "发送出错"
    if code == -1 and rest.startswith("internal"):
        return "系统内部错误，请联系管理员"
    if code == -1 and ("timeout" in rest.lower() or "timed out" in rest.lower()):
        return "连接微信超时，多次重试仍未成功"
    return _ERRCODE_TEXT.get(code, f"微信返回错误（代码{code}）")


@dataclass(slots=True)
class DeliveryRow:
    row: Outbox
    what: str
    recipient: str
    status: str
    channel: str
    error: str
    case_no: str | None = None

    @property
    def retryable(self) -> bool:
        return self.row.status in RETRYABLE_STATUSES

    @property
    def problem(self) -> bool:
        return self.row.status in RETRYABLE_STATUSES


async def _recipient_names(session: AsyncSession, rows: list[Outbox]) -> dict[tuple[str, str], str]:
    """Who each message went to, as staff may see it: a colleague's or a volunteer's name, a resident's masked
    phone (or masked WeChat id when no phone is known)."""
    by_type: dict[str, set[str]] = {}
    for r in rows:
        by_type.setdefault(r.recipient_type, set()).add(r.openid)
    names: dict[tuple[str, str], str] = {}
    if ids := by_type.get("staff"):
        for openid, name, user in await session.exec(
            select(Staff.openid, Staff.display_name, Staff.username).where(col(Staff.openid).in_(ids))
        ):
            names["staff", str(openid)] = f"工作人员 {name or user}"
    if ids := by_type.get("volunteer"):
        for openid, name in await session.exec(
            select(Resource.openid, Resource.name).where(col(Resource.openid).in_(ids))
        ):
            names["volunteer", str(openid)] = f"志愿者 {name}"
    if ids := by_type.get("resident"):
        for openid, phone in await session.exec(
            select(Resident.openid, Resident.phone).where(col(Resident.openid).in_(ids))
        ):
            names["resident", openid] = f"居民 {mask_phone(phone) if phone else privacy.mask_openid(openid)}"
    for r in rows:
        label = RECIPIENT_LABEL.get(r.recipient_type, r.recipient_type)
        names.setdefault((r.recipient_type, r.openid), f"{label} {privacy.mask_openid(r.openid)}")
    return names


async def delivery_rows(
    session: AsyncSession, rows: list[Outbox], *, case_numbers: Mapping[int, str] | None = None
) -> list[DeliveryRow]:
    names = await _recipient_names(session, rows)
    return [
        DeliveryRow(
            row=r,
            what=KIND_TITLE.get(r.kind, "消息"),
            recipient=names[r.recipient_type, r.openid],
            status=OUTBOX_STATUS_LABEL.get(r.status, r.status),
            channel=OUTBOX_CHANNEL_LABEL.get(r.channel or "", "—"),
            error=explain_error(r.last_error),
            case_no=(case_numbers or {}).get(r.case_id or 0),
        )
        for r in rows
    ]


async def case_deliveries(session: AsyncSession, *, case: Case, limit: int = 100) -> list[DeliveryRow]:
    """The messages sent about one case (the caller has already checked jurisdiction over the case)."""
    rows = list(
        await session.exec(
            select(Outbox)
            .where(Outbox.case_id == case.id)
            .order_by(col(Outbox.created_at).desc(), col(Outbox.id).desc())
            .limit(limit)
        )
    )
    return await delivery_rows(session, rows)


def _outbox_scope(staff: Staff) -> Any:
    """The outbox rows a staff member may see and retry: those about cases in their jurisdiction; a town
    supervisor also the case-less messages to their town's staff (digests); city roles everything."""
    if staff.role in CITY_ROLES:
        return None
    in_cases = col(Outbox.case_id).in_(cases_query(staff).with_only_columns(col(Case.id)))
    if staff.role not in SUPERVISORS:
        return in_cases
    town_staff = select(Staff.openid).where(
        Staff.town == (staff.town or "\x00"), col(Staff.openid).is_not(None)
    )
    return or_(
        in_cases,
        and_(
            col(Outbox.case_id).is_(None),
            col(Outbox.recipient_type) == "staff",
            col(Outbox.openid).in_(town_staff),
        ),
    )


async def failed_deliveries(
    session: AsyncSession, *, staff: Staff, page: int = 1, per_page: int = 30
) -> tuple[list[DeliveryRow], bool]:
    """Failed and unreachable messages in the staff member's scope, newest first (one page, never all rows)."""
    q = select(Outbox).where(col(Outbox.status).in_(RETRYABLE_STATUSES))
    if (scope := _outbox_scope(staff)) is not None:
        q = q.where(scope)
    q = q.order_by(col(Outbox.created_at).desc(), col(Outbox.id).desc())
    rows = list(await session.exec(q.offset((page - 1) * per_page).limit(per_page + 1)))
    case_ids = {r.case_id for r in rows[:per_page] if r.case_id}
    numbers: dict[int, str] = {}
    if case_ids:
        found = await session.exec(select(Case.id, Case.case_no).where(col(Case.id).in_(case_ids)))
        numbers = {int(cid or 0): no for cid, no in found}
    return await delivery_rows(session, rows[:per_page], case_numbers=numbers), len(rows) > per_page


async def outbox_row_for(session: AsyncSession, *, staff: Staff, outbox_id: int) -> Outbox | None:
    """None when the row does not exist or lies outside the staff member's scope (a 404 either way)."""
    q = select(Outbox).where(Outbox.id == outbox_id)
    if (scope := _outbox_scope(staff)) is not None:
        q = q.where(scope)
    return (await session.exec(q)).first()


async def flag_counts(session: AsyncSession, *, staff: Staff) -> dict[str, int]:
    """How many cases in the staff member's jurisdiction carry each flag (the queue's badges)."""
    rows = await session.exec(_flagged_in(staff, col(Case.flag), func.count()))
    return {str(flag): int(n) for flag, n in rows}


def _flagged_in(staff: Staff, *columns: Any) -> Any:
    """``columns`` of the flagged cases in the staff member's jurisdiction, grouped by flag. The flagged cases are
    found through the flag index first: left to itself, SQLite walks the whole town's cases by the town index
    (~3,000 rows at 100,000 cases, ~10 ms) to find the few flagged ones. The jurisdiction's conditions are taken
    without its ``SELECT case.*``: a subquery of all the case's columns cost ~1 ms of CPU per page to build."""
    flagged = select(col(Case.id)).where(col(Case.flag).is_not(None))
    jurisdiction = cases_query(staff).whereclause
    q = sa_select(*columns) if jurisdiction is None else sa_select(*columns).where(jurisdiction)
    return q.where(col(Case.id).in_(flagged)).group_by(col(Case.flag))


async def queue_badges(
    session: AsyncSession, *, staff: Staff, now: datetime
) -> tuple[dict[str, int], CallCounts]:
    """The queue page's badges in one statement: ``flag_counts`` and the call queue's ``open_call_counts`` (of
    the staff member's town; city roles: every town's)."""
    flags = _flagged_in(
        staff,
        literal("flag").label("source"),
        col(Case.flag),
        func.count().label("n"),
        literal(0).label("late"),
    )
    town = None if staff.role in CITY_ROLES else staff.town
    rows = list(
        await session.exec(  # type: ignore[call-overload]
            union_all(flags, *call_count_selects(town=town, now=now))
        )
    )
    counts = {str(r[1]): int(r[2]) for r in rows if r[0] == "flag" and r[1] is not None}
    return counts, call_counts_of(rows)


async def list_flagged(
    session: AsyncSession, *, staff: Staff, flag: str, page: int = 1, per_page: int = 20
) -> tuple[list[Case], bool]:
    """Cases with one flag, in any state (a low score arrives after completion), most recently changed first."""
    q = (
        cases_query(staff)
        .where(Case.flag == flag)
        .order_by(col(Case.updated_at).desc(), col(Case.id).desc())
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    )
    cases = list(await session.exec(q))
    return cases[:per_page], len(cases) > per_page


async def flagged_page(
    session: AsyncSession, *, staff: Staff, flag: str, page: int, now: datetime
) -> QueuePage:
    """The queue page of the cases one flag asks staff to act on, whatever their state."""
    cases, has_next = await list_flagged(session, staff=staff, flag=flag, page=page)
    owners = await staff_names(session, ids={c.claimed_by_id for c in cases if c.claimed_by_id})
    rows = []
    for c in cases:
        state = deadline_state(c, now)
        rows.append(QueueRow(c, owners.get(c.claimed_by_id or 0), state == "overdue", state == "soon"))
    return QueuePage(rows=rows, page=page, has_next=has_next)


def deadline_state(case: Case, now: datetime) -> str:
    """`paused` while waiting for the resident (`paused_overdue` when the stage was already late at the pause),
    else `overdue` / `soon` / `ok`; "" when there is no deadline or the case is finished."""
    if case.status not in OPEN_STATES or case.stage_deadline is None:
        return ""
    if case.awaiting_resident or case.paused_at is not None:
        late = case.paused_at is not None and case.stage_deadline < case.paused_at
        return "paused_overdue" if late else "paused"
    if case.stage_deadline < now:
        return "overdue"
    if case.stage_deadline < now + DUE_SOON:
        return "soon"
    return "ok"
