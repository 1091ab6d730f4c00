"""Staff accounts, sign-in checks, jurisdiction and the queue. Jurisdiction lives in the queries themselves:
a town's staff cannot list, open or act on another town's case, whatever URL or form they send."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.cases import throttle
from bot.cases.casepage import CaseExtras, owner_name
from bot.cases.communities import CommunityError, community_row
from bot.cases.lifecycle import CITY_ROLES, OPEN_STATES, ROLES, SUPERVISORS, TOWN_WORKERS, Actor
from bot.models import AuditLog, Case, CaseEvent, Category, Community, InboundMessage, Resident, Staff
from bot.refcache import cached
from reference import privacy
from reference.towns import TOWNS

BIND_CODE_TTL = timedelta(minutes=10)
TOWN_NAMES = frozenset(t.name for t in TOWNS)
_SHORT_TOWN = {t.short: t.name for t in TOWNS}


class StaffError(Exception):
    """A domain error with a message staff can read."""


class LoginFailed(StaffError):
    pass


class BindLimited(StaffError):
    """Too many binding-code attempts from this WeChat user or address."""


# ------------------------------------------------------------------ passwords (scrypt, per-user salt)
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(12))


def check_password_policy(password: str) -> None:
    if len(password) < 8:
        raise StaffError("密码至少需要8位")
    if password.isdigit() or password.isalpha():
        raise StaffError("密码需同时包含字母和数字")


WRONG_PASSWORD = "用户名或密码错误"
TOO_MANY = "尝试次数过多，请15分钟后再试"


async def authenticate(
    session: AsyncSession, *, username: str, password: str, now: datetime, ip: str | None = None
) -> Staff:
    """Check a password sign-in. The answer is the same for an unknown name, a deactivated account and a
    wrong password, and costs the same (one scrypt, off the event loop). Failures are throttled per account
    *and* address (five in 15 minutes) and per address (30): an outsider can slow their own guesses, not lock
    the owner out from the owner's address. The staff row's failure counter is incremented in SQL."""
    name = username.strip()
    pair = throttle.key_of("pw", name.casefold(), ip)
    address = throttle.key_of("pw", ip)
    pair_row, pair_over = await throttle.attempt(session, limit=throttle.PASSWORD_PAIR, key=pair, now=now)
    addr_row, addr_over = await throttle.attempt(
        session, limit=throttle.PASSWORD_ADDRESS, key=address, now=now
    )
    if pair_over or addr_over:
        raise LoginFailed(TOO_MANY)
    staff = (await session.exec(select(Staff).where(Staff.username == name))).first() if name else None
    usable = staff is not None and staff.active and bool(staff.password_hash)
    stored = staff.password_hash if staff is not None and usable else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    if staff is None or not usable or not ok:
        if staff is not None:
            await session.exec(
                update(Staff)
                .where(col(Staff.id) == staff.id)
                .values(failed_logins=col(Staff.failed_logins) + 1)
                .execution_options(synchronize_session=False)
            )
        raise LoginFailed(WRONG_PASSWORD)
    await throttle.succeeded(session, pair_row, addr_row, forget=(throttle.PASSWORD_PAIR, pair))
    await session.exec(
        update(Staff)
        .where(col(Staff.id) == staff.id)
        .values(failed_logins=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return staff


async def revoke_sessions(session: AsyncSession, *, staff: Staff) -> None:
    """Every session cookie issued to ``staff`` so far stops working (the epoch is bumped in SQL)."""
    await session.exec(
        update(Staff)
        .where(col(Staff.id) == staff.id)
        .values(session_epoch=col(Staff.session_epoch) + 1)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(staff, ["session_epoch"])


# ------------------------------------------------------------------ accounts
async def worker_community(
    session: AsyncSession, *, role: str, town: str, community_id: int | None, name: str | None
) -> Community | None:
    """The registry community of a community worker's account (required, active, of their town); None for the
    other roles, which have no community."""
    if role != "community_worker":
        return None
    if community_id is None and not (name or "").strip():
        raise StaffError("村（社区）干部需填写所在村（社区）")
    try:
        row = await community_row(session, town=town, community_id=community_id, name=name)
    except CommunityError as exc:
        raise StaffError(str(exc)) from exc
    if row is None or not row.active:
        raise StaffError(f"请从{town}的村（社区）名单中选择（名单中没有“{(name or '').strip()[:32]}”）")
    return row


async def create_staff(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    town: str | None,
    community: str | None = None,
    display_name: str | None = None,
    community_id: int | None = None,
) -> Staff:
    username = username.strip()
    if not username or len(username) > 64:
        raise StaffError("请填写用户名")
    if role not in ROLES:
        raise StaffError("角色不正确")
    town = _SHORT_TOWN.get(town or "", town)
    if role in CITY_ROLES:
        town = town or None
    elif town not in TOWN_NAMES:
        raise StaffError("请选择正确的镇街")
    registry = await worker_community(
        session, role=role, town=town or "", community_id=community_id, name=community
    )
    check_password_policy(password)
    if (await session.exec(select(Staff.id).where(Staff.username == username))).first() is not None:
        raise StaffError("用户名已存在")
    staff = Staff(
        username=username,
        display_name=(display_name or "").strip() or username,
        password_hash=await asyncio.to_thread(hash_password, password),
        role=role,
        town=town,
        community=registry.name if registry else None,
        community_id=registry.id if registry else None,
    )
    session.add(staff)
    await session.flush()
    return staff


async def set_password(session: AsyncSession, *, staff: Staff, password: str) -> None:
    check_password_policy(password)
    staff.password_hash = await asyncio.to_thread(hash_password, password)
    staff.failed_logins = 0
    staff.locked_until = None
    await session.flush()
    await revoke_sessions(session, staff=staff)


def visible_staff_query(viewer: Staff) -> SelectOfScalar[Staff]:
    q = select(Staff).order_by(col(Staff.town), col(Staff.username))
    if viewer.role not in CITY_ROLES:
        q = q.where(Staff.town == viewer.town)
    return q


async def new_bind_code(session: AsyncSession, *, staff: Staff, now: datetime) -> str:
    """A one-time code the staff member types inside WeChat to bind their openid (valid 10 minutes)."""
    code = "".join(secrets.choice("0123456789") for _ in range(8))
    staff.bind_code = code
    staff.bind_code_expires = now + BIND_CODE_TTL
    await session.flush()
    return code


async def bind_openid(
    session: AsyncSession, *, code: str, openid: str, now: datetime, ip: str | None = None
) -> Staff:
    """Bind a WeChat openid to the staff account whose 8-digit code (valid 10 minutes) was typed. Attempts are
    counted on the server per openid and per address (a cookie or a new OAuth flow does not reset them)."""
    by_openid = throttle.key_of("bind", openid)
    by_address = throttle.key_of("bind", ip)
    row1, over1 = await throttle.attempt(session, limit=throttle.STAFF_BIND, key=by_openid, now=now)
    row2, over2 = await throttle.attempt(session, limit=throttle.STAFF_BIND_ADDRESS, key=by_address, now=now)
    if over1 or over2:
        raise BindLimited("尝试次数过多，请15分钟后重新进入")
    code = code.strip()
    if not (code.isascii() and code.isdigit()) or len(code) != 8:
        raise StaffError("绑定码应为8位数字")
    staff = (await session.exec(select(Staff).where(Staff.bind_code == code, col(Staff.active)))).first()
    if staff is None or staff.bind_code_expires is None or staff.bind_code_expires < now:
        raise StaffError("绑定码不正确或已过期，请在电脑上重新生成")
    await throttle.succeeded(session, row1, row2, forget=(throttle.STAFF_BIND, by_openid))
    await session.exec(
        update(Staff).where(col(Staff.openid) == openid, col(Staff.id) != staff.id).values(openid=None)
    )
    staff.openid = openid
    staff.bind_code = None
    staff.bind_code_expires = None
    await session.flush()
    return staff


async def staff_by_openid(session: AsyncSession, *, openid: str) -> Staff | None:
    return (await session.exec(select(Staff).where(Staff.openid == openid, col(Staff.active)))).first()


# ------------------------------------------------------------------ jurisdiction
def cases_query(staff: Staff) -> SelectOfScalar[Case]:
    """Every case query of the staff views starts here."""
    q = select(Case)
    if staff.role in CITY_ROLES:
        return q
    q = q.where(Case.town == (staff.town or "\x00"))
    if staff.role == "community_worker":
        q = q.where(Case.community_id == (staff.community_id or -1))
    return q


async def get_case_for(session: AsyncSession, *, staff: Staff, case_no: str) -> Case | None:
    """None when the case does not exist *or* lies outside the staff member's jurisdiction (a 404 either way)."""
    return (await session.exec(cases_query(staff).where(Case.case_no == case_no))).first()


