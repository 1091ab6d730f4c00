"""圆梦墙 after the claim: the donor's own page (one claim, or every claim of a group claim), the resident's thanks
relayed to the donor (``relay_thanks``, a sweep), what the thank-you certificate says, the opt-in public list of
donors per town and month, staff's list of claims to confirm, and the figures (wall claims against pushed offers,
time from publication to claim, 圆梦率 per town).

The donor never sees the resident: the page says what to deliver and where only once staff confirmed, and the
relayed thanks pass ``reference.privacy.mask_text`` (phone and ID numbers) first; the certificate carries the
programme's name, the donor's name and what they gave, nothing of the resident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import Actor
from bot.cases.numbering import CHINA
from bot.cases.table import in_jurisdiction
from bot.delivery.outbox import enqueue
from bot.models import Case, Feedback, Offer, Resource, Staff, Survey, WallClaim, WallWish
from bot.pool.certificate import Certificate
from bot.pool.wall import CLAIM_STATUS_LABEL, DONOR_TYPES, HANDOVER, PublicWish, public_of
from reference.privacy import mask_text

PROGRAMME = "民生大莞家"
#: thanks relayed to the donor: a survey comment or a later word of praise scored at least this (or unscored)
THANKS_MIN_SCORE = 4
THANKS_MAX = 200


# ------------------------------------------------------------------ the donor's own page
@dataclass(frozen=True, slots=True)
class DonorView:
    claim: WallClaim
    wish: PublicWish
    status_label: str
    donor_label: str
    what: str | None  # only once confirmed
    where: str | None
    contact: str | None
    gave: str  # what the donor gives (the item), for the certificate once fulfilled


async def _view(session: AsyncSession, c: WallClaim, now: datetime) -> DonorView | None:
    w = await session.get(WallWish, c.wish_id)
    case = await session.get(Case, w.case_id) if w else None
    if w is None or case is None:
        return None
    what = where = contact = None
    qty = f" × {case.quantity}" if case.quantity else ""
    if c.status in ("confirmed", "fulfilled"):
        what = f"{case.item or w.category}{qty}"
        where = f"{w.town}{w.community or ''}：{HANDOVER.get(w.handover, '')}"
        staff = await session.get(Staff, c.confirmed_by_id) if c.confirmed_by_id else None
        contact = (
            f"{w.town}工作人员{(staff.display_name or '') if staff else ''}，会用您留下的电话与您约定时间"
        )
    return DonorView(
        claim=c,
        wish=public_of(w, now),
        status_label=CLAIM_STATUS_LABEL.get(c.status, c.status),
        donor_label=DONOR_TYPES.get(c.donor_type, ""),
        what=what,
        where=where,
        contact=contact,
        gave=f"{case.item or w.category}{qty}",
    )


async def donor_view(session: AsyncSession, *, token: str, now: datetime) -> DonorView | None:
    c = (await session.exec(select(WallClaim).where(WallClaim.token == token))).first()
    return await _view(session, c, now) if c is not None else None


async def claims_of_resource(
    session: AsyncSession, *, resource_id: int, now: datetime, limit: int = 50
) -> list[DonorView]:
    """A pool donor's wall claims (from chat or their signed link), newest first: the history on their tasks page."""
    stmt = (
        select(WallClaim)
        .where(WallClaim.resource_id == resource_id)
        .order_by(col(WallClaim.id).desc())
        .limit(limit)
    )
    views = [await _view(session, c, now) for c in (await session.exec(stmt)).all()]
    return [v for v in views if v is not None]


async def group_view(session: AsyncSession, *, group_token: str, now: datetime) -> list[DonorView]:
    """Every claim of one group claim, in the order they were made."""
    stmt = select(WallClaim).where(WallClaim.group_token == group_token).order_by(col(WallClaim.id))
    views = [await _view(session, c, now) for c in (await session.exec(stmt)).all()]
    return [v for v in views if v is not None]


def certificate_of(view: DonorView) -> Certificate | None:
    """The thank-you certificate of a fulfilled claim; None before fulfilment."""
    c = view.claim
    if c.status != "fulfilled" or c.finished_at is None:
        return None
    day = c.finished_at.astimezone(CHINA)
    return Certificate(
        programme=PROGRAMME,
        donor=f"{view.donor_label}{c.donor_name}",
        gave=view.gave,
        town=view.wish.town,
        day=f"{day.year}年{day.month}月{day.day}日",
    )


