"""Staff's side of 圆梦墙: publish a case's wish with the public wording (previewed exactly as the public will see
it), take it off the wall, and the list of donors' claims to confirm, decline or mark fulfilled; the figures of
wall claims against pushed offers."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel import select

from bot import keys
from bot.cases.lifecycle import CITY_ROLES, LifecycleError
from bot.db import transaction
from bot.models import Resource, Staff
from bot.pool.wall import (
    DONOR_TYPES,
    HANDOVER,
    PUBLIC_TEXT_MAX,
    WISH_STATUS_LABEL,
    PublicWish,
    confirm_claim,
    decline_claim,
    fulfil_claim,
    publish,
    suggest_wording,
    wall_entry,
    withdraw,
    wording_refusal,
)
from bot.pool.walldonor import claims_for_staff, wall_by_town, wall_figures
from bot.pool.wallgroup import set_town_auto_confirm, set_trusted, town_setting
from bot.web.auth import require_staff
from bot.web.params import ParamError, form_text, parse_choice, parse_int_id
from bot.web.views.common import case_or_404, client_ip, csrf_form, flash_redirect, fmt_time, now_of
from bot.web.views.staff import render
from reference.privacy import mask_phone
from reference.towns import TOWN_NAMES

routes = web.RouteTableDef()


def _preview(case: Any, text: str, handover: str) -> PublicWish:
    return PublicWish(
        public_id="preview0",
        text=text,
        town=case.town,
        community=case.community,
        category=case.category or case.suggested_category or "其他",
        status="open",
        status_label=WISH_STATUS_LABEL["open"],
        waited_days=0,
        handover=HANDOVER.get(handover, ""),
    )


async def _publish_page(
    request: web.Request,
    staff: Staff,
    *,
    text: str | None = None,
    handover: str = "community_centre",
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        case = await case_or_404(db, staff=staff, case_no=request.match_info["case_no"])
        entry = await wall_entry(db, case_id=case.id or 0)
    text = suggest_wording(case) if text is None else text
    ctx = {
        "case": case,
        "entry": entry,
        "text": text,
        "handover": handover,
        "handovers": HANDOVER,
        "preview": _preview(case, text, handover),
        "refusal": error or wording_refusal(text, case=case),
        "max_len": PUBLIC_TEXT_MAX,
        "WISH_STATUS_LABEL": WISH_STATUS_LABEL,
    }
    return await render(request, "wall/publish.html", ctx, status=status)


@routes.get("/staff/cases/{case_no}/wall", name="staff_wall_publish")
@require_staff()
async def publish_page(request: web.Request, staff: Staff) -> web.Response:
    return await _publish_page(request, staff)


@routes.post("/staff/cases/{case_no}/wall", name="staff_wall_publish_post")
@require_staff()
async def publish_post(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    try:
        text = form_text(form, "text", max_len=PUBLIC_TEXT_MAX, field="公开内容")
        handover = parse_choice(form.get("handover"), tuple(HANDOVER), field="交付方式")
        step = parse_choice(form.get("step"), ("preview", "publish", "withdraw"), field="操作")
    except ParamError as exc:
        return await _publish_page(
            request, staff, text=str(form.get("text", ""))[:200], error=str(exc), status=400
        )
    if step == "preview":
        return await _publish_page(request, staff, text=text, handover=handover)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=request.match_info["case_no"])
            if step == "withdraw":
                await withdraw(db, case=case, staff=staff, now=now_of(request))
            else:
                entry = await publish(
                    db, case=case, staff=staff, text=text, handover=handover, now=now_of(request)
                )
    except LifecycleError as exc:
        return await _publish_page(request, staff, text=text, handover=handover, error=str(exc), status=400)
    target = request.app.router["staff_wall_publish"].url_for(case_no=request.match_info["case_no"])
    if step == "withdraw":
        await flash_redirect(request, target, "已从圆梦墙撤下")
    await flash_redirect(request, target, f"已发布到圆梦墙（公开编号 {entry.public_id}）")


@routes.get("/staff/wall", name="staff_wall")
@require_staff()
async def claims_page(request: web.Request, staff: Staff) -> web.Response:
    town = None if staff.role in CITY_ROLES else staff.town
    async with request.app[keys.SESSIONS]() as db:
        rows = await claims_for_staff(db, staff=staff)
        figures = await wall_figures(db, town=town)
        by_town = [row for row in await wall_by_town(db) if town is None or row[0] == town]
        setting = await town_setting(db, town=town) if town else None
    ctx = {
        "rows": rows,
        "figures": figures,
        "by_town": by_town,
        "types": DONOR_TYPES,
        "fmt": fmt_time,
        "mask_phone": mask_phone,
        "auto_confirm": bool(setting and setting.auto_confirm_trusted),
        "can_set": staff.role in CITY_ROLES or staff.role == "town_supervisor",
        "towns": TOWN_NAMES,
    }
    return await render(request, "wall/staff_claims.html", ctx)


@routes.post("/staff/wall/claims/{claim_id}/{action:confirm|decline|fulfil}", name="staff_wall_claim")
@require_staff()
async def claim_action(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    target = request.app.router["staff_wall"].url_for()
    try:
        claim_id = parse_int_id(request.match_info["claim_id"])
        note = form_text(form, "note", max_len=200, field="说明")
    except ParamError as exc:
        await flash_redirect(request, target, str(exc), "error")
    action, now = request.match_info["action"], now_of(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            if action == "confirm":
                await confirm_claim(db, claim_id=claim_id, staff=staff, now=now)
            elif action == "decline":
                await decline_claim(db, claim_id=claim_id, staff=staff, reason=note, now=now)
            else:
                await fulfil_claim(db, claim_id=claim_id, staff=staff, note=note or "心愿已送达", now=now)
    except LifecycleError as exc:
        await flash_redirect(request, target, str(exc), "error")
    done = {
        "confirm": "已确认认领，爱心人士可以看到送达说明了",
        "decline": "已退回，心愿回到圆梦墙",
        "fulfil": "已圆梦",
    }
    await flash_redirect(request, target, done[action])


# ------------------------------------------------------------------ trusted donors, the town's auto-confirm
@routes.post("/staff/pool/{key}/trusted", name="staff_pool_trusted")
@require_staff()
async def resource_trusted(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    key = request.match_info["key"][:32]
    target = request.app.router["staff_pool_resource"].url_for(key=key)
    try:
        on = parse_choice(form.get("trusted"), ("0", "1"), field="可信") == "1"
        async with transaction(request.app[keys.SESSIONS]) as db:
            res = (await db.exec(select(Resource).where(Resource.key == key))).first()
            if res is None:
                raise web.HTTPNotFound()
            await set_trusted(
                db, resource=res, trusted=on, staff=staff, now=now_of(request), ip=client_ip(request)
            )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, target, str(exc), "error")
    await flash_redirect(request, target, "已设为可信爱心资源" if on else "已取消可信")


@routes.post("/staff/wall/settings", name="staff_wall_settings")
@require_staff()
async def wall_settings(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    target = request.app.router["staff_wall"].url_for()
    try:
        on = parse_choice(form.get("auto_confirm"), ("0", "1"), field="自动确认") == "1"
        town = (
            staff.town
            if staff.role not in CITY_ROLES
            else parse_choice(form.get("town"), TOWN_NAMES, field="镇街")
        )
        if not town:
            raise ParamError("请选择镇街")
        async with transaction(request.app[keys.SESSIONS]) as db:
            await set_town_auto_confirm(
                db, town=town, on=on, staff=staff, now=now_of(request), ip=client_ip(request)
            )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, target, str(exc), "error")
    await flash_redirect(
        request, target, "已开启：可信爱心资源的认领自动确认" if on else "已关闭：认领都由工作人员确认"
    )