def actor_for(staff: Staff) -> Actor:
    return Actor.of_staff(staff)


# ------------------------------------------------------------------ the queue
SORTS = {
    "new": "最新提交",
    "old": "最早提交",
    "due": "截止时间",
    "updated": "最近更新",
}
DUE_SOON = timedelta(hours=24)


@dataclass(slots=True)
class QueueFilter:
    status: str = "open"  # "open", "all" or one status
    kind: str = ""
    category: str = ""
    town: str = ""
    community: str = ""
    due: str = ""  # "" | overdue | soon
    mine: bool = False
    unclaimed: bool = False
    q: str = ""
    sort: str = "new"
    page: int = 1

    @classmethod
    def from_query(cls, query: Any) -> QueueFilter:
        def page(v: str) -> int:
            return max(1, min(int(v), 10_000)) if v.isascii() and v.isdigit() and len(v) < 7 else 1

        sort = query.get("sort", "new")
        return cls(
            status=query.get("status", "open")[:16],
            kind=query.get("kind", "")[:16],
            category=query.get("category", "")[:32],
            town=query.get("town", "")[:16],
            community=query.get("community", "")[:64].strip(),
            due=query.get("due", "") if query.get("due") in ("overdue", "soon") else "",
            mine=query.get("mine") == "1",
            unclaimed=query.get("unclaimed") == "1",
            q=query.get("q", "")[:64].strip(),
            sort=sort if sort in SORTS else "new",
            page=page(query.get("page", "1")),
        )

    def params(self, **override: Any) -> dict[str, str]:
        values = {
            "status": self.status,
            "kind": self.kind,
            "category": self.category,
            "town": self.town,
            "community": self.community,
            "due": self.due,
            "mine": "1" if self.mine else "",
            "unclaimed": "1" if self.unclaimed else "",
            "q": self.q,
            "sort": self.sort,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in override.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


@dataclass(slots=True)
class QueueRow:
    case: Case
    owner: str | None
    overdue: bool
    due_soon: bool


@dataclass(slots=True)
class QueuePage:
    rows: list[QueueRow] = field(default_factory=list)
    page: int = 1
    has_next: bool = False
    per_page: int = 20


async def list_queue(
    session: AsyncSession, *, staff: Staff, filters: QueueFilter, now: datetime, per_page: int = 20
) -> QueuePage:
    """One page of the queue: jurisdiction + filters in SQL, LIMIT per_page+1 (never all rows), each case with
    its owner's name in the same statement."""
    jurisdiction = cases_query(staff).whereclause
    q = sa_select(Case, owner_name())
    if jurisdiction is not None:
        q = q.where(jurisdiction)
    f = filters
    if f.status == "open":
        q = q.where(col(Case.status).in_(sorted(OPEN_STATES)))
    elif f.status and f.status != "all":
        q = q.where(col(Case.status) == f.status)
    if f.kind:
        q = q.where(col(Case.kind) == f.kind)
    if f.category:
        q = q.where(col(Case.category) == f.category)
    if f.town and staff.role in CITY_ROLES:
        q = q.where(col(Case.town) == f.town)
    if f.community.isascii() and f.community.isdigit() and len(f.community) < 10:
        q = q.where(col(Case.community_id) == int(f.community))
    if f.due == "overdue":
        q = q.where(col(Case.stage_deadline) < now, col(Case.status).in_(sorted(OPEN_STATES)))
    elif f.due == "soon":
        q = q.where(
            col(Case.stage_deadline) >= now,
            col(Case.stage_deadline) < now + DUE_SOON,
            col(Case.status).in_(sorted(OPEN_STATES)),
        )
    if f.mine:
        q = q.where(col(Case.claimed_by_id) == staff.id)
    if f.unclaimed:
        q = q.where(col(Case.claimed_by_id).is_(None))
    if f.q:
        term = f.q.upper()
        if term.startswith("MS") and len(term) >= 10:
            q = q.where(col(Case.case_no).startswith(term))
        else:
            like = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            q = q.where(
                or_(
                    col(Case.description).like(like, escape="\\"),
                    col(Case.item).like(like, escape="\\"),
                    col(Case.address).like(like, escape="\\"),
                    col(Case.case_no).like(like, escape="\\"),
                )
            )
    if f.sort == "old":
        q = q.order_by(col(Case.created_at).asc(), col(Case.id).asc())
    elif f.sort == "due":
        q = q.order_by(col(Case.stage_deadline).is_(None), col(Case.stage_deadline).asc(), col(Case.id).asc())
    elif f.sort == "updated":
        q = q.order_by(col(Case.updated_at).desc(), col(Case.id).desc())
    else:
        q = q.order_by(col(Case.created_at).desc(), col(Case.id).desc())
    q = q.offset((f.page - 1) * per_page).limit(per_page + 1)
    found = list(await session.exec(q))  # type: ignore[call-overload]
    rows = []
    for c, owner in found[:per_page]:
        open_ = c.status in OPEN_STATES
        overdue = bool(open_ and c.stage_deadline and c.stage_deadline < now)
        soon = bool(open_ and c.stage_deadline and not overdue and c.stage_deadline < now + DUE_SOON)
        rows.append(QueueRow(c, owner if c.claimed_by_id else None, overdue, soon))
    return QueuePage(rows=rows, page=f.page, has_next=len(found) > per_page, per_page=per_page)


async def staff_names(session: AsyncSession, *, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.exec(
        select(Staff.id, Staff.display_name, Staff.username).where(col(Staff.id).in_(ids))
    )
    return {sid: (name or user) for sid, name, user in rows}  # type: ignore[misc]


async def categories(
    session: AsyncSession, *, kind: str | None = None, active_only: bool = True
) -> list[Category]:
    q = select(Category).order_by(col(Category.kind), col(Category.sort), col(Category.id))
    if kind:
        q = q.where(Category.kind == kind)
    if active_only:
        q = q.where(col(Category.active))
    return list(await session.exec(q))


async def shown_categories(session: AsyncSession, *, kind: str | None = None) -> list[Category]:
    """The active categories the staff pages offer (of ``kind`` when given), in the order of ``categories``,
    from the reference cache (``bot.refcache``); a submitted form is checked by ``category_names``."""
    rows = await cached(session, "categories", lambda: categories(session))
    return [c for c in rows if c.kind == kind] if kind else list(rows)


async def category_names(session: AsyncSession, *, kind: str) -> set[str]:
    """The names staff may choose for a case of ``kind`` (active categories of the editable table)."""
    return {c.name for c in await categories(session, kind=kind)}


# ------------------------------------------------------------------ the case page
@dataclass(slots=True)
class CaseView:
    case: Case
    events: list[CaseEvent]
    messages: list[InboundMessage]
    owner: str | None
    phone: str | None  # full number (only for reveal) — masked in the template by default
    merged_into: str | None
    town_staff: list[Staff]


async def case_view(
    session: AsyncSession, *, staff: Staff, case: Case, extras: CaseExtras | None = None
) -> CaseView:
    """The case page's timeline, messages, number and owner; ``extras`` (``bot.cases.casepage``) already holds
    the resident's number and the owner's name when the page probed for them."""
    events = list(
        await session.exec(
            select(CaseEvent)
            .where(CaseEvent.case_id == case.id)
            .order_by(col(CaseEvent.at), col(CaseEvent.id))
        )
    )
    messages = list(
        await session.exec(
            select(InboundMessage)
            .where(InboundMessage.case_id == case.id)
            .order_by(col(InboundMessage.received_at), col(InboundMessage.id))
            .limit(200)
        )
    )
    phone = case.contact_phone
    if extras is not None:
        if not phone and case.resident_id:
            phone = extras.resident_phone
        owner = extras.owner if case.claimed_by_id else None
    else:
        if not phone and case.resident_id:
            resident = await session.get(Resident, case.resident_id)
            phone = resident.phone if resident else None
        owner = (
            (await staff_names(session, ids={case.claimed_by_id})).get(case.claimed_by_id)
            if case.claimed_by_id
            else None
        )
    merged_into = None
    if case.merged_into_id:
        target = await session.get(Case, case.merged_into_id)
        merged_into = target.case_no if target else None
    colleagues: list[Staff] = []
    if staff.role in SUPERVISORS:
        colleagues = list(
            await session.exec(
                select(Staff)
                .where(Staff.town == case.town, col(Staff.active), col(Staff.role).in_(sorted(TOWN_WORKERS)))
                .order_by(col(Staff.username))
            )
        )
    return CaseView(case, events, messages, owner, phone, merged_into, colleagues)


def mask_phone(phone: str | None) -> str:
    """The masked number for staff pages, or 未留电话 when the resident left none."""
    return privacy.mask_phone(phone) or "未留电话"


# ------------------------------------------------------------------ audit
async def audit(
    session: AsyncSession,
    *,
    staff: Staff | None,
    action: str,
    now: datetime,
    case: Case | None = None,
    detail: str = "",
    ip: str | None = None,
) -> None:
    session.add(
        AuditLog(
            staff_id=staff.id if staff else None,
            action=action,
            case_id=case.id if case else None,
            detail=detail[:500],
            ip=(ip or None) and ip[:64],
            at=now,
        )
    )
    await session.flush()


async def count_cases(session: AsyncSession, *, staff: Staff) -> int:
    q = cases_query(staff).where(col(Case.status).in_(sorted(OPEN_STATES)))
    return int((await session.exec(select(func.count()).select_from(q.subquery()))).one())