# ------------------------------------------------------------------ the resident's thanks reach the donor
async def relay_thanks(session: AsyncSession, *, now: datetime, batch: int = 100) -> int:
    """Fulfilled claims whose resident has since answered the survey with a comment, or praised the help in chat:
    the words (numbers masked) go on the donor's page and, when the donor's WeChat is bound, to the donor."""
    stmt = (
        select(WallClaim, WallWish)
        .join(WallWish, col(WallWish.id) == col(WallClaim.wish_id))
        .where(WallClaim.status == "fulfilled", col(WallClaim.thanks_at).is_(None))
        .order_by(col(WallClaim.finished_at))
        .limit(batch)
    )
    n = 0
    for c, w in (await session.exec(stmt)).all():
        words = await _thanks_for(session, case_id=w.case_id, since=c.finished_at or c.created_at)
        if not words:
            continue
        c.thanks = mask_text(words)[:THANKS_MAX]
        c.thanks_at = now
        session.add(c)
        res = await session.get(Resource, c.resource_id) if c.resource_id else None
        if res is not None and res.openid:
            await enqueue(
                session,
                openid=res.openid,
                recipient_type="volunteer",
                kind="progress",
                text=f"您帮助实现的心愿（{w.public_text[:40]}）收到了受助人的感谢：{c.thanks}",
                template={"status": "受助人的感谢"},
                dedupe_key=f"wall-thanks:{c.id}",
                now=now,
            )
        n += 1
    await session.flush()
    return n


async def _thanks_for(session: AsyncSession, *, case_id: int, since: datetime) -> str | None:
    survey = (
        await session.exec(
            select(Survey).where(
                Survey.case_id == case_id,
                Survey.status == "answered",
                col(Survey.comment).is_not(None),
            )
        )
    ).first()
    if survey is not None and (survey.comment or "").strip():
        if survey.score is None or survey.score >= THANKS_MIN_SCORE:
            return (survey.comment or "").strip()
    fb = (
        await session.exec(
            select(Feedback)
            .where(Feedback.case_id == case_id, col(Feedback.created_at) >= since)
            .order_by(col(Feedback.id))
        )
    ).all()
    for f in fb:
        if f.text.strip() and (f.score is None or f.score >= THANKS_MIN_SCORE):
            return f.text.strip()
    return None


# ------------------------------------------------------------------ the public list of donors (opt-in)
async def listed_donors(
    session: AsyncSession, *, town: str | None, months: int = 6, now: datetime
) -> list[tuple[str, str, list[str]]]:
    """(month, town, donor names) of fulfilled wall claims whose donor agreed to be listed, and of completed offers
    of pool resources that agreed when signing up; newest month first. A donor who did not opt in is never named,
    and nothing of the wish or the resident is shown."""
    since = now - timedelta(days=31 * months)
    stmt = (
        select(WallClaim.donor_type, WallClaim.donor_name, WallClaim.finished_at, WallWish.town)
        .join(WallWish, col(WallWish.id) == col(WallClaim.wish_id))
        .where(
            WallClaim.status == "fulfilled",
            col(WallClaim.listed_at).is_not(None),
            col(WallClaim.finished_at) >= since,
        )
        .order_by(col(WallClaim.finished_at).desc())
    )
    if town:
        stmt = stmt.where(WallWish.town == town)
    # donors of the pool who agreed when signing up, for the offers they completed
    offers = (
        select(Resource.kind, Resource.name, Offer.finished_at, Case.town)
        .join(Offer, col(Offer.resource_id) == col(Resource.id))
        .join(Case, col(Case.id) == col(Offer.case_id))
        .where(
            Offer.status == "done",
            col(Resource.listed_at).is_not(None),
            col(Offer.finished_at).is_not(None),
            col(Offer.finished_at) >= since,
        )
    )
    if town:
        offers = offers.where(Case.town == town)
    rows = [*(await session.exec(stmt)).all(), *(await session.exec(offers)).all()]
    rows.sort(key=lambda r: r[2], reverse=True)
    groups: dict[tuple[str, str], list[str]] = {}
    for kind, name, finished, t in rows:
        local = finished.astimezone(CHINA)
        names = groups.setdefault((f"{local.year}年{local.month}月", t), [])
        label = f"{DONOR_TYPES.get(kind, '')}{name}"
        if label not in names:
            names.append(label)
    return [(m, t, names) for (m, t), names in groups.items()]


