"""圆梦墙 for everyone (no sign-in): the open wishes with filters by town, category and "near me" (a town, or the
phone's location turned into the nearest town by the town centroids — the coordinates are used for that one answer
and stored nowhere), each wish on its own page under its public id, a JSON view of both, the claim form, the group
claim of several wishes by one organisation, and the donor's own page of a claim or a group with the thank-you
certificate.

Only ``bot.pool.wall.PublicWish`` reaches these pages: the wording staff approved, town, community, category and how
long the wish has waited — never the case number or anything of the resident. The claim and group POSTs are rate
limited per address and per phone (``bot.conversation.ratelimit.RateLimiter``, in Redis when configured)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.conversation.ratelimit import RateLimiter
from bot.db import transaction
from bot.delivery.links import BadLink, verify_link
from bot.models import Resource
from bot.pool.certificate import render_certificate
from bot.pool.leads import WISH_CATEGORIES
from bot.pool.wall import (
    DONOR_TYPES,
    MESSAGE_MAX,
    ClaimForm,
    WallError,
    check_claim_form,
    claim_wish,
    open_wishes,
    public_wish,
)
from bot.pool.walldonor import certificate_of, donor_view, group_view
from bot.pool.wallgroup import GROUP_MAX, GROUP_TYPES, check_group_ids, claim_group
from bot.web.params import ParamError, form_text, parse_choice, parse_page
from bot.web.views.common import client_ip, csrf_form, now_of
from reference import towns
from reference.towns import TOWN_NAMES

routes = web.RouteTableDef()
PER_PAGE = 30
PID = "{public_id:[a-z0-9]{8}}"
TOKEN = "{token:[A-Za-z0-9_-]{16,64}}"
#: claims (single or group) per hour: per address (generous: carriers and event Wi-Fi share addresses), per phone
CLAIM_LIMITS = {"ip": 30, "phone": 5}
LIMITED = "提交太频繁了，请一小时后再试。如需帮助，请拨打 12345 或联系镇街工作人员。"
#: a shared location farther than this from every town centroid is not in Dongguan
NEAR_MAX_KM = 25.0


def _limiters(request: web.Request) -> dict[str, RateLimiter]:
    made = request.app[keys.LIMITERS]
    # Redis is connected after the app is built: the limiters are made on first use, shared when Redis is set
    if "wall:ip" not in made:
        for name, limit in CLAIM_LIMITS.items():
            made[f"wall:{name}"] = RateLimiter(limit=limit, window=3600, redis=request.app[keys.REDIS])
    return {"ip": made["wall:ip"], "phone": made["wall:phone"]}


async def _allowed(request: web.Request, *, phone: str | None) -> bool:
    limits, ts = _limiters(request), now_of(request).timestamp()
    if phone is None:
        return await limits["ip"].allow(f"wall:ip:{client_ip(request)}", now=ts)
    return await limits["phone"].allow(f"wall:phone:{phone}", now=ts)


# ------------------------------------------------------------------ the wall, near me
def _coordinate(raw: str | None, *, lo: float, hi: float, field: str) -> float | None:
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if len(text) > 12 or not text.isascii() or not text.replace(".", "", 1).replace("-", "", 1).isdigit():
        raise ParamError(f"{field}格式不对")
    value = float(text)
    if not lo <= value <= hi:
        raise ParamError(f"{field}格式不对")
    return value


def _near(request: web.Request) -> tuple[str | None, list[str]]:
    """The nearest town to ``?lat=&lon=`` and the next nearest (for links); nothing is kept of the point."""
    lat = _coordinate(request.query.get("lat"), lo=-90, hi=90, field="纬度")
    lon = _coordinate(request.query.get("lon"), lo=-180, hi=180, field="经度")
    if lat is None or lon is None:
        return None, []
    here = towns.Town("", "", lat, lon)
    ranked = sorted(towns.TOWNS, key=lambda t: towns.distance_km(here, t))
    if towns.distance_km(here, ranked[0]) > NEAR_MAX_KM:
        raise ParamError("您的位置不在东莞市内，请直接选择镇街")
    return ranked[0].name, [t.name for t in ranked[1:4]]


def _filters(request: web.Request) -> tuple[str | None, str | None]:
    town = parse_choice(request.query.get("town"), ("", *TOWN_NAMES), default="", field="镇街")
    cat = parse_choice(request.query.get("category"), ("", *WISH_CATEGORIES), default="", field="类别")
    return town or None, cat or None


def _hold(request: web.Request) -> timedelta:
    hours = float(getattr(request.app[keys.SETTINGS], "wall_reserve_hours", 48.0) or 48.0)
    return timedelta(hours=hours)


@routes.get("/wall", name="wall")
async def wall(request: web.Request) -> web.Response:
    town, category = _filters(request)
    nearest, nearby = _near(request)
    town = nearest or town
    page = parse_page(request.query)
    as_t = request.query.get("t", "")[:200]
    res = await _as_resource(
        request, as_t
    )  # a pool donor browsing with their signed link: wish links keep it
    async with request.app[keys.SESSIONS]() as db:
        wishes, has_next = await open_wishes(
            db, now=now_of(request), town=town, category=category, page=page, per_page=PER_PAGE
        )
    q = {k: v for k, v in (("town", town), ("category", category), ("t", as_t if res else "")) if v}
    base = request.app.router["wall"].url_for()
    ctx = {
        "wishes": wishes,
        "town": town,
        "category": category,
        "nearest": nearest,
        "nearby": nearby,
        "as_t": as_t if res else "",
        "as_resource": res,
        "towns": TOWN_NAMES,
        "categories": WISH_CATEGORIES,
        "prev_url": str(base.with_query({**q, "page": str(page - 1)})) if page > 1 else None,
        "next_url": str(base.with_query({**q, "page": str(page + 1)})) if has_next else None,
    }
    return aiohttp_jinja2.render_template("wall/list.html", request, ctx)


@routes.get("/wall.json", name="wall_json")
async def wall_json(request: web.Request) -> web.Response:
    town, category = _filters(request)
    nearest, _ = _near(request)
    town = nearest or town
    page = parse_page(request.query)
    async with request.app[keys.SESSIONS]() as db:
        wishes, has_next = await open_wishes(
            db, now=now_of(request), town=town, category=category, page=page, per_page=PER_PAGE
        )
    body = {"wishes": [w.as_json() for w in wishes], "page": page, "has_next": has_next, "town": town}
    return web.json_response(body, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


async def _wish_or_404(request: web.Request) -> Any:
    async with request.app[keys.SESSIONS]() as db:
        w = await public_wish(db, public_id=request.match_info["public_id"], now=now_of(request))
    if w is None:
        raise web.HTTPNotFound()
    return w


@routes.get(f"/wall/{PID}.json", name="wall_wish_json")
async def wish_json(request: web.Request) -> web.Response:
    w = await _wish_or_404(request)
    return web.json_response(w.as_json(), dumps=_dumps)


# ------------------------------------------------------------------ a donor known to the pool (signed link)
async def _as_resource(request: web.Request, token: str) -> Resource | None:
    """The pool resource whose signed tasks link (``?t=``) the donor came with; None without one."""
    if not token:
        return None
    secret = getattr(request.app[keys.SETTINGS], "link_secret", "")
    try:
        subject = verify_link(secret, "tasks", token, now=now_of(request).timestamp())
    except BadLink:
        raise ParamError("链接已失效，请用微信里最新的任务链接打开") from None
    async with request.app[keys.SESSIONS]() as db:
        res = await db.get(Resource, int(subject)) if subject.isdigit() else None
    if res is None or not res.active or not res.phone:
        raise ParamError("链接已失效，请用微信里最新的任务链接打开")
    return res


def _form_of(form: Any, res: Resource | None, *, group: bool = False) -> ClaimForm:
    message = form_text(form, "message", max_len=MESSAGE_MAX, field="寄语", multiline=True)
    if res is not None:  # the pool knows who this is: its own name and phone, not the form's
        kind = res.kind if res.kind in DONOR_TYPES else "individual"
        if group and kind not in GROUP_TYPES:
            kind = form_text(form, "donor_type", max_len=16, field="身份")
        return check_claim_form(donor_name=res.name, donor_type=kind, phone=res.phone or "", message=message)
    return check_claim_form(
        donor_name=form_text(form, "donor_name", max_len=64, field="姓名或单位"),
        donor_type=form_text(form, "donor_type", max_len=16, field="身份"),
        phone=form_text(form, "phone", max_len=32, field="电话"),
        message=message,
    )


# ------------------------------------------------------------------ one wish: page and claim
def _wish_page(
    request: web.Request,
    w: Any,
    *,
    error: str | None = None,
    form: Any = None,
    status: int = 200,
    res: Any = None,
) -> web.Response:
    ctx = {
        "w": w,
        "types": DONOR_TYPES,
        "error": error,
        "form": form or {},
        "message_max": MESSAGE_MAX,
        "as_resource": res,
        "t": request.query.get("t", "") if form is None else str((form or {}).get("t", ""))[:200],
    }
    return aiohttp_jinja2.render_template("wall/wish.html", request, ctx, status=status)


@routes.get(f"/wall/{PID}", name="wall_wish")
async def wish(request: web.Request) -> web.Response:
    w = await _wish_or_404(request)
    res = await _as_resource(request, request.query.get("t", "")[:200])
    return _wish_page(request, w, res=res)


@routes.post(f"/wall/{PID}/claim", name="wall_claim")
async def claim(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    w = await _wish_or_404(request)
    if not await _allowed(request, phone=None):
        return _wish_page(request, w, error=LIMITED, form=form, status=429)
    try:
        res = await _as_resource(request, str(form.get("t", ""))[:200])
        checked = _form_of(form, res)
        if not await _allowed(request, phone=checked.phone):
            return _wish_page(request, w, error=LIMITED, form=form, status=429, res=res)
        async with transaction(request.app[keys.SESSIONS]) as db:
            c = await claim_wish(
                db,
                public_id=w.public_id,
                form=checked,
                now=now_of(request),
                hold=_hold(request),
                resource_id=res.id if res else None,
                listed=form.get("listed") == "1",
            )
    except (WallError, ParamError) as exc:
        status = 409 if exc.__class__.__name__ == "WishTaken" else 400
        return _wish_page(request, w, error=str(exc), form=form, status=status)
    raise web.HTTPFound(request.app.router["wall_donor"].url_for(token=c.token))


# ------------------------------------------------------------------ several wishes at once
def _group_page(
    request: web.Request,
    wishes: Any,
    *,
    town: str | None,
    chosen: list[str],
    error: str | None = None,
    form: Any = None,
    status: int = 200,
    res: Resource | None = None,
    t: str = "",
) -> web.Response:
    ctx = {
        "as_resource": res,
        "t": t,
        "wishes": wishes,
        "town": town,
        "towns": TOWN_NAMES,
        "chosen": chosen,
        "types": {k: DONOR_TYPES[k] for k in GROUP_TYPES},
        "error": error,
        "form": form or {},
        "message_max": MESSAGE_MAX,
        "group_max": GROUP_MAX,
    }
    return aiohttp_jinja2.render_template("wall/group.html", request, ctx, status=status)


async def _open_for_group(request: web.Request, town: str | None) -> Any:
    async with request.app[keys.SESSIONS]() as db:
        wishes, _ = await open_wishes(db, now=now_of(request), town=town, per_page=60)
    return wishes


@routes.get("/wall/group", name="wall_group")
async def group_form(request: web.Request) -> web.Response:
    town, _ = _filters(request)
    t = request.query.get("t", "")[:200]
    res = await _as_resource(request, t)
    wishes = await _open_for_group(request, town)
    return _group_page(request, wishes, town=town, chosen=[], res=res, t=t if res else "")


async def _texts(request: web.Request, taken: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(the wish's public wording, why) of the wishes a group claim could not take."""
    out = []
    async with request.app[keys.SESSIONS]() as db:
        for pid, why in taken:
            known = await public_wish(db, public_id=pid, now=now_of(request))
            out.append((known.text if known is not None else f"心愿 {pid}", why))
    return out


