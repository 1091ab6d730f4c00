"""The city's standing tools at the HTTP edge: the 权责清单 (read by staff, edited by admins) and 督办 of a whole
town (pressed by the city, answered by the town; escalated by the sweep when late).

Views parse, authorise, call one domain function (bot.cases.duty, bot.projects.towns) and redirect with a flash
message; domain errors come back as the message."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.cases.actors import CITY_ROLES, Actor
from bot.cases.duty import KIND_NAMES, MAX_DAYS, list_duties, save_duty
from bot.cases.numbering import KIND_LABEL
from bot.cases.supervision_town import DEFAULT_DAYS, answer_town, press_town, town_presses
from bot.cases.supervision_town import MAX_DAYS as PRESS_MAX_DAYS
from bot.cases.table import LifecycleError
from bot.db import transaction
from bot.models import Staff
from bot.reporting.scope import TOWN_NAMES
from bot.web.auth import require_staff
from bot.web.params import ParamError, form_text, optional_int, parse_choice, parse_int
from bot.web.views.common import client_ip, csrf_form, flash_redirect, fmt_time, now_of
from bot.web.views.staff import render
from reference.privacy import mask_text

routes = web.RouteTableDef()


# ------------------------------------------------------------------ 权责清单
@routes.get("/staff/duties", name="staff_duties")
@require_staff()
async def duties_page(request: web.Request, staff: Staff) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        rows = await list_duties(db)
    return await render(
        request,
        "gov/duties.html",
        {"rows": rows, "kinds": {k: KIND_LABEL.get(k, k) for k in KIND_NAMES}, "max_days": MAX_DAYS},
    )


@routes.post("/staff/duties", name="staff_duties_save")
@require_staff(("admin",))
async def duties_save(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    now = now_of(request)
    url = request.app.router["staff_duties"].url_for()
    try:
        duty_id = optional_int(form.get("id"), field="编号", lo=1)
        kind = parse_choice(form.get("kind"), KIND_NAMES, default=KIND_NAMES[0], field="诉求类型")
        async with transaction(request.app[keys.SESSIONS]) as db:
            row = await save_duty(
                db,
                duty_id=duty_id,
                kind=kind,
                category=form_text(form, "category", max_len=32, field="类别"),
                unit=form_text(form, "unit", max_len=64, field="责任单位", required=True),
                days=parse_int(form.get("days"), field="办理时限", lo=1, hi=MAX_DAYS),
                now=now,
            )
            await audit(
                db,
                staff=staff,
                action="duty_edit",
                now=now,
                detail=f"{row.category} {row.unit} {row.days}",
                ip=client_ip(request),
            )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, url, str(exc), "error")
    await flash_redirect(
        request, url.with_fragment(f"d{row.id}"), f"已保存「{row.category}」：{row.unit}，{row.days}个工作日"
    )


# ------------------------------------------------------------------ 督办 of a town
def _press_town(request: web.Request, staff: Staff) -> str:
    if staff.role in CITY_ROLES:
        return parse_choice(request.query.get("town"), ("", *TOWN_NAMES), default="", field="镇街")
    if not staff.town:
        raise web.HTTPForbidden(text="您的账号没有所属镇街")
    return staff.town


@routes.get("/staff/town-supervision", name="staff_town_supervision")
@require_staff()
async def town_supervision_page(request: web.Request, staff: Staff) -> web.Response:
    try:
        town = _press_town(request, staff)
    except ParamError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    async with request.app[keys.SESSIONS]() as db:
        rows = await town_presses(db, town=town or None)
    return await render(
        request,
        "gov/town_supervision.html",
        {
            "rows": rows,
            "town": town,
            "towns": TOWN_NAMES,
            "city": staff.role in CITY_ROLES,
            "fmt": fmt_time,
            "default_days": DEFAULT_DAYS,
            "max_days": PRESS_MAX_DAYS,
            "now": now_of(request),
        },
    )


@routes.post("/staff/town-supervision", name="staff_town_supervision_post")
@require_staff()
async def town_supervision_post(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    now = now_of(request)
    url = request.app.router["staff_town_supervision"].url_for()
    try:
        op = parse_choice(form.get("op"), ("press", "answer"), field="操作")
        actor = Actor.of_staff(staff)
        async with transaction(request.app[keys.SESSIONS]) as db:
            if op == "press":
                row = await press_town(
                    db,
                    town=parse_choice(form.get("town"), TOWN_NAMES, field="镇街"),
                    actor=actor,
                    request=form_text(
                        form, "request", max_len=500, field="督办要求", required=True, multiline=True
                    ),
                    days=parse_int(
                        form.get("days") or str(DEFAULT_DAYS), field="答复时限", lo=1, hi=PRESS_MAX_DAYS
                    ),
                    now=now,
                )
                url = url.with_query(town=row.town)
                message = f"已督办{row.town}，须在 {fmt_time(row.due_at)} 前答复"
            else:
                row = await answer_town(
                    db,
                    supervision_id=parse_int(form.get("supervision_id"), field="督办", lo=1),
                    actor=actor,
                    text=form_text(form, "answer", max_len=1000, field="答复", required=True, multiline=True),
                    now=now,
                )
                message = "督办答复已记录"
            await audit(
                db,
                staff=staff,
                action=f"town_supervision_{op}",
                now=now,
                detail=f"{row.town} {mask_text(row.answer if op == 'answer' else row.request)[:150]}",
                ip=client_ip(request),
            )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, url, str(exc), "error")
    await flash_redirect(request, url, message)