# ------------------------------------------------------------------ staff's list
@dataclass(frozen=True, slots=True)
class StaffClaimRow:
    claim: WallClaim
    wish: WallWish
    case_no: str
    case_status: str


async def claims_for_staff(session: AsyncSession, *, staff: Staff, limit: int = 100) -> list[StaffClaimRow]:
    """Reserved and confirmed claims in the staff member's jurisdiction, oldest first."""
    stmt = (
        select(WallClaim, WallWish, Case)
        .join(WallWish, col(WallWish.id) == col(WallClaim.wish_id))
        .join(Case, col(Case.id) == col(WallWish.case_id))
        .where(col(WallClaim.status).in_(("reserved", "confirmed")))
        .order_by(col(WallClaim.created_at))
        .limit(limit)
    )
    actor = Actor.of_staff(staff)
    if staff.town and staff.role not in ("city_supervisor", "admin"):
        stmt = stmt.where(Case.town == staff.town)
    rows = (await session.exec(stmt)).all()
    return [
        StaffClaimRow(c, w, case.case_no, case.status) for c, w, case in rows if in_jurisdiction(case, actor)
    ]


# ------------------------------------------------------------------ figures
async def wall_figures(session: AsyncSession, *, town: str | None = None) -> dict[str, float]:
    """Wishes matched from the wall vs by pushed offers (cases of ``town`` or the whole city), and the median and
    mean hours from publication to the claim that was confirmed."""
    wall = (
        select(func.count()).select_from(WallClaim).join(WallWish, col(WallWish.id) == col(WallClaim.wish_id))
    )
    wall = wall.where(col(WallClaim.status).in_(("confirmed", "fulfilled")))
    pushed = (
        select(func.count(func.distinct(Offer.case_id)))
        .join(Case, col(Case.id) == col(Offer.case_id))
        .where(col(Offer.status).in_(("accepted", "delivered", "done")))
    )
    published = select(func.count()).select_from(WallWish).where(WallWish.status != "withdrawn")
    if town:
        wall = wall.where(WallWish.town == town)
        pushed = pushed.where(Case.town == town)
        published = published.where(WallWish.town == town)
    waits = select(WallWish.published_at, WallClaim.created_at).join(
        WallClaim, col(WallClaim.wish_id) == col(WallWish.id)
    )
    waits = waits.where(col(WallClaim.status).in_(("confirmed", "fulfilled")))
    if town:
        waits = waits.where(WallWish.town == town)
    hours = sorted((c - p).total_seconds() / 3600 for p, c in (await session.exec(waits)).all())
    median = (
        hours[len(hours) // 2]
        if len(hours) % 2
        else sum(hours[len(hours) // 2 - 1 : len(hours) // 2 + 1]) / 2
    )
    return {
        "published": int((await session.exec(published)).one()),
        "wall_matched": int((await session.exec(wall)).one()),
        "offer_matched": int((await session.exec(pushed)).one()),
        "median_hours_to_claim": round(median, 1) if hours else 0,
        "mean_hours_to_claim": round(sum(hours) / len(hours), 1) if hours else 0,
    }


async def wall_by_town(session: AsyncSession) -> list[tuple[str, int, int]]:
    """圆梦率 per town: wishes published on the wall and how many of them were fulfilled, by town."""
    fulfilled = func.sum(sa.case((col(WallWish.status) == "fulfilled", 1), else_=0))
    stmt = (
        select(WallWish.town, func.count(), fulfilled)
        .where(WallWish.status != "withdrawn")
        .group_by(WallWish.town)
        .order_by(WallWish.town)
    )
    return [(t, int(n), int(f or 0)) for t, n, f in (await session.exec(stmt)).all()]
