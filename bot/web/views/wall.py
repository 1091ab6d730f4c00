"""圆梦墙 for everyone (no sign-in): the open wishes with filters by town and category, each wish on its own page
under its public id, a JSON view of both, the claim form, and the donor's own page of a claim.

Only ``bot.pool.wall.PublicWish`` reaches these pages: the wording staff approved, town, community, category and how
long the wish has waited — never the case number or anything of the resident."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.db import transaction
from bot.pool.leads import WISH_CATEGORIES
from bot.pool.wall import (
    DONOR_TYPES,
    MESSAGE_MAX,
    WallError,
    check_claim_form,
    claim_wish,
    donor_view,
    open_wishes,
    public_wish,
)
from bot.web.params import ParamError, form_text, parse_choice, parse_page
from bot.web.views.common import csrf_form, now_of
from reference.towns import TOWN_NAMES

routes = web.RouteTableDef()
PER_PAGE = 30
PID = "{public_id:[a-z0-9]{8}}"


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
    page = parse_page(request.query)
    async with request.app[keys.SESSIONS]() as db:
        wishes, has_next = await open_wishes(
            db, now=now_of(request), town=town, category=category, page=page, per_page=PER_PAGE
        )
    q = {k: v for k, v in (("town", town), ("category", category)) if v}
    base = request.app.router["wall"].url_for()
    ctx = {
        "wishes": wishes,
        "town": town,
        "category": category,
        "towns": TOWN_NAMES,
        "categories": WISH_CATEGORIES,
        "prev_url": str(base.with_query({**q, "page": str(page - 1)})) if page > 1 else None,
        "next_url": str(base.with_query({**q, "page": str(page + 1)})) if has_next else None,
    }
    return aiohttp_jinja2.render_template("wall/list.html", request, ctx)


@routes.get("/wall.json", name="wall_json")
async def wall_json(request: web.Request) -> web.Response:
    town, category = _filters(request)
    page = parse_page(request.query)
    async with request.app[keys.SESSIONS]() as db:
        wishes, has_next = await open_wishes(
            db, now=now_of(request), town=town, category=category, page=page, per_page=PER_PAGE
        )
    return web.json_response(
        {"wishes": [w.as_json() for w in wishes], "page": page, "has_next": has_next},
        dumps=_dumps,
    )


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


def _wish_page(
    request: web.Request, w: Any, *, error: str | None = None, form: Any = None, status: int = 200
):
    ctx = {"w": w, "types": DONOR_TYPES, "error": error, "form": form or {}, "message_max": MESSAGE_MAX}
    return aiohttp_jinja2.render_template("wall/wish.html", request, ctx, status=status)


@routes.get(f"/wall/{PID}", name="wall_wish")
async def wish(request: web.Request) -> web.Response:
    return _wish_page(request, await _wish_or_404(request))


@routes.post(f"/wall/{PID}/claim", name="wall_claim")
async def claim(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    w = await _wish_or_404(request)
    try:
        checked = check_claim_form(
            donor_name=form_text(form, "donor_name", max_len=64, field="姓名或单位"),
            donor_type=form_text(form, "donor_type", max_len=16, field="身份"),
            phone=form_text(form, "phone", max_len=32, field="电话"),
            message=form_text(form, "message", max_len=MESSAGE_MAX, field="寄语", multiline=True),
        )
        async with transaction(request.app[keys.SESSIONS]) as db:
            c = await claim_wish(
                db, public_id=w.public_id, form=checked, now=now_of(request), hold=_hold(request)
            )
    except (WallError, ParamError) as exc:
        status = 409 if exc.__class__.__name__ == "WishTaken" else 400
        return _wish_page(request, w, error=str(exc), form=form, status=status)
    raise web.HTTPFound(request.app.router["wall_donor"].url_for(token=c.token))


@routes.get("/wall/claims/{token:[A-Za-z0-9_-]{16,64}}", name="wall_donor")
async def donor(request: web.Request) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        view = await donor_view(db, token=request.match_info["token"], now=now_of(request))
    if view is None:
        raise web.HTTPNotFound()
    resp = aiohttp_jinja2.render_template("wall/donor.html", request, {"v": view})
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp
