"""Call tasks (电话回访) in the staff view: residents neither WeChat nor SMS reached, earliest deadline first; the
full number on an audited click; the answer (a score 1–5, or 联系不上) closes the task, and the survey and case as
a chat answer would. Staff see their own town's tasks (city roles: every town's)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.cases.calltasks import CallTaskError, open_call_tasks, open_task, record_call
from bot.cases.lifecycle import CITY_ROLES
from bot.cases.table import STATE_LABEL
from bot.db import transaction
from bot.models import CallTask, Case, Staff
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_int_id
from bot.web.views.common import client_ip, csrf_form, flash_redirect, now_of
from bot.web.views.common import fmt_time as _fmt
from bot.web.views.staff import render
from reference.privacy import mask_phone

routes = web.RouteTableDef()
NOT_FOUND = "没有这条回访任务，或已经处理过了"


def _town_of(staff: Staff) -> str | None:
    return None if staff.role in CITY_ROLES else staff.town


async def _page(request: web.Request, staff: Staff, *, revealed: CallTask | None = None) -> web.Response:
    now = now_of(request)
    async with request.app[keys.SESSIONS]() as db:
        rows = await open_call_tasks(db, town=_town_of(staff))
        cases = {r.case_id: await db.get(Case, r.case_id) for r in rows}
    items: list[dict[str, Any]] = []
    for r in rows:
        case = cases.get(r.case_id)
        shown = revealed is not None and r.id == revealed.id
        items.append(
            {
                "row": r,
                "phone": (r.phone if shown else mask_phone(r.phone)) if r.phone else "（没有电话号码）",
                "late": r.due_at < now,
                "case_no": case.case_no if case else "",
                "status": STATE_LABEL.get(case.status, case.status) if case else "",
            }
        )
    return await render(request, "staff/calltasks.html", {"items": items, "fmt": _fmt})


def _task_id(request: web.Request) -> int:
    try:
        return parse_int_id(request.match_info["task_id"])
    except ParamError as exc:
        raise web.HTTPNotFound(text=NOT_FOUND) from exc


@routes.get("/staff/calltasks", name="staff_calltasks")
@require_staff()
async def calltasks_page(request: web.Request, staff: Staff) -> web.Response:
    return await _page(request, staff)


@routes.post("/staff/calltasks/{task_id}/phone", name="staff_calltask_phone")
@require_staff()
async def reveal(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    task_id = _task_id(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        try:
            row = await open_task(db, task_id=task_id, town=_town_of(staff))
        except CallTaskError as exc:
            raise web.HTTPNotFound(text=NOT_FOUND) from exc
        await audit(
            db,
            staff=staff,
            action="reveal_phone",
            now=now_of(request),
            detail=f"电话回访{row.id}",
            ip=client_ip(request),
        )
    return await _page(request, staff, revealed=row)


@routes.post("/staff/calltasks/{task_id}/answer", name="staff_calltask_answer")
@require_staff()
async def answer(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    target = request.app.router["staff_calltasks"].url_for()
    task_id = _task_id(request)
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