@routes.post("/wall/group", name="wall_group_post")
async def group_post(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    town = parse_choice(form.get("town"), ("", *TOWN_NAMES), default="", field="镇街") or None
    chosen = [str(x)[:16] for x in form.getall("wish", [])][: GROUP_MAX + 1]
    t = str(form.get("t", ""))[:200]
    wishes = await _open_for_group(request, town)
    again: dict[str, Any] = {"town": town, "chosen": chosen, "form": form}  # the form shown again
    if not await _allowed(request, phone=None):
        return _group_page(request, wishes, error=LIMITED, status=429, **again)
    try:
        res = await _as_resource(request, t)
        again.update(res=res, t=t if res else "")
        ids = check_group_ids(chosen)
        checked = _form_of(form, res, group=True)
        if not await _allowed(request, phone=checked.phone):
            return _group_page(request, wishes, error=LIMITED, status=429, **again)
        async with transaction(request.app[keys.SESSIONS]) as db:
            result = await claim_group(
                db,
                public_ids=ids,
                form=checked,
                now=now_of(request),
                hold=_hold(request),
                resource_id=res.id if res else None,
                listed=form.get("listed") == "1",
            )
    except (WallError, ParamError) as exc:
        return _group_page(request, wishes, error=str(exc), status=400, **again)
    taken = await _texts(request, result.taken)
    if not result.claimed:
        error = "所选心愿都没能认领：" + "；".join(f"{text}（{why}）" for text, why in taken)
        again["chosen"] = []
        return _group_page(request, await _open_for_group(request, town), error=error, status=409, **again)
    target = request.app.router["wall_group_donor"].url_for(token=result.token)
    if not taken:
        raise web.HTTPFound(target)
    # partial success: this answer names the wishes that could not be claimed; the group's page keeps the rest
    async with request.app[keys.SESSIONS]() as db:
        views = await group_view(db, group_token=result.token, now=now_of(request))
    ctx = {"views": views, "first": views[0], "taken": taken, "page_url": str(target)}
    return _private(aiohttp_jinja2.render_template("wall/group_donor.html", request, ctx))


# ------------------------------------------------------------------ the donor's pages
def _private(resp: web.Response) -> web.Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@routes.get(f"/wall/claims/{TOKEN}", name="wall_donor")
async def donor(request: web.Request) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        view = await donor_view(db, token=request.match_info["token"], now=now_of(request))
    if view is None:
        raise web.HTTPNotFound()
    ctx = {"v": view, "cert": certificate_of(view)}
    return _private(aiohttp_jinja2.render_template("wall/donor.html", request, ctx))


@routes.get(f"/wall/groups/{TOKEN}", name="wall_group_donor")
async def group_donor(request: web.Request) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        views = await group_view(db, group_token=request.match_info["token"], now=now_of(request))
    if not views:
        raise web.HTTPNotFound()
    ctx = {"views": views, "first": views[0]}
    return _private(aiohttp_jinja2.render_template("wall/group_donor.html", request, ctx))


@routes.get(f"/wall/claims/{TOKEN}/certificate.{{fmt:png|svg}}", name="wall_certificate")
async def certificate(request: web.Request) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        view = await donor_view(db, token=request.match_info["token"], now=now_of(request))
    cert = certificate_of(view) if view is not None else None
    if cert is None:
        raise web.HTTPNotFound()
    # drawing a PNG takes a moment of CPU: off the event loop
    body, content_type = await asyncio.to_thread(render_certificate, cert, prefer=request.match_info["fmt"])
    ext = "png" if content_type == "image/png" else "svg"
    resp = web.Response(body=body, content_type=content_type)
    resp.headers["Content-Disposition"] = f'inline; filename="certificate.{ext}"'
    return _private(resp)
