"""The volunteer's pages, opened from WeChat through signed links (no account): the offer page (accept/decline,
then what to deliver, where and whom to contact, and the progress form) and "my tasks".

``/offer/<token>`` and ``/tasks/<token>`` are the shapes the outbox dispatcher gives ``sign:offer:<id>`` and
``sign:tasks:<id>`` markers; they serve the same pages as ``/v/offer/<token>`` and ``/v/tasks?t=<token>``.
The resident's phone and address appear only once this volunteer's offer is accepted."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp_jinja2
from aiohttp import web
from aiohttp.web_request import FileField
from aiohttp_session import get_session
from sqlmodel import col, select

from bot import keys
from bot.cases.lifecycle import STATE_LABEL, LifecycleError
from bot.cases.numbering import CHINA
from bot.db import transaction
from bot.delivery.links import BadLink, sign_link, verify_link
from bot.media import MediaError, store_upload
from bot.models import Case, Offer, Resource
from bot.pool import MATCHED, OFFER_LABEL, PoolConfig, accept, decline, report_progress
from bot.pool.records import CASE_OVER, contact_visible, volunteer_actor, volunteer_refusal
from bot.pool.walldonor import claims_of_resource
from bot.web.websec import check_csrf
from reference.privacy import mask_phone

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
OFFER_KIND, TASKS_KIND = "offer", "tasks"


def _now(request: web.Request) -> datetime:
    now: datetime = request.app[keys.CLOCK]()
    return now


def _secret(request: web.Request) -> str:
    return request.app[keys.SETTINGS].link_secret


def _verify(request: web.Request, kind: str, token: str) -> int:
    try:
        subject = verify_link(_secret(request), kind, token, now=_now(request).timestamp())
    except BadLink:
        raise web.HTTPForbidden(text="链接无效或已过期，请在公众号回复“我的任务”获取新链接。") from None
    if not subject.isdigit():
        raise web.HTTPForbidden(text="链接无效")
    return int(subject)


def _fmt(dt: datetime | None) -> str:
    return dt.astimezone(CHINA).strftime("%m月%d日 %H:%M") if dt else ""


def offer_token(request: web.Request, offer_id: int) -> str:
    return sign_link(_secret(request), OFFER_KIND, offer_id, now=_now(request).timestamp())


#: links on the tasks page: the same link all day, valid until the end of the next day (China time)
TASKS_LINK_DAYS = 2


def stable_offer_token(request: web.Request, offer_id: int, now: datetime) -> str:
    """An offer link that does not change between visits on the same day and expires within two days, so the
    tasks page does not hand out a fresh month-long link on every visit."""
    local = now.astimezone(CHINA)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    expires = day_start + timedelta(days=TASKS_LINK_DAYS)
    return sign_link(_secret(request), OFFER_KIND, offer_id, ttl=0, now=expires.timestamp())


async def _render(
    request: web.Request, template: str, ctx: dict[str, Any], *, status: int = 200
) -> web.Response:
    session = await get_session(request)
    response = aiohttp_jinja2.render_template(
        template,
        request,
        {
            "flash": session.pop("flash", None),
            "fmt": _fmt,
            "OFFER_LABEL": OFFER_LABEL,
            "STATE_LABEL": STATE_LABEL,
            **ctx,
        },
    )
    response.set_status(status)
    return response


async def _flash(request: web.Request, text: str, kind: str = "info") -> None:
    session = await get_session(request)
    session["flash"] = {"text": text, "kind": kind}


def _offer_url(request: web.Request, token: str) -> str:
    return str(request.app.router["volunteer_offer"].url_for(token=token))


# ------------------------------------------------------------------ the offer page
@routes.get("/v/offer/{token}", name="volunteer_offer")
async def offer_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    offer_id = _verify(request, OFFER_KIND, token)
    async with request.app[keys.SESSIONS]() as db:
        offer = await db.get(Offer, offer_id)
        if offer is None:
            raise web.HTTPNotFound()
        case = await db.get(Case, offer.case_id)
        resource = await db.get(Resource, offer.resource_id)
        taken = (
            await db.exec(
                select(Offer.id).where(
                    Offer.case_id == offer.case_id, Offer.id != offer.id, col(Offer.status).in_(MATCHED)
                )
            )
        ).first() is not None
    if case is None or resource is None:
        raise web.HTTPNotFound()
    refusal = volunteer_refusal(case=case, resource=resource)
    mine = contact_visible(offer=offer, case=case, resource=resource)
    ctx = {
        "o": offer,
        "c": case,
        "r": resource,
        "token": token,
        "mine": mine,
        "taken": taken,
        "over": refusal,
        "phone": (case.contact_phone or "") if mine else mask_phone(case.contact_phone or ""),
        "pending": offer.status == "offered"
        and refusal is None
        and not taken
        and (offer.deadline is None or offer.deadline > _now(request)),
    }
    return await _render(request, "volunteer/offer.html", ctx)


@routes.get("/offer/{token}", name="volunteer_offer_short")
async def offer_short(request: web.Request) -> web.Response:
    raise web.HTTPFound(_offer_url(request, request.match_info["token"]))


@routes.post("/v/offer/{token}/answer", name="volunteer_offer_answer")
async def offer_answer(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    token = request.match_info["token"]
    offer_id = _verify(request, OFFER_KIND, token)
    config = PoolConfig.from_settings(request.app[keys.SETTINGS])
    choice = str(form.get("answer", ""))
    if choice not in ("accept", "decline"):
        raise web.HTTPBadRequest(text="请选择接受或婉拒")
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            fn = accept if choice == "accept" else decline
            answer = await fn(db, offer_id=offer_id, now=_now(request), config=config)
    except LifecycleError as exc:
        await _flash(request, str(exc), "error")
        raise web.HTTPFound(_offer_url(request, token)) from None
    await _flash(request, answer.message, "info" if answer.ok else "error")
    raise web.HTTPFound(_offer_url(request, token))


@routes.post("/v/offer/{token}/progress", name="volunteer_offer_progress")
async def offer_progress(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    token = request.match_info["token"]
    offer_id = _verify(request, OFFER_KIND, token)
    raw_stage = str(form.get("stage", ""))
    if raw_stage not in ("delivered", "done"):
        raise web.HTTPBadRequest(text="请选择进度")
    stage: Literal["delivered", "done"] = "delivered" if raw_stage == "delivered" else "done"
    photo = _uploaded(form.get("photo"), request.app[keys.SETTINGS].media_max_image_bytes)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            offer = await db.get(Offer, offer_id)
            if offer is None:
                raise web.HTTPNotFound()
            case = await report_progress(
                db,
                offer=offer,
                stage=stage,
                photo_url=str(form.get("photo_url", ""))[:500],
                note=str(form.get("note", ""))[:500],
                now=_now(request),
            )
            if photo:  # checked by its bytes and stored; the case's timeline points at the stored photo
                resource = await db.get(Resource, offer.resource_id)
                assert resource is not None  # report_progress refused a missing resource
                await store_upload(
                    db,
                    storage=request.app[keys.MEDIA].storage,
                    settings=request.app[keys.SETTINGS],
                    case=case,
                    data=photo,
                    source="volunteer",
                    actor=volunteer_actor(resource),
                    now=_now(request),
                )
    except (LifecycleError, MediaError) as exc:
        await _flash(request, str(exc), "error")
        raise web.HTTPFound(_offer_url(request, token)) from None
    await _flash(
        request,
        "已记录送达，谢谢您！" if stage == "delivered" else "已记录完成，居民会收到通知。感谢您的爱心！",
    )
    raise web.HTTPFound(_offer_url(request, token))


def _uploaded(field: Any, limit: int) -> bytes:
    """The bytes of an uploaded file (at most ``limit`` + 1 read, so an oversized one is refused, not stored)."""
    if not isinstance(field, FileField):
        return b""
    return field.file.read(limit + 1)


# ------------------------------------------------------------------ my tasks
@routes.get("/v/tasks", name="volunteer_tasks")
async def tasks_page(request: web.Request) -> web.Response:
    resource_id = _verify(request, TASKS_KIND, request.query.get("t", ""))
    async with request.app[keys.SESSIONS]() as db:
        resource = await db.get(Resource, resource_id)
        if resource is None:
            raise web.HTTPNotFound()
        rows = (
            await db.exec(
                select(Offer, Case)
                .join(Case, col(Case.id) == Offer.case_id)
                .where(Offer.resource_id == resource_id)
                .order_by(col(Offer.offered_at).desc())
                .limit(50)
            )
        ).all()
    now = _now(request)
    groups: dict[str, list[dict[str, Any]]] = {"offered": [], "active": [], "finished": [], "ended": []}
    for offer, case in rows:
        visible = contact_visible(offer=offer, case=case, resource=resource)
        open_ = resource.active and case.status not in CASE_OVER
        item = {
            "o": offer,
            "c": case,
            # links only where there is something to do, and stable for the day (see stable_offer_token)
            "url": _offer_url(request, stable_offer_token(request, offer.id or 0, now)) if open_ else None,
            "phone": (case.contact_phone or "") if visible else "",
            "address": (case.address or "") if visible else "",
            "state": STATE_LABEL.get(case.status, case.status),
        }
        if offer.status == "offered" and open_:
            groups["offered"].append(item)
        elif offer.status in ("accepted", "delivered") and open_:
            groups["active"].append(item)
        elif offer.status == "done" or (offer.status in MATCHED and case.status in ("completed", "closed")):
            groups["finished"].append(item)
        elif offer.status in MATCHED or case.status in ("cancelled", "rejected", "merged"):
            groups["ended"].append(item)  # the case ended without this volunteer's help being needed
    async with request.app[keys.SESSIONS]() as db:
        wall_claims = await claims_of_resource(db, resource_id=resource_id, now=now)
    ctx = {"r": resource, "g": groups, "wall_claims": wall_claims, "t": request.query.get("t", "")}
    return await _render(request, "volunteer/tasks.html", ctx)


@routes.get("/tasks/{token}", name="volunteer_tasks_short")
async def tasks_short(request: web.Request) -> web.Response:
    url = request.app.router["volunteer_tasks"].url_for().with_query(t=request.match_info["token"])
    raise web.HTTPFound(url)
