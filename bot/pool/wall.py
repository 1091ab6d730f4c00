"""圆梦墙, the wish wall: staff publish a verified micro-wish under a public id with wording they approve, donors
claim it from the public page, staff confirm, the wish is fulfilled and the donor's 寄语 reaches the resident.

What the public sees is only ``WallWish`` (public id, the approved wording, town, community, category, how long it
has waited) — never the case number, the description, the resident's name, phone or address. The wording passes
``wording_refusal`` (phone/ID numbers, addresses, people named by surname, the case's own address and beneficiary).

One match per wish: a claim takes the wish by a conditional UPDATE (``bot.pool.wallrows``), the same row a pushed
offer must take when a volunteer accepts, so a wall claim and an offer racing give one match. A reservation that
staff do not confirm in time expires (``expire_reservations``, a sweep) and the wish returns to the wall."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.access import audit
from bot.cases.lifecycle import Actor, claim, transition
from bot.cases.table import in_jurisdiction
from bot.cases.timeline import record_event
from bot.delivery.outbox import enqueue
from bot.models import Case, Offer, Resident, Resource, Staff, TownWallSetting, WallClaim, WallWish
from bot.pool.config import OPEN_WISH_STATES, PoolError
from bot.pool.offers import cancel_offers
from bot.pool.records import lock_case
from bot.pool.wallrows import reserve, set_wish_status
from reference.privacy import (
    contains_address,
    contains_named_person,
    contains_personal_number,
    parse_phone_field,
)

log = logging.getLogger(__name__)

DONOR_TYPES: dict[str, str] = {
    "individual": "爱心人士",
    "enterprise": "爱心企业",
    "organisation": "社会组织",
    "party_branch": "党支部",
}
HANDOVER: dict[str, str] = {
    "community_centre": "送到社区党群服务中心，由社区转交",
    "door_with_staff": "上门送达，社区工作人员陪同",
}
WISH_STATUS_LABEL: dict[str, str] = {
    "open": "等待认领",
    "reserved": "已有爱心人士认领，等待确认",
    "confirmed": "已认领，正在圆梦",
    "fulfilled": "心愿已实现",
    "matched_offer": "已认领，正在圆梦",
    "withdrawn": "已下架",
}
CLAIM_STATUS_LABEL: dict[str, str] = {
    "reserved": "已预留，等待工作人员确认",
    "confirmed": "已确认，请按下面的说明送达",
    "fulfilled": "心愿已实现，谢谢您",
    "expired": "预留已过期",
    "declined": "工作人员未能确认这次认领",
}
PUBLIC_TEXT_MAX = 120
MESSAGE_MAX = 100
#: the wish's case states in which it may be published and stay on the wall
WALL_CASE_STATES = OPEN_WISH_STATES
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class WallError(PoolError):
    """A wall error residents, donors and staff can read."""


class WishTaken(WallError):
    pass


# ------------------------------------------------------------------ the public wording
def wording_refusal(text: str, *, case: Case | None = None) -> str | None:
    """Why this wording may not go on the public wall, or None when it may."""
    text = (text or "").strip()
    if not text:
        return "请填写公开展示的心愿内容"
    if len(text) > PUBLIC_TEXT_MAX:
        return f"公开内容请控制在{PUBLIC_TEXT_MAX}字以内"
    if contains_personal_number(text):
        return "公开内容里不能有电话号码或身份证号码"
    if contains_address(text):
        return "公开内容里不能有门牌号、楼栋号等详细地址，写到镇街和社区即可"
    if contains_named_person(text):
        return "公开内容里不能有姓名或称呼（如“陈伯”），请改为“一位独居老人”这样的说法"
    if case is not None:
        for secret in (case.address, case.beneficiary):
            if secret and len(secret) >= 2 and secret in text and secret not in _GENERIC_WHO:
                return "公开内容里不能有居民的姓名或地址"
    return None


_GENERIC_WHO = frozenset(
    {"母亲", "父亲", "妈妈", "爸爸", "孩子", "老人", "本人", "自己", "儿子", "女儿", "奶奶", "爷爷", "老伴"}
)


def suggest_wording(case: Case) -> str:
    """A starting point for staff: what is wished, in plain words, with nobody named (staff add for whom)."""
    what = case.item or case.category or "生活物资"
    qty = f"{case.quantity}份" if case.quantity and case.quantity > 1 else ""
    return f"一位{case.town}的居民需要{qty}{what}"


# ------------------------------------------------------------------ what the public sees
@dataclass(frozen=True, slots=True)
class PublicWish:
    public_id: str
    text: str
    town: str
    community: str | None
    category: str
    status: str
    status_label: str
    waited_days: int
    handover: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.public_id,
            "text": self.text,
            "town": self.town,
            "community": self.community,
            "category": self.category,
            "status": self.status,
            "status_label": self.status_label,
            "waited_days": self.waited_days,
        }


def public_of(w: WallWish, now: datetime) -> PublicWish:
    return PublicWish(
        public_id=w.public_id,
        text=w.public_text,
        town=w.town,
        community=w.community,
        category=w.category,
        status=w.status,
        status_label=WISH_STATUS_LABEL.get(w.status, w.status),
        waited_days=max(0, (now - w.published_at).days),
        handover=HANDOVER.get(w.handover, ""),
    )


async def open_wishes(
    session: AsyncSession,
    *,
    now: datetime,
    town: str | None = None,
    category: str | None = None,
    page: int = 1,
    per_page: int = 30,
) -> tuple[list[PublicWish], bool]:
    """Open wishes on the wall (the case still open), longest-waiting first; and whether there is a next page."""
    stmt = (
        select(WallWish)
        .join(Case, col(Case.id) == col(WallWish.case_id))
        .where(WallWish.status == "open", col(Case.status).in_(WALL_CASE_STATES))
    )
    if town:
        stmt = stmt.where(WallWish.town == town)
    if category:
        stmt = stmt.where(WallWish.category == category)
    stmt = stmt.order_by(col(WallWish.published_at), col(WallWish.id)).offset((page - 1) * per_page)
    rows = list((await session.exec(stmt.limit(per_page + 1))).all())
    return [public_of(w, now) for w in rows[:per_page]], len(rows) > per_page


async def wall_categories(session: AsyncSession) -> list[str]:
    stmt = select(WallWish.category).where(WallWish.status == "open").distinct().order_by(WallWish.category)
    return [c for c in (await session.exec(stmt)).all() if c]


async def public_wish(session: AsyncSession, *, public_id: str, now: datetime) -> PublicWish | None:
    w = (await session.exec(select(WallWish).where(WallWish.public_id == public_id))).first()
    if w is None or w.status == "withdrawn":
        return None
    case = await session.get(Case, w.case_id)
    if case is None or (w.status == "open" and case.status not in WALL_CASE_STATES):
        return None
    return public_of(w, now)


# ------------------------------------------------------------------ staff: publish
async def wall_entry(session: AsyncSession, *, case_id: int) -> WallWish | None:
    return (await session.exec(select(WallWish).where(WallWish.case_id == case_id))).first()


async def publish(
    session: AsyncSession, *, case: Case, staff: Staff, text: str, handover: str, now: datetime
) -> WallWish:
    """Put a verified micro-wish on the wall with the wording staff approved. An accepted wish is claimed by the
    publishing staff member first; a claimed one starts matching (the wall is one way of finding a donor)."""
    actor = Actor.of_staff(staff)
    if not in_jurisdiction(case, actor):
        raise WallError("这不是您辖区的诉求")
    if case.kind != "micro_wish":
        raise WallError("只有民生微心愿可以发布到圆梦墙")
    if case.status not in WALL_CASE_STATES:
        raise WallError("只有已受理、尚未对接到爱心资源的微心愿可以发布到圆梦墙")
    if handover not in HANDOVER:
        raise WallError("请选择交付方式")
    text = (text or "").strip()
    refusal = wording_refusal(text, case=case)
    if refusal:
        raise WallError(refusal)
    existing = await wall_entry(session, case_id=case.id or 0)
    if existing is not None and existing.status != "withdrawn":
        raise WallError("这个心愿已经在圆梦墙上")
    taken = await session.exec(
        select(func.count())
        .select_from(Offer)
        .where(Offer.case_id == case.id, col(Offer.status).in_(("accepted", "delivered", "done")))
    )
    if taken.one():
        raise WallError("这个心愿已有爱心资源接受，不能再发布")
    if case.status == "accepted":
        await claim(session, case=case, actor=actor, now=now)
    if case.status == "claimed":
        await transition(session, case=case, action="match", actor=actor, note="发布到圆梦墙", now=now)
    if existing is None:
        existing = WallWish(
            case_id=case.id or 0, public_id=_new_public_id(), town=case.town, public_text=text
        )
    existing.community = case.community
    existing.category = case.category or case.suggested_category or "其他"
    existing.public_text = text
    existing.handover = handover
    existing.status = "open"
    existing.claim_id = None
    existing.reserved_until = None
    existing.published_at = now
    existing.published_by_id = staff.id
    existing.updated_at = now
    session.add(existing)
    await session.flush()
    record_event(
        session,
        case=case,
        kind="note",
        actor=actor,
        at=now,
        note=f"发布到圆梦墙：{text}",
        data={"wall": existing.public_id},
    )
    return existing


async def withdraw(session: AsyncSession, *, case: Case, staff: Staff, now: datetime) -> None:
    """Take an open wish off the wall."""
    if not in_jurisdiction(case, Actor.of_staff(staff)):
        raise WallError("这不是您辖区的诉求")
    w = await wall_entry(session, case_id=case.id or 0)
    if w is None or not await set_wish_status(
        session, wish_id=w.id or 0, expect=("open",), now=now, status="withdrawn"
    ):
        raise WallError("只有等待认领的心愿可以从圆梦墙撤下")
    record_event(session, case=case, kind="note", actor=Actor.of_staff(staff), at=now, note="从圆梦墙撤下")


def _new_public_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


# ------------------------------------------------------------------ donors: claim
@dataclass(frozen=True, slots=True)
class ClaimForm:
    donor_name: str
    donor_type: str
    phone: str
    message: str


def check_claim_form(*, donor_name: str, donor_type: str, phone: str, message: str) -> ClaimForm:
    """The claim form, strictly: every error in words the donor understands."""
    name = (donor_name or "").strip()
    if not name or len(name) > 64:
        return _bad("请填写您的姓名或单位名称（64字以内）")
    if donor_type not in DONOR_TYPES:
        return _bad("请选择认领身份")
    canonical = parse_phone_field(phone)
    if canonical is None:
        return _bad("请填写正确的手机号码或固定电话")
    msg = (message or "").strip()
    if len(msg) > MESSAGE_MAX:
        return _bad(f"寄语请控制在{MESSAGE_MAX}字以内")
    if contains_personal_number(msg):
        return _bad("寄语里请不要写电话号码或证件号码")
    return ClaimForm(name, donor_type, canonical, msg)


def _bad(text: str) -> ClaimForm:
    raise WallError(text)


async def claim_wish(
    session: AsyncSession,
    *,
    public_id: str,
    form: ClaimForm,
    now: datetime,
    hold: timedelta,
    resource_id: int | None = None,
    group_token: str | None = None,
    listed: bool = False,
    notify: bool = True,
) -> WallClaim:
    """A donor claims an open wish: it is reserved for ``hold`` until staff confirm. Of two claims (or a claim and
    a volunteer accepting a pushed offer) exactly one wins; the other raises ``WishTaken``.

    ``resource_id``: the claim comes from a known pool resource (a bound volunteer in chat, a donor's signed link);
    when staff marked it trusted and the wish's town confirms trusted donors at once, the claim is confirmed here
    (audited). ``listed``: the donor agreed to be named on the public list of donors (the date is kept).
    ``notify=False``: the caller tells the town's staff itself (a group claim sends one message, not one a wish)."""
    w = (await session.exec(select(WallWish).where(WallWish.public_id == public_id))).first()
    if w is None or w.id is None:
        raise WallError("找不到这个心愿")
    # the case row first, as every offer answer does (bot.pool.records.lock_case): one lock order, no deadlock
    case = await lock_case(session, w.case_id)
    if case.status not in WALL_CASE_STATES:
        raise WishTaken("这个心愿已经不在圆梦墙上了，请看看其他心愿。")
    if not await reserve(session, wish_id=w.id, until=now + hold, now=now):
        raise WishTaken("这个心愿刚刚被其他爱心人士认领了，请看看其他心愿。")
    c = WallClaim(
        wish_id=w.id,
        token=secrets.token_urlsafe(24),
        donor_name=form.donor_name,
        donor_type=form.donor_type,
        phone=form.phone,
        message=form.message,
        status="reserved",
        created_at=now,
        reserved_until=now + hold,
        resource_id=resource_id,
        group_token=group_token,
        listed_at=now if listed else None,
    )
    session.add(c)
    await session.flush()
    await set_wish_status(session, wish_id=w.id, expect=("reserved",), now=now, claim_id=c.id)
    label = DONOR_TYPES[form.donor_type]
    if await auto_confirms(session, resource_id=resource_id, town=w.town):
        await _confirm(session, c=c, w=w, case=case, actor=Actor.system("圆梦墙"), staff_id=None, now=now)
        c.auto_confirmed = True
        session.add(c)
        await audit(
            session,
            staff=None,
            action="wall_auto_confirm",
            case=case,
            now=now,
            detail=f"可信爱心资源#{resource_id}的认领按{w.town}设置自动确认",
        )
        for s in await town_staff(session, case.town) if notify else []:
            await enqueue(
                session,
                openid=s.openid or "",
                recipient_type="staff",
                kind="alert",
                case_id=case.id,
                text=f"圆梦墙上的心愿（{case.case_no}）由可信{label}「{form.donor_name}」认领，已按本镇设置自动确认。",
                template={"case_no": case.case_no[:20], "status": "可信爱心资源认领"},
                dedupe_key=f"wall-claim:{c.id}:{s.id}",
                now=now,
            )
        return c
    record_event(
        session,
        case=case,
        kind="note",
        actor=Actor.system("圆梦墙"),
        at=now,
        note=f"圆梦墙认领：{label}「{form.donor_name}」，等待工作人员确认",
        data={"wall_claim": c.id},
    )
    for s in await town_staff(session, case.town) if notify else []:
        await enqueue(
            session,
            openid=s.openid or "",
            recipient_type="staff",
            kind="alert",
            case_id=case.id,
            text=f"圆梦墙上的心愿（{case.case_no}）有{label}认领，请尽快确认。",
            template={"case_no": case.case_no[:20], "status": "圆梦墙认领待确认"},
            dedupe_key=f"wall-claim:{c.id}:{s.id}",
            now=now,
        )
    return c


async def town_staff(session: AsyncSession, town: str) -> list[Staff]:
    """The town's staff with WeChat bound: who hears of claims to confirm."""
    stmt = select(Staff).where(
        col(Staff.active),
        Staff.town == town,
        col(Staff.role).in_(("town_staff", "town_supervisor")),
        col(Staff.openid).is_not(None),
    )
    return list((await session.exec(stmt)).all())


# ------------------------------------------------------------------ staff: confirm, decline, fulfil
async def _claim_for_staff(
    session: AsyncSession, *, claim_id: int, staff: Staff
) -> tuple[WallClaim, WallWish, Case]:
    c = await session.get(WallClaim, claim_id, populate_existing=True)
    w = await session.get(WallWish, c.wish_id, populate_existing=True) if c else None
    if c is None or w is None:
        raise WallError("找不到这次认领")
    case = await lock_case(session, w.case_id)
    if not in_jurisdiction(case, Actor.of_staff(staff)):
        raise WallError("找不到这次认领")
    return c, w, case


async def _set_claim(session: AsyncSession, c: WallClaim, *, expect: str, **values: Any) -> bool:
    result = await session.exec(
        sa.update(WallClaim)
        .where(col(WallClaim.id) == c.id, col(WallClaim.status) == expect)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    for k, v in values.items():
        setattr(c, k, v)
    return True


async def confirm_claim(session: AsyncSession, *, claim_id: int, staff: Staff, now: datetime) -> WallClaim:
    """Staff confirm a reserved claim: the donor now sees what to deliver and where; the case starts."""
    c, w, case = await _claim_for_staff(session, claim_id=claim_id, staff=staff)
    await _confirm(session, c=c, w=w, case=case, actor=Actor.of_staff(staff), staff_id=staff.id, now=now)
    return c


async def _confirm(
    session: AsyncSession,
    *,
    c: WallClaim,
    w: WallWish,
    case: Case,
    actor: Actor,
    staff_id: int | None,
    now: datetime,
) -> None:
    if c.status != "reserved" or not await _set_claim(
        session, c, expect="reserved", status="confirmed", confirmed_at=now, confirmed_by_id=staff_id
    ):
        raise WallError("这次认领已过期或已处理")
    if not await set_wish_status(
        session, wish_id=w.id or 0, expect=("reserved",), now=now, status="confirmed"
    ):
        raise WallError("这次认领已过期或已处理")
    await cancel_offers(session, case=case, now=now)  # pushed invitations still waiting end here
    label = DONOR_TYPES.get(c.donor_type, "")
    await transition(
        session,
        case=case,
        action="start",
        actor=actor,
        now=now,
        note=f"圆梦墙认领已确认：{label}「{c.donor_name}」",
        data={"wall_claim": c.id},
    )
    await tell_donor(session, c=c, w=w, what="confirmed", now=now)


async def auto_confirms(session: AsyncSession, *, resource_id: int | None, town: str) -> bool:
    """A claim by this resource in this town is confirmed at once: the resource is active and trusted (staff set
    it) and the town chose to confirm trusted donors' claims without waiting."""
    if resource_id is None:
        return False
    res = await session.get(Resource, resource_id)
    setting = await session.get(TownWallSetting, town)
    return bool(res and res.active and res.trusted and setting and setting.auto_confirm_trusted)


async def decline_claim(
    session: AsyncSession, *, claim_id: int, staff: Staff, reason: str, now: datetime
) -> WallClaim:
    """Staff do not confirm a reserved claim (a reason is recorded); the wish returns to the wall."""
    reason = (reason or "").strip()
    if not reason:
        raise WallError("请填写未能确认的原因")
    c, w, case = await _claim_for_staff(session, claim_id=claim_id, staff=staff)
    if not await _set_claim(session, c, expect="reserved", status="declined", finished_at=now):
        raise WallError("这次认领已过期或已处理")
    await set_wish_status(
        session,
        wish_id=w.id or 0,
        expect=("reserved",),
        now=now,
        status="open",
        claim_id=None,
        reserved_until=None,
    )
    record_event(
        session,
        case=case,
        kind="note",
        actor=Actor.of_staff(staff),
        at=now,
        note=f"未确认圆梦墙认领（{reason[:100]}），心愿回到圆梦墙",
        data={"wall_claim": c.id},
    )
    return c


async def fulfil_claim(
    session: AsyncSession, *, claim_id: int, staff: Staff, note: str, now: datetime
) -> WallClaim:
    """The wish was delivered: the case completes and the donor's 寄语 goes to the resident."""
    c, w, case = await _claim_for_staff(session, claim_id=claim_id, staff=staff)
    if c.status != "confirmed":
        raise WallError("只有已确认的认领可以标记为已圆梦")
    await transition(
        session,
        case=case,
        action="complete",
        actor=Actor.of_staff(staff),
        now=now,
        note=note,
        data={"wall_claim": c.id},
    )
    await _settle(session, c=c, w=w, case=case, now=now)
    return c


async def _settle(session: AsyncSession, *, c: WallClaim, w: WallWish, case: Case, now: datetime) -> None:
    if not await _set_claim(session, c, expect="confirmed", status="fulfilled", finished_at=now):
        return
    await set_wish_status(session, wish_id=w.id or 0, expect=("confirmed",), now=now, status="fulfilled")
    resident = await session.get(Resident, case.resident_id) if case.resident_id else None
    if c.message and resident is not None:
        who = f"{DONOR_TYPES.get(c.donor_type, '爱心人士')}「{c.donor_name}」"
        await enqueue(
            session,
            openid=resident.openid,
            kind="progress",
            case_id=case.id,
            text=f"帮您实现微心愿（编号{case.case_no}）的{who}给您留言：{c.message}",
            template={"case_no": case.case_no[:20], "status": "爱心人士给您留言"},
            dedupe_key=f"wall-message:{c.id}",
            now=now,
        )
    await tell_donor(session, c=c, w=w, what="fulfilled", now=now)


async def tell_donor(session: AsyncSession, *, c: WallClaim, w: WallWish, what: str, now: datetime) -> None:
    """A donor of the pool whose WeChat is bound hears that staff confirmed the claim, or that the wish came true;
    the details stay on the donor's page (the link they were given), not in the message."""
    res = await session.get(Resource, c.resource_id) if c.resource_id else None
    if res is None or not res.openid:
        return
    text = {
        "confirmed": f"您认领的心愿（{w.public_text[:40]}）已确认，送到哪里、联系谁请看您的认领页面。",
        "fulfilled": f"您认领的心愿（{w.public_text[:40]}）已经实现，谢谢您！认领页面可以下载感谢信。",
    }[what]
    await enqueue(
        session,
        openid=res.openid,
        recipient_type="volunteer",
        kind="progress",
        text=text,
        template={"status": "圆梦墙认领已确认" if what == "confirmed" else "心愿已实现"},
        dedupe_key=f"wall-donor-{what}:{c.id}",
        now=now,
    )


# ------------------------------------------------------------------ sweeps
async def expire_reservations(session: AsyncSession, *, now: datetime, batch: int = 200) -> int:
    """Reservations staff did not confirm in time expire; the wish returns to the wall."""
    stmt = (
        select(WallWish)
        .where(WallWish.status == "reserved", col(WallWish.reserved_until) <= now)
        .order_by(col(WallWish.reserved_until))
        .limit(batch)
    )
    n = 0
    for w in (await session.exec(stmt)).all():
        c = await session.get(WallClaim, w.claim_id) if w.claim_id else None
        if c is not None and not await _set_claim(
            session, c, expect="reserved", status="expired", finished_at=now
        ):
            continue
        if not await set_wish_status(
            session,
            wish_id=w.id or 0,
            expect=("reserved",),
            now=now,
            status="open",
            claim_id=None,
            reserved_until=None,
        ):
            continue
        case = await session.get(Case, w.case_id)
        if case is not None:
            record_event(
                session,
                case=case,
                kind="note",
                actor=Actor.system("圆梦墙"),
                at=now,
                note="圆梦墙认领超时未确认，心愿回到圆梦墙",
                data={"wall_claim": c.id if c else None},
            )
        n += 1
    return n


async def settle_completed(session: AsyncSession, *, now: datetime, batch: int = 200) -> int:
    """Confirmed wall claims whose case staff completed on the case page: mark fulfilled, deliver the 寄语."""
    stmt = (
        select(WallClaim, WallWish, Case)
        .join(WallWish, col(WallWish.id) == col(WallClaim.wish_id))
        .join(Case, col(Case.id) == col(WallWish.case_id))
        .where(WallClaim.status == "confirmed", col(Case.status).in_(("completed", "closed")))
        .limit(batch)
    )
    rows = list((await session.exec(stmt)).all())
    for c, w, case in rows:
        await _settle(session, c=c, w=w, case=case, now=now)
    return len(rows)


async def chat_wall_lines(session: AsyncSession, *, base_url: str, now: datetime, limit: int = 3) -> str:
    """For someone who offers help in chat: a few open wishes with their links, the wall and the sign-up page."""
    wishes, _ = await open_wishes(session, now=now, per_page=limit)
    base = base_url.rstrip("/")
    lines = [f"· {w.text}（{w.town}）{base}/wall/{w.public_id}" for w in wishes]
    head = "现在等待认领的心愿：\n" + "\n".join(lines) + "\n" if lines else ""
    return f"{head}更多心愿请看圆梦墙：{base}/wall\n想加入爱心资源库，可以在这里报名：{base}/donate"
