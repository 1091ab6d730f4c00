"""The leads inbox for staff (chat offers of help and self sign-ups: state, assignee, deadline, review) and the
public sign-up page for new donors, which creates a pending resource staff review."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.cases.lifecycle import LifecycleError
from bot.conversation.ratelimit import RateLimiter
from bot.db import transaction
from bot.models import Staff
from bot.pool.bindqr import bind_qr_image
from bot.pool.leads import (
    LEAD_STATES,
    SIGNUP_KINDS,
    WISH_CATEGORIES,
    check_signup,
    inbox,
    review_signup,
    sign_up,
    update_lead,
)
from bot.pool.volunteers import BIND_PREFIX
from bot.web.auth import require_staff
from bot.web.params import ParamError, form_text, parse_choice, parse_int_id
from bot.web.views.common import client_ip, csrf_form, flash_redirect, fmt_time, now_of
from bot.web.views.staff import render
from reference.privacy import mask_phone
from reference.towns import TOWN_NAMES

routes = web.RouteTableDef()


@routes.get("/staff/leads", name="staff_leads")
@require_staff()
async def leads_page(request: web.Request, staff: Staff) -> web.Response:
    state = parse_choice(request.query.get("state"), ("", *LEAD_STATES), default="", field="状态")
    async with request.app[keys.SESSIONS]() as db:
        rows = await inbox(db, staff=staff, now=now_of(request), state=state or None)
    ctx = {"rows": rows, "state": state, "states": LEAD_STATES, "fmt": fmt_time, "mask_phone": mask_phone}
    return await render(request, "leads/inbox.html", ctx)


@routes.post("/staff/leads/{lead_id}/{action:update|activate|decline}", name="staff_lead")
@require_staff()
async def lead_action(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    target = request.app.router["staff_leads"].url_for()
    now = now_of(request)
    action = request.match_info["action"]
    try:
        lead_id = parse_int_id(request.match_info["lead_id"])
        note = form_text(form, "note", max_len=200, field="备注")
        async with transaction(request.app[keys.SESSIONS]) as db:
            if action == "update":
                state = parse_choice(form.get("state"), tuple(LEAD_STATES), field="状态")
                await update_lead(
                    db,
                    lead_id=lead_id,
                    staff=staff,
                    state=state,
                    note=note,
                    take=form.get("take") == "1",
                    now=now,
                )
            else:
                await review_signup(
                    db, lead_id=lead_id, staff=staff, activate=action == "activate", reason=note, now=now
                )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, target, str(exc), "error")
    done = {
        "update": "已更新线索",
        "activate": "已审核通过，爱心资源已加入资源库",
        "decline": "已婉拒，原因已记录",
    }
    await flash_redirect(request, target, done[action])


def _signup_page(request: web.Request, *, error: str | None = None, form: object = None, status: int = 200):
    ctx = {
        "error": error,
        "form": form or {},
        "chosen": [str(c) for c in form.getall("categories", [])] if hasattr(form, "getall") else [],
        "kinds": SIGNUP_KINDS,
        "categories": WISH_CATEGORIES,
        "towns": TOWN_NAMES,
    }
    return aiohttp_jinja2.render_template("leads/signup.html", request, ctx, status=status)


@routes.get("/donate", name="donor_signup")
async def signup_page(request: web.Request) -> web.Response:
    return _signup_page(request)


#: sign-ups per hour: per address (generous: carriers and event Wi-Fi share addresses), per phone
SIGNUP_LIMITS = {"ip": 20, "phone": 3}
LIMITED = "提交太频繁了，请一小时后再试。如需帮助，请拨打 12345 或联系镇街工作人员。"


async def _allowed(request: web.Request, *, key: str, value: str) -> bool:
    made = request.app[keys.LIMITERS]
    # Redis is connected after the app is built: the limiters are made on first use, shared when Redis is set
    if "donate:ip" not in made:
        for name, limit in SIGNUP_LIMITS.items():
            made[f"donate:{name}"] = RateLimiter(limit=limit, window=3600, redis=request.app[keys.REDIS])
    return await made[f"donate:{key}"].allow(f"donate:{key}:{value}", now=now_of(request).timestamp())


@routes.post("/donate", name="donor_signup_post")
async def signup_post(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    if not await _allowed(request, key="ip", value=str(client_ip(request))):
        return _signup_page(request, error=LIMITED, form=form, status=429)
    try:
        checked = check_signup(
            name=form_text(form, "name", max_len=64, field="名称"),
            kind=form_text(form, "kind", max_len=16, field="身份"),
            contact=form_text(form, "contact", max_len=32, field="联系人"),
            phone=form_text(form, "phone", max_len=32, field="电话"),
            town=form_text(form, "town", max_len=16, field="镇街"),
            categories=[str(c) for c in form.getall("categories", [])][:20],
            items=form_text(form, "items", max_len=400, field="能提供的"),
            capacity=form_text(form, "capacity", max_len=4, field="每月能帮助的心愿数"),
            max_fund=form_text(form, "max_fund", max_len=10, field="资助上限"),
            listed=form.get("listed") == "1",
        )
        if not await _allowed(request, key="phone", value=checked.phone):
            return _signup_page(request, error=LIMITED, form=form, status=429)
        async with transaction(request.app[keys.SESSIONS]) as db:
            _, code = await sign_up(db, form=checked, now=now_of(request))
    except (LifecycleError, ParamError) as exc:
        return _signup_page(request, error=str(exc), form=form, status=400)
    # the one-time QR code (WeChat's temporary code, drawn here): scanning it binds as sending the code does
    qr = await bind_qr_image(request.app.get(keys.WECHAT), code)
    ctx = {"name": checked.name, "code": code, "prefix": BIND_PREFIX, "qr": qr}
    resp = aiohttp_jinja2.render_template("leads/thanks.html", request, ctx)
    resp.headers["Cache-Control"] = "no-store"
    return resp
