"""The volunteer's side of the pool: binding WeChat with a one-time code, answering offers and reporting
progress in chat (the chat hook), the signed link to the tasks page, and progress reports (delivered, done)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import LifecycleError, complete, notify_resident, transition
from bot.cases.timeline import record_event
from bot.delivery.links import sign_link
from bot.models import Case, InboundMessage, Lead, Offer, Resource
from bot.pool.config import (
    DEFAULT_CONFIG,
    OFFER_LABEL,
    PoolConfig,
    PoolError,
    local_time,
    wish_what,
    wish_where,
)
from bot.pool.offers import accept, decline
from bot.pool.records import (
    CASE_OVER,
    add_resource_counts,
    lock_case,
    set_offer_status,
    volunteer_actor,
    volunteer_refusal,
)
from bot.pool.snapshot import POOL_CACHE
from matching.cascade import REPLY_TEXTS
from reference.case_numbers import SERIAL

BIND_PREFIX = "志愿者绑定"


BIND_TTL = timedelta(hours=24)


Stage = Literal["delivered", "done"]


async def report_progress(
    session: AsyncSession,
    *,
    offer: Offer,
    stage: Stage,
    photo_url: str | None = None,
    note: str | None = None,
    now: datetime,
) -> Case:
    """The volunteer reports delivery or completion; the case moves through the lifecycle and the resident hears."""
    photo = (photo_url or "").strip()
    if photo and not photo.startswith(("https://", "http://")):
        raise PoolError("照片地址应以 http:// 或 https:// 开头")
    case = await lock_case(session, offer.case_id)
    fresh = (
        await session.exec(
            select(Offer).where(Offer.id == offer.id).execution_options(populate_existing=True)
        )
    ).one()
    resource = await session.get(Resource, fresh.resource_id, populate_existing=True)
    if resource is None:
        raise PoolError("找不到这位爱心人士")
    refusal = volunteer_refusal(case=case, resource=resource)
    if refusal:  # a cancelled or finished case, or a deactivated resource: nothing recorded, nobody told
        raise PoolError(refusal)
    actor = volunteer_actor(resource)
    note = (note or "").strip()[:500]
    if stage == "delivered":
        if not await set_offer_status(session, fresh, expect=("accepted",), status="delivered"):
            raise PoolError("只有已接受、尚未送达的任务可以报告送达")
        if case.status == "matching":
            await transition(session, case=case, action="start", actor=actor, note=None, now=now)
        record_event(
            session,
            case=case,
            kind="photo" if photo else "note",
            actor=actor,
            at=now,
            note=f"{resource.name}报告：已送达{('。' + note) if note else ''}",
            data={"offer_id": fresh.id, "stage": "delivered", "photos": [photo] if photo else []},
        )
        await notify_resident(
            session,
            case=case,
            dedupe_key=f"offer:{fresh.id}:delivered",
            text=f"您的微心愿（编号{case.case_no}）爱心人士已送达/上门。如有问题请直接回复我们。",
            now=now,
        )
        await session.flush()
        return case
    if stage != "done":
        raise PoolError("未知的进度")
    if not await set_offer_status(
        session, fresh, expect=("accepted", "delivered"), status="done", finished_at=now
    ):
        raise PoolError("这个任务已经完成或不属于您")
    await add_resource_counts(session, resource.id or 0, now, completions=1)
    if case.status == "matching":
        await transition(session, case=case, action="start", actor=actor, note=None, now=now)
    if case.status == "in_progress":
        await complete(
            session,
            case=case,
            actor=actor,
            now=now,
            photos=[photo] if photo else [],
            note=f"爱心人士{resource.name}已完成帮助{('：' + note) if note else ''}",
        )
    await session.flush()
    return case


async def new_volunteer_bind_code(session: AsyncSession, *, resource: Resource, now: datetime) -> str:
    """A 6-digit one-time code the volunteer sends in WeChat as ``志愿者绑定 123456`` (valid 24 hours).

    The expiry is kept with the code in ``Resource.bind_code`` as ``code:hours-since-epoch`` (no extra column)."""
    for _ in range(20):
        code = f"{secrets.randbelow(900000) + 100000}"
        taken = (
            await session.exec(select(Resource.id).where(col(Resource.bind_code).like(f"{code}:%")))
        ).first()
        if taken is None:
            break
    expires = int((now + BIND_TTL).timestamp() // 3600) + 1
    resource.bind_code = f"{code}:{expires}"
    resource.updated_at = now
    session.add(resource)
    await session.flush()
    return code


async def bind_volunteer(session: AsyncSession, *, code: str, openid: str, now: datetime) -> Resource:
    code = code.strip()
    if not re.fullmatch(r"\d{6}", code):
        raise PoolError("绑定码应为6位数字")
    # an active resource, or one that signed itself up and waits for review (it binds in the sign-up flow)
    pending = select(Lead.resource_id).where(
        col(Lead.resource_id).is_not(None), col(Lead.state).in_(("new", "contacted"))
    )
    row = (
        await session.exec(
            select(Resource).where(
                col(Resource.bind_code).like(f"{code}:%"),
                sa.or_(col(Resource.active), col(Resource.id).in_(pending)),
            )
        )
    ).first()
    if row is None or int((row.bind_code or ":0").split(":", 1)[1] or 0) * 3600 < now.timestamp():
        raise PoolError("绑定码不正确或已过期，请联系镇街工作人员重新生成")
    await session.exec(
        sa.update(Resource)
        .where(
            col(Resource.openid) == openid,
            col(Resource.id) != row.id,
        )
        .values(openid=None)
    )
    row.openid = openid
    row.bind_code = None
    row.updated_at = now
    session.add(row)
    await session.flush()
    POOL_CACHE.clear()
    return row


#: guessing a 6-digit code: at most this many tries per WeChat user per hour (the messages themselves are counted)
BIND_ATTEMPTS_PER_HOUR = 5


async def _bind_attempts(session: AsyncSession, *, openid: str, since: datetime) -> int:
    stmt = (
        select(sa.func.count())
        .select_from(InboundMessage)
        .where(
            col(InboundMessage.openid) == openid,
            col(InboundMessage.received_at) >= since,
            col(InboundMessage.text).like(f"{BIND_PREFIX}%"),
        )
    )
    return int((await session.exec(stmt)).one())


def bind_code_of(resource: Resource) -> str | None:
    return resource.bind_code.split(":", 1)[0] if resource.bind_code else None


_ACCEPT = ("接受", "我接了", "我接", "接了", "接单", "认领", "我来", "好的我接", "同意")


_DECLINE = ("婉拒", "没空", "不接", "拒绝", "没时间", "不方便", "接不了")


_DELIVERED = ("已送达", "送到了", "已送到")


_DONE = ("已完成", "完成了", "搞定了")


_TASKS = ("我的任务", "任务", "我的邀请")


_CASE_NO = re.compile(rf"(MS\d{{8}}-{SERIAL})", re.I)


_PUNCT = re.compile(r"[\s，。！!,.、~～]+")


async def volunteer_by_openid(session: AsyncSession, *, openid: str) -> Resource | None:
    return (
        await session.exec(select(Resource).where(Resource.openid == openid, col(Resource.active)))
    ).first()


async def _pending_offers(session: AsyncSession, resource: Resource, statuses: Sequence[str]) -> list[Offer]:
    stmt = (
        select(Offer)
        .where(Offer.resource_id == resource.id, col(Offer.status).in_(statuses))
        .order_by(col(Offer.deadline), col(Offer.id))
    )
    return list((await session.exec(stmt)).all())


def tasks_link(settings: Any, resource_id: int, *, now: datetime) -> str | None:
    if settings is None or not getattr(settings, "link_secret", ""):
        return None

    token = sign_link(settings.link_secret, "tasks", resource_id, ttl=7 * 86400, now=now.timestamp())
    return f"{settings.base_url.rstrip('/')}/v/tasks?t={token}"


async def _pick(session: AsyncSession, offers: list[Offer], text: str) -> tuple[Offer | None, str | None]:
    """The offer the message is about: the only one, or the one whose case number it names."""
    m = _CASE_NO.search(text)
    if m:
        case = (await session.exec(select(Case).where(Case.case_no == m.group(1).upper()))).first()
        chosen = [o for o in offers if case is not None and o.case_id == case.id]
        return (chosen[0], None) if chosen else (None, f"没有找到编号{m.group(1).upper()}的邀请。")
    if len(offers) == 1:
        return offers[0], None
    lines = []
    for o in offers:
        case = await session.get(Case, o.case_id)
        if case is not None:
            lines.append(f"· {case.case_no}（{wish_what(case)}，{wish_where(case)}）")
    return None, "您有多个邀请，请在回复里带上编号，例如“接受 {}”：\n{}".format(
        lines[0].split("（")[0].strip("· ") if lines else "", "\n".join(lines)
    )


async def volunteer_chat(
    session: AsyncSession,
    *,
    openid: str,
    text: str,
    now: datetime,
    settings: Any = None,
    config: PoolConfig = DEFAULT_CONFIG,
) -> str | None:
    """Answers for the resource pool's volunteers in chat; None when the message is not for this router.

    ``志愿者绑定 123456`` binds the sender's WeChat; a bound volunteer may answer a pending offer (“接受”/“我接了”,
    “婉拒”/“没空”, optionally with the case number), ask “我的任务”, and report “已送达” / “已完成”.
    Pass ``settings`` to include a signed link to the tasks page in replies.
    """
    raw = (text or "").strip()
    if raw.startswith(BIND_PREFIX):
        if (
            await _bind_attempts(session, openid=openid, since=now - timedelta(hours=1))
            > BIND_ATTEMPTS_PER_HOUR
        ):
            return "尝试次数太多，请一小时后再试，或联系镇街工作人员。"
        try:
            async with session.begin_nested():
                row = await bind_volunteer(
                    session, code=raw[len(BIND_PREFIX) :].strip(" :："), openid=openid, now=now
                )
        except PoolError as exc:
            return str(exc)
        return f"绑定成功！{row.name}，以后有适合您的微心愿会在这里邀请您。回复“我的任务”可查看您的任务。"
    word = _PUNCT.sub("", _CASE_NO.sub("", raw))
    intent = (
        "accept"
        if word in _ACCEPT
        else "decline"
        if word in _DECLINE
        else "tasks"
        if word in _TASKS
        else "delivered"
        if word in _DELIVERED
        else "done"
        if word in _DONE
        else None
    )
    if intent is None:
        return None
    resource = await volunteer_by_openid(session, openid=openid)
    if resource is None:
        return None
    link = tasks_link(settings, resource.id or 0, now=now)
    if intent == "tasks":
        return await _tasks_text(session, resource, link)
    if intent in ("accept", "decline"):
        pending = await _pending_offers(session, resource, ("offered",))
        if not pending:
            return await _no_pending_reply(session, resource, now)
        chosen, problem = await _pick(session, pending, raw)
        if chosen is None:
            return problem
        try:
            async with session.begin_nested():
                answer = await (accept if intent == "accept" else decline)(
                    session, offer_id=chosen.id, now=now, config=config
                )
        except LifecycleError as exc:
            return str(exc)
        if answer.ok and intent == "accept" and answer.case is not None:
            extra = f"\n查看联系人和地址：{link}" if link else "\n回复“我的任务”查看联系人和地址。"
            return f"{answer.message}（编号{answer.case.case_no}）{extra}"
        return answer.message
    active = await _pending_offers(
        session, resource, ("accepted", "delivered") if intent == "done" else ("accepted",)
    )
    if not active:
        return "您目前没有进行中的任务。"
    chosen, problem = await _pick(session, active, raw)
    if chosen is None:
        return problem
    try:
        async with session.begin_nested():
            case = await report_progress(session, offer=chosen, stage=intent, now=now)  # type: ignore[arg-type]
    except LifecycleError as exc:
        return str(exc)
    if intent == "delivered":
        return f"已记录送达（编号{case.case_no}），完成后请回复“已完成”。谢谢您！"
    return f"已记录完成（编号{case.case_no}），居民会收到通知。感谢您的爱心！"


async def _no_pending_reply(session: AsyncSession, resource: Resource, now: datetime) -> str:
    """A late answer: say what became of the volunteer's latest invitation (someone was faster, or it lapsed)."""
    last = (
        await session.exec(
            select(Offer).where(Offer.resource_id == resource.id).order_by(col(Offer.id).desc()).limit(1)
        )
    ).first()
    recent = last is not None and last.answered_at is not None and now - last.answered_at < timedelta(days=3)
    if last is not None and recent and last.status == "withdrawn":
        case = await session.get(Case, last.case_id)
        return f"{REPLY_TEXTS['already_matched']}（编号{case.case_no if case else ''}）"
    if last is not None and recent and last.status == "timeout":
        return REPLY_TEXTS["offer_expired"]
    return "您目前没有待答复的邀请。回复“我的任务”可查看已接的任务。"


async def _tasks_text(session: AsyncSession, resource: Resource, link: str | None) -> str:
    offers = await _pending_offers(session, resource, ("offered", "accepted", "delivered"))
    if not offers:
        return "您目前没有任务。有适合您的微心愿时会在这里邀请您。"
    lines = ["您的任务："]
    for o in offers:
        case = await session.get(Case, o.case_id)
        if case is None:
            continue
        if case.status in CASE_OVER:  # ended without the offer being closed (older rows): say so, no action
            lines.append(f"· {case.case_no} {wish_what(case)}（{wish_where(case)}）已结束，无需再跟进")
            continue
        status = OFFER_LABEL.get(o.status, o.status)
        due = f"，{local_time(o.deadline)}前答复" if o.status == "offered" and o.deadline else ""
        lines.append(f"· {case.case_no} {wish_what(case)}（{wish_where(case)}）{status}{due}")
    lines.append(f"详情：{link}" if link else "回复“接受 编号”或“婉拒 编号”答复邀请。")
    return "\n".join(lines)
