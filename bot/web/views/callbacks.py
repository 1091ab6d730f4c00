"""Call-back requests in the staff view: residents who asked for a person ("人工", "打电话给我"), earliest
deadline first; the full number on an audited click; "已回电" closes the request. Staff see their own town's
requests (city roles: every town's, and those whose town is not known yet)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.cases.lifecycle import CITY_ROLES
from bot.conversation.callbacks import mark_called, open_callbacks
from bot.db import transaction
from bot.models import CallBack, Staff
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_int_id
from bot.web.views.common import client_ip, csrf_form, flash_redirect, now_of
from bot.web.views.common import fmt_time as _fmt
from bot.web.views.staff import render
from reference.privacy import mask_phone

routes = web.RouteTableDef()


def _town_of(staff: Staff) -> str | None:
    return None if staff.role in CITY_ROLES else staff.town


async def _page(request: web.Request, staff: Staff, *, revealed: CallBack | None = None) -> web.Response:
    now = now_of(request)
    async with request.app[keys.SESSIONS]() as db:
        rows = await open_callbacks(db, town=_town_of(staff))
    items: list[dict[str, Any]] = [
        {
            "row": r,
            "phone": r.phone if revealed is not None and r.id == revealed.id else mask_phone(r.phone),
            "late": r.due_at < now,
        }
        for r in rows
    ]
    return await render(request, "staff/callbacks.html", {"items": items, "fmt": _fmt})


@routes.get("/staff/callbacks", name="staff_callbacks")
@require_staff()
async def callbacks_page(request: web.Request, staff: Staff) -> web.Response:
    return await _page(request, staff)


async def _own(db: Any, staff: Staff, callback_id: int) -> CallBack:
    row = await db.get(CallBack, callback_id)
    town = _town_of(staff)
    if row is None or row.done_at is not None or (town is not None and row.town != town):
        raise web.HTTPNotFound(text="没有这条回电请求")
    return row


@routes.post("/staff/callbacks/{callback_id}/phone", name="staff_callback_phone")
@require_staff()
async def reveal(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    try:
        callback_id = parse_int_id(request.match_info["callback_id"])
    except ParamError as exc:
        raise web.HTTPNotFound(text="没有这条回电请求") from exc
    async with transaction(request.app[keys.SESSIONS]) as db:
        row = await _own(db, staff, callback_id)
        await audit(
            db,
            staff=staff,
            action="reveal_phone",
            now=now_of(request),
            detail=f"回电请求{row.id}",
            ip=client_ip(request),
        )
    return await _page(request, staff, revealed=row)


@routes.post("/staff/callbacks/{callback_id}/done", name="staff_callback_done")
@require_staff()
async def done(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    target = request.app.router["staff_callbacks"].url_for()
    try:
        callback_id = parse_int_id(request.match_info["callback_id"])
    except ParamError as exc:
        raise web.HTTPNotFound(text="没有这条回电请求") from exc
    async with transaction(request.app[keys.SESSIONS]) as db:
        await _own(db, staff, callback_id)
        ok = await mark_called(
            db, callback_id=callback_id, staff_id=staff.id, town=_town_of(staff), now=now_of(request)
        )
    await flash_redirect(request, target, "已记下：回过电话了" if ok else "这条请求已经处理过了")
