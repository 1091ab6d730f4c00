"""数据图表 for staff: the charts of bot/reporting/charts.py, each with its numbers in a table beside it, the gaps
between demand and the pool's supply (bot/reporting/supply.py) with a CSV export, and Apache ECharts itself,
served from its npm package (no CDN: government networks have no internet)."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.cases.lifecycle import CITY_ROLES
from bot.db import transaction
from bot.models import Staff
from bot.reporting.charts import chart_data
from bot.reporting.forecast import forecast
from bot.reporting.overview import overview
from bot.reporting.scope import TOWN_NAMES
from bot.reporting.supply import demand_supply
from bot.settings import ROOT
from bot.web.auth import require_staff
from bot.web.views.common import client_ip, csrf_form, now_of
from bot.web.views.staff import render
from bot.web.views.stats import _scope, _scope_label
from reference.spreadsheet import safe_cell

routes = web.RouteTableDef()
#: the file of the `echarts` npm package (package.json; scripts/setup.sh runs npm ci)
ECHARTS_JS = ROOT / "node_modules" / "echarts" / "dist" / "echarts.min.js"


@routes.get("/staff/stats/charts", name="staff_charts")
@require_staff()
async def charts_page(request: web.Request, staff: Staff) -> web.Response:
    scope = _scope(staff, request.query)
    async with request.app[keys.SESSIONS]() as db:
        charts = await chart_data(db, scope=scope, now=now_of(request))
        gaps = await demand_supply(db, scope=scope, now=now_of(request))
        more = await overview(db, scope=scope, now=now_of(request), with_league=staff.role in CITY_ROLES)
        ahead = await forecast(db, scope=scope, now=now_of(request))
    ctx = {
        "c": charts,
        "o": more,
        "f": ahead,
        "gaps": gaps[:30],
        "gap_count": len(gaps),
        "data": {**charts.as_json(), **more.as_json()},
        "scope_label": _scope_label(scope),
        "towns": TOWN_NAMES,
        "town": scope.town,
        "city": staff.role in CITY_ROLES,
        "pct": lambda v: f"{v * 100:.1f}%" if v is not None else "—",
    }
    return await render(request, "stats/charts.html", ctx)


GAP_COLUMNS = (
    "镇街",
    "类别",
    "近90天受理",
    "办结",
    "等待中",
    "等待中位天数",
    "可用资源",
    "月供给",
    "月缺口",
    "建议招募",
)


@routes.post("/staff/stats/gaps.csv", name="staff_gaps_csv")
@require_staff()
async def gaps_csv(request: web.Request, staff: Staff) -> web.Response:
    """The ranked gaps as CSV (UTF-8 with BOM for Excel). A POST with CSRF: it writes an audit row."""
    form = await csrf_form(request)
    scope = _scope(staff, form)
    now = now_of(request)
    async with request.app[keys.SESSIONS]() as db:
        gaps = await demand_supply(db, scope=scope, now=now)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(GAP_COLUMNS)
    for g in gaps:  # every cell through safe_cell (a category name is typed by an admin)
        wait = "" if g.median_wait_days is None else g.median_wait_days
        row = [
            g.town,
            g.category,
            g.received,
            g.fulfilled,
            g.waiting,
            wait,
            g.resources,
            g.monthly_capacity,
            g.shortfall,
            g.recruit,
        ]
        writer.writerow([safe_cell(v) for v in row])
    async with transaction(request.app[keys.SESSIONS]) as db:
        await audit(
            db,
            staff=staff,
            action="stats_export",
            now=now,
            detail=f"导出供需缺口 {_scope_label(scope)}",
            ip=client_ip(request),
        )
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": "attachment; filename*=UTF-8''gaps.csv"},
    )


@routes.get("/assets/echarts.min.js", name="echarts_js")
async def echarts_js(request: web.Request) -> web.StreamResponse:
    if not ECHARTS_JS.is_file():  # not installed: the pages show their tables, the charts stay empty
        raise web.HTTPNotFound(text="echarts is not installed (npm ci)")
    return web.FileResponse(
        ECHARTS_JS, headers={"Content-Type": "text/javascript", "Cache-Control": "public, max-age=86400"}
    )
