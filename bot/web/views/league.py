"""The league table of towns (效能监督) at the HTTP edge: a period, a sortable column, an export (CSV)."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.cases.actors import SUPERVISORS
from bot.db import transaction
from bot.models import Staff
from bot.reporting.league import COLUMNS, STAGES, csv_rows, fmt, league, sort_rows
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_choice
from bot.web.views.common import client_ip, now_of
from bot.web.views.staff import render
from bot.web.views.stats import date_range
from reference.spreadsheet import safe_cell

routes = web.RouteTableDef()


@routes.get("/staff/league", name="staff_league")
@require_staff(tuple(SUPERVISORS))
async def league_page(request: web.Request, staff: Staff) -> web.StreamResponse:
    now = now_of(request)
    try:
        first, last, start, end = date_range(request.query, now=now)
        key = parse_choice(request.query.get("sort"), ("town", *COLUMNS), default="dream_rate", field="排序")
        default_dir = "desc" if key == "town" or COLUMNS.get(key, ("", True))[1] else "asc"
        direction = parse_choice(request.query.get("dir"), ("asc", "desc"), default=default_dir, field="顺序")
        out = parse_choice(request.query.get("format"), ("html", "csv"), default="html", field="格式")
    except ParamError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if key == "town" and request.query.get("dir") is None:
        direction = "asc"
    async with request.app[keys.SESSIONS]() as db:
        rows, city = await league(db, start=start, end=end, now=now)
    rows = sort_rows(rows, key, direction == "desc")
    if out == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        for line in csv_rows(rows, city):
            writer.writerow([safe_cell(cell) for cell in line])
        name = quote(f"镇街排名_{first:%Y%m%d}-{last:%Y%m%d}.csv")
        async with transaction(request.app[keys.SESSIONS]) as db:  # every export is audited, figures or not
            await audit(
                db,
                staff=staff,
                action="league_export",
                now=now,
                detail=f"导出镇街排名 {first}~{last}",
                ip=client_ip(request),
            )
        return web.Response(
            body=("\ufeff" + buf.getvalue()).encode("utf-8"),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )
    return await render(
        request,
        "gov/league.html",
        {
            "rows": rows,
            "city": city,
            "columns": COLUMNS,
            "stages": STAGES,
            "fmt": fmt,
            "sort": key,
            "dir": direction,
            "first": first,
            "last": last,
        },
    )
