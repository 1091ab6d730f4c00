"""Stored media in the staff view: ``/staff/media/<id>`` serves an image or voice message kept in the project's
storage, to staff whose jurisdiction holds the case it belongs to (another town's file is "not found", as its case
is). The bytes come from our own store, so a file stays visible after WeChat deleted its copy.

``POST /staff/cases/<no>/file.xlsx``: the case's file (档案) with its timeline, photos and the head of its hash
chain; a form with CSRF because it writes an audit row; phones masked unless admin."""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.db import transaction
from bot.media import media_case, open_media
from bot.models import Staff
from bot.reporting.casefile import case_file
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_case_no, parse_int_id
from bot.web.views.common import case_or_404, client_ip, csrf_form, now_of

log = logging.getLogger(__name__)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

routes = web.RouteTableDef()
GONE = "这个文件不存在，或还没有保存好。"


@routes.get(r"/staff/media/{media_id}", name="staff_media")
@require_staff()
async def media_file(request: web.Request, staff: Staff) -> web.Response:
    try:
        media_id = parse_int_id(request.match_info["media_id"], field="文件编号")
    except ParamError:
        raise web.HTTPNotFound(text=GONE) from None
    async with request.app[keys.SESSIONS]() as db:
        found = await media_case(db, media_id)
        if found is None:
            raise web.HTTPNotFound(text=GONE)
        row, case = found
        await case_or_404(db, staff=staff, case_no=case.case_no)  # jurisdiction: another town's is not found
    data = await open_media(request.app[keys.MEDIA].storage, row)
    if data is None or not row.content_type:
        raise web.HTTPNotFound(text=GONE)
    ext = (row.storage_key or "").rsplit(".", 1)[-1]
    return web.Response(
        body=data,
        content_type=row.content_type,
        headers={
            "Content-Disposition": f'inline; filename="{case.case_no}-{row.id}.{ext}"',
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


@routes.post("/staff/cases/{case_no}/file.xlsx", name="staff_case_file")
@require_staff()
async def case_file_export(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    case_no = parse_case_no(request.match_info["case_no"])
    now = now_of(request)
    full_phone = staff.role == "admin"
    async with request.app[keys.SESSIONS]() as db:
        case = await case_or_404(db, staff=staff, case_no=case_no)
        body, head = await case_file(
            db, case=case, storage=request.app[keys.MEDIA].storage, full_phone=full_phone, now=now
        )
    async with transaction(request.app[keys.SESSIONS]) as db:
        await audit(
            db,
            staff=staff,
            action="archive_export",
            case=case,
            now=now,
            detail=f"导出单件档案 {case.case_no}（链头 {head[:12]}）{'（含完整电话）' if full_phone else '（电话已脱敏）'}",
            ip=client_ip(request),
        )
    log.info("case file export by staff %s: case %s", staff.id, case.id)
    filename = f"档案-{case.case_no}.xlsx"
    return web.Response(
        body=body,
        content_type=XLSX,
        headers={
            "Content-Disposition": f"attachment; filename=\"{case.case_no}.xlsx\"; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )
