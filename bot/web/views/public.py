"""项目公示 and 信息发布 for everyone: completed micro-projects, fulfilled micro-wishes, figures and notices.

No personal data ever reaches these pages: the queries behind them (`bot.reporting.public`) select only category,
town, month (and, for micro-projects, which are public works, the item and community) — never a name, phone,
address or a micro-wish's description."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.cases.numbering import CHINA
from bot.pool.walldonor import listed_donors
from bot.reporting.notices import get_public_notice, public_notices
from bot.reporting.public import public_figures, public_projects, public_wishes
from bot.reporting.scope import TOWN_NAMES
from bot.web.params import ParamError, parse_choice, parse_int_id, parse_page
from bot.web.views.common import now_of as _now

routes = web.RouteTableDef()
PER_PAGE = 30


def _town(request: web.Request) -> str | None:
    """`?town=`: empty for the whole city, else one of the 33 towns; anything else is a 400 page (ParamError)."""
    town = parse_choice(request.query.get("town"), ("", *TOWN_NAMES), default="", field="镇街")
    return town or None


def _page(request: web.Request) -> int:
    """`?page=` through the web edge's one parser: ASCII digits only (`²` is no page number), 1..MAX_PAGE."""
    return parse_page(request.query)


def _day(dt: datetime) -> str:
    return dt.astimezone(CHINA).strftime("%Y-%m-%d")


def _render(request: web.Request, template: str, ctx: dict[str, Any]) -> web.Response:
    # no shared caching: the page carries the session cookie the CSRF context processor sets
    return aiohttp_jinja2.render_template(template, request, {"towns": TOWN_NAMES, "day": _day, **ctx})


def _page_urls(
    request: web.Request, name: str, town: str | None, page: int, has_next: bool
) -> dict[str, Any]:
    base = request.app.router[name].url_for()
    q = {"town": town} if town else {}
    return {
        "prev_url": str(base.with_query({**q, "page": str(page - 1)})) if page > 1 else None,
        "next_url": str(base.with_query({**q, "page": str(page + 1)})) if has_next else None,
    }


@routes.get("/public", name="public_home")
async def disclosure(request: web.Request) -> web.Response:
    town, page = _town(request), _page(request)
    now = _now(request)
    async with request.app[keys.SESSIONS]() as db:
        figures = await public_figures(db, town=town)
        projects, more_projects = await public_projects(db, town=town, page=page, per_page=PER_PAGE)
        wishes, more_wishes = await public_wishes(db, town=town, page=page, per_page=PER_PAGE)
        notices, _ = await public_notices(db, town=town, per_page=3, now=now)
        donors = await listed_donors(db, town=town, now=now)
    ctx = {
        "donors": donors,
        "town": town,
        "f": figures,
        "projects": projects,
        "wishes": wishes,
        "notices": notices,
        "page": page,
        **_page_urls(request, "public_home", town, page, more_projects or more_wishes),
    }
    return _render(request, "public/home.html", ctx)


@routes.get("/public/notices", name="public_notices")
async def notices(request: web.Request) -> web.Response:
    town, page = _town(request), _page(request)
    now = _now(request)
    async with request.app[keys.SESSIONS]() as db:
        rows, has_next = await public_notices(db, town=town, page=page, now=now)
    ctx = {
        "town": town,
        "rows": rows,
        "page": page,
        **_page_urls(request, "public_notices", town, page, has_next),
    }
    return _render(request, "public/notices.html", ctx)


@routes.get("/public/notices/{notice_id}", name="public_notice")
async def notice(request: web.Request) -> web.Response:
    try:
        notice_id = parse_int_id(request.match_info["notice_id"], field="公告编号")
    except ParamError:  # a path that names no notice (²、abc、a 30-digit number): not found, never a 500
        raise web.HTTPNotFound() from None
    async with request.app[keys.SESSIONS]() as db:
        n = await get_public_notice(db, notice_id=notice_id, now=_now(request))
    if n is None:
        raise web.HTTPNotFound()
    return _render(request, "public/notice.html", {"n": n})
