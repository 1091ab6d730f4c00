"""The staff call queue (电话待办) in the staff view: one page for every call staff owe a resident — a call-back the
resident asked for ("人工", ``CallBack``) and a call task when neither WeChat nor SMS reached them (回访,
``CallTask``) — earliest deadline first, with the reason, the deadline and whether it was escalated. The full
number on an audited click (POST, then back to the page, shown once); a call-back is closed with "已回电", a call
task with its answer (a score 1–5, or 联系不上), which closes the survey and the case as a chat answer would.
Staff see their own town's calls (city roles: every town's, and call-backs whose town is not known yet).
``/staff/callbacks`` and ``/staff/calltasks``, the two former queues, show the same page."""

from __future__ import annotations

from typing import Any, NoReturn

from aiohttp import web
from aiohttp_session import get_session

from bot import keys
from bot.cases.access import audit
from bot.cases.callqueue import CALLBACK, CALLTASK, open_calls
from bot.cases.calltasks import CallTaskError, open_task, record_call
from bot.cases.lifecycle import CITY_ROLES
from bot.cases.table import STATE_LABEL
from bot.conversation.callbacks import mark_called
from bot.db import transaction
from bot.models import CallBack, Staff
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_int_id
from bot.web.views.common import client_ip, csrf_form, flash_redirect, now_of
from bot.web.views.common import fmt_time as _fmt
from bot.web.views.staff import render
from reference.privacy import mask_phone

routes = web.RouteTableDef()
NOT_FOUND = "没有这条电话待办，或已经处理过了"
REVEAL_KEY = "reveal_call"  # session: the call whose full number the next page view shows (once)


def _town_of(staff: Staff) -> str | None:
    return None if staff.role in CITY_ROLES else staff.town


def _id(request: web.Request, name: str) -> int:
    try:
        return parse_int_id(request.match_info[name])
    except ParamError as exc:
        raise web.HTTPNotFound(text=NOT_FOUND) from exc


def _queue_url(request: web.Request) -> Any:
    return request.app.router["staff_calls"].url_for()


@routes.get("/staff/calls", name="staff_calls")
@require_staff()
async def calls_page(request: web.Request, staff: Staff) -> web.Response:
    return await _calls(request, staff)


@routes.get("/staff/callbacks", name="staff_callbacks")
@require_staff()
async def callbacks_page(request: web.Request, staff: Staff) -> web.Response:
    return await _calls(request, staff)


@routes.get("/staff/calltasks", name="staff_calltasks")
@require_staff()
async def calltasks_page(request: web.Request, staff: Staff) -> web.Response:
    return await _calls(request, staff)


async def _calls(request: web.Request, staff: Staff) -> web.Response:
    now = now_of(request)
    session = await get_session(request)
    revealed = session.pop(REVEAL_KEY, None)
    async with request.app[keys.SESSIONS]() as db:
        calls = await open_calls(db, town=_town_of(staff))
    items: list[dict[str, Any]] = []
    for c in calls:
        shown = revealed == c.key
        items.append(
            {
                "call": c,
                "phone": (c.phone if shown else mask_phone(c.phone)) if c.phone else "（没有电话号码）",
                "late": c.late(now),
                "status": STATE_LABEL.get(c.case_status, c.case_status) if c.case_status else "",
            }
        )
    return await render(
        request,
        "staff/calls.html",
        {"items": items, "fmt": _fmt, "late": sum(1 for it in items if it["late"])},
    )


async def _reveal(request: web.Request, staff: Staff, *, source: str, row_id: int) -> NoReturn:
    """Audit the reveal, then back to the queue (POST → redirect → GET), which shows that number once."""
    async with transaction(request.app[keys.SESSIONS]) as db:
        await audit(
            db,
            staff=staff,
            action="reveal_phone",
            now=now_of(request),
            detail=f"{'回电请求' if source == CALLBACK else '电话回访'}{row_id}",
            ip=client_ip(request),
        )
    session = await get_session(request)
    session[REVEAL_KEY] = f"{source}-{row_id}"
    raise web.HTTPFound(_queue_url(request))


async def _own_callback(db: Any, staff: Staff, callback_id: int) -> CallBack:
    row = await db.get(CallBack, callback_id)
    town = _town_of(staff)
    if row is None or row.done_at is not None or (town is not None and row.town != town):
        raise web.HTTPNotFound(text=NOT_FOUND)
    return row


@routes.post("/staff/callbacks/{callback_id}/phone", name="staff_callback_phone")
@require_staff()
async def reveal_callback(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    callback_id = _id(request, "callback_id")
    async with request.app[keys.SESSIONS]() as db:
        await _own_callback(db, staff, callback_id)
    await _reveal(request, staff, source=CALLBACK, row_id=callback_id)


@routes.post("/staff/callbacks/{callback_id}/done", name="staff_callback_done")
@require_staff()
async def callback_done(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    callback_id = _id(request, "callback_id")
    async with transaction(request.app[keys.SESSIONS]) as db:
        await _own_callback(db, staff, callback_id)
        ok = await mark_called(
            db, callback_id=callback_id, staff_id=staff.id, town=_town_of(staff), now=now_of(request)
        )
    await flash_redirect(request, _queue_url(request), "已记下：回过电话了" if ok else "这条请求已经处理过了")


@routes.post("/staff/calltasks/{task_id}/phone", name="staff_calltask_phone")
@require_staff()
async def reveal_calltask(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    task_id = _id(request, "task_id")
    async with request.app[keys.SESSIONS]() as db:
        try:
            await open_task(db, task_id=task_id, town=_town_of(staff))
        except CallTaskError as exc:
            raise web.HTTPNotFound(text=NOT_FOUND) from exc
    await _reveal(request, staff, source=CALLTASK, row_id=task_id)


@routes.post("/staff/calltasks/{task_id}/answer", name="staff_calltask_answer")
@require_staff()
async def answer(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    target = _queue_url(request)
    task_id = _id(request, "task_id")
    choice = str(form.get("score", "")).strip()
    note = str(form.get("note", ""))[:500]
    if choice == "unreachable":
        score = None
    elif choice in ("1", "2", "3", "4", "5"):
        score = int(choice)
    else:
        await flash_redirect(request, target, "请选择居民的评价（1到5分），或选择“联系不上”", "error")
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            await record_call(
                db,
                task_id=task_id,
                staff=staff,
                town=_town_of(staff),
                score=score,
                note=note,
                now=now_of(request),
            )
    except CallTaskError as exc:
        await flash_redirect(request, target, str(exc), "error")
    await flash_redirect(request, target, "已记下回访结果" if score is not None else "已记下：联系不上居民")
