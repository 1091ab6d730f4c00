"""数据图表 for staff: the charts of bot/reporting/charts.py, each with its numbers in a table beside it, and
Apache ECharts itself, served from its npm package (no CDN: government networks have no internet)."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.cases.lifecycle import CITY_ROLES
from bot.models import Staff
from bot.reporting.charts import chart_data
from bot.reporting.scope import TOWN_NAMES
from bot.settings import ROOT
from bot.web.auth import require_staff
from bot.web.views.common import now_of
from bot.web.views.staff import render
from bot.web.views.stats import _scope, _scope_label

routes = web.RouteTableDef()
#: the file of the `echarts` npm package (package.json; scripts/setup.sh runs npm ci)
ECHARTS_JS = ROOT / "node_modules" / "echarts" / "dist" / "echarts.min.js"


@routes.get("/staff/stats/charts", name="staff_charts")
@require_staff()
async def charts_page(request: web.Request, staff: Staff) -> web.Response:
    scope = _scope(staff, request.query)
    async with request.app[keys.SESSIONS]() as db:
        charts = await chart_data(db, scope=scope, now=now_of(request))
    ctx = {
        "c": charts,
        "data": charts.as_json(),
        "scope_label": _scope_label(scope),
        "towns": TOWN_NAMES,
        "town": scope.town,
        "city": staff.role in CITY_ROLES,
        "pct": lambda v: f"{v * 100:.1f}%" if v is not None else "—",
    }
    return await render(request, "stats/charts.html", ctx)


@routes.get("/assets/echarts.min.js", name="echarts_js")
async def echarts_js(request: web.Request) -> web.StreamResponse:
    if not ECHARTS_JS.is_file():  # not installed: the pages show their tables, the charts stay empty
        raise web.HTTPNotFound(text="echarts is not installed (npm ci)")
    return web.FileResponse(
        ECHARTS_JS, headers={"Content-Type": "text/javascript", "Cache-Control": "public, max-age=86400"}
    )
