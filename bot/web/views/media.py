"""Stored media in the staff view: ``/staff/media/<id>`` serves an image or voice message kept in the project's
storage, to staff whose jurisdiction holds the case it belongs to (another town's file is "not found", as its case
is). The bytes come from our own store, so a file stays visible after WeChat deleted its copy."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.media import media_case, open_media
from bot.models import Staff
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_int_id
from bot.web.views.common import case_or_404

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
