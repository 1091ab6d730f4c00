"""Site-wide pages that belong to no role: the home address, the favicon, and the 大字 (large text) switch.

The large-text choice is a cookie the server reads when it renders (``<html class="big">``), so it works
without JavaScript and persists across the resident's, survey and volunteer pages."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.web.auth import safe_next

routes = web.RouteTableDef()
STATIC = Path(__file__).resolve().parent.parent / "static"
TEXT_COOKIE = "dgj_text"
ONE_YEAR = 365 * 86400


@routes.get("/", name="site_home")
async def home(request: web.Request) -> web.Response:
    """The brand link's target: the public programme page (residents and visitors have no account)."""
    raise web.HTTPFound(request.app.router["public_home"].url_for())


@routes.get("/favicon.ico", name="favicon")
async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC / "favicon.png", headers={"Content-Type": "image/png", "Cache-Control": "max-age=86400"}
    )


@routes.get("/text-size", name="text_size")
async def text_size(request: web.Request) -> web.Response:
    """`?size=big|normal&next=/path`: remember the choice for a year and go back to the page it came from."""
    big = request.query.get("size") == "big"
    target = safe_next(request.query.get("next"), str(request.app.router["public_home"].url_for()))
    response = web.HTTPFound(target)
    if big:
        response.set_cookie(TEXT_COOKIE, "big", max_age=ONE_YEAR, path="/", samesite="Lax", httponly=True)
    else:
        response.del_cookie(TEXT_COOKIE, path="/")
    raise response
