"""The government's side at the HTTP edge: the policy catalogue (read by staff, edited by admins), routing a case
to a policy and recording the department's answer, help given directly by the town or the 慈善会 fund, the town's
fund ledger, and 督办 on a case (pressed by the city, answered by the town).

Views parse, authorise, call one domain function (bot.cases.policies, funds, supervision) and redirect with a
flash message; domain errors come back as the message."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import keys
from bot.cases.access import audit
from bot.cases.actors import CITY_ROLES, SUPERVISORS, Actor
from bot.cases.funds import SOURCES, allocate, fulfil_directly, ledger, parse_yuan, yuan
from bot.cases.numbering import KIND_LABEL
from bot.cases.policies import POLICY_FIELDS, list_policies, record_outcome, route_to_policy, save_policy
from bot.cases.supervision import DEFAULT_DAYS, MAX_DAYS, answer, press
from bot.cases.table import LifecycleError
from bot.conversation.nlu.normalize import WISH_CATEGORIES
from bot.db import transaction
from bot.models import Staff
from bot.reporting.scope import TOWN_NAMES
from bot.web.auth import require_staff
from bot.web.params import ParamError, form_text, optional_int, parse_case_no, parse_choice, parse_int
from bot.web.views.common import case_or_404, client_ip, csrf_form, flash_redirect, fmt_time, now_of
from bot.web.views.staff import render
from reference.privacy import mask_text

routes = web.RouteTableDef()
ADMIN = ("admin",)


def _case_url(request: web.Request, case_no: str) -> Any:
    return request.app.router["staff_case"].url_for(case_no=case_no)


def _rk(form: Any) -> str | None:
    return form_text(form, "rk", max_len=64) or None


# ------------------------------------------------------------------ the policy catalogue
@routes.get("/staff/policies", name="staff_policies")
@require_staff()
async def policies_page(request: web.Request, staff: Staff) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        rows = await list_policies(db)
    return await render(
        request,
        "gov/policies.html",
        {"rows": rows, "fields": POLICY_FIELDS, "wish_categories": WISH_CATEGORIES, "fmt": fmt_time},
    )


@routes.post("/staff/policies", name="staff_policies_save")
@require_staff(ADMIN)
async def policies_save(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    url = request.app.router["staff_policies"].url_for()
    try:
        policy_id = optional_int(form.get("id"), field="政策编号")
        values = {
            name: form_text(form, name, max_len=limit, field=label, multiline=limit > 100)
            for name, (label, limit) in POLICY_FIELDS.items()
        }
        cats = [c for c in form.getall("categories", []) if isinstance(c, str) and c in WISH_CATEGORIES]
        async with transaction(request.app[keys.SESSIONS]) as db:
            row = await save_policy(
                db,
                policy_id=policy_id,
                values=values,
                categories=cats,
                keywords=form_text(form, "keywords", max_len=300, field="关键词"),
                active=form.get("active") == "1",
                now=now_of(request),
            )
            await audit(
                db,
                staff=staff,
                action="policy_edit",
                now=now_of(request),
                detail=row.name,
                ip=client_ip(request),
            )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, url, str(exc), "error")
    await flash_redirect(request, url.with_fragment(f"p{row.id}"), f"已保存「{row.name}」")


# ------------------------------------------------------------------ a case: policy, direct help, 督办
@routes.post("/staff/cases/{case_no}/policy", name="staff_case_policy")
@require_staff()
async def case_policy(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    case_no = parse_case_no(request.match_info["case_no"])
    now = now_of(request)
    try:
        op = parse_choice(form.get("op"), ("route", "grant", "refuse"), field="操作")
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            actor = Actor.of_staff(staff)
            if op == "route":
                referral = await route_to_policy(
                    db,
                    case=case,
                    policy_id=parse_int(form.get("policy_id"), field="政策", lo=1),
                    applied_for=form_text(form, "applied_for", max_len=200, field="申请内容", required=True),
                    actor=actor,
                    now=now,
                    request_key=_rk(form),
                )
                message = f"已转{referral.department}办理「{referral.policy_name}」"
                await audit(
                    db,
                    staff=staff,
                    action="case_route_policy",
                    case=case,
                    now=now,
                    detail=mask_text(referral.applied_for),
                    ip=client_ip(request),
                )
            else:
                note = form_text(form, "note", max_len=200, field="办理结果", required=True)
                await record_outcome(
                    db,
                    case=case,
                    granted=op == "grant",
                    note=note,
                    actor=actor,
                    now=now,
                    request_key=_rk(form),
                )
                if op == "grant":
                    message = "已记录：政策已落实，诉求办结"
                    await audit(
                        db,
                        staff=staff,
                        action="case_policy_grant",
                        case=case,
                        now=now,
                        detail=mask_text(note),
                        ip=client_ip(request),
                    )
                else:
                    message = "已记录：政策未获批，诉求回到对接中"
                    await audit(
                        db,
                        staff=staff,
                        action="case_policy_refuse",
                        case=case,
                        now=now,
                        detail=mask_text(note),
                        ip=client_ip(request),
                    )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, _case_url(request, case_no), str(exc), "error")
    await flash_redirect(request, _case_url(request, case_no), message)


@routes.post("/staff/cases/{case_no}/fund", name="staff_case_fund")
@require_staff()
async def case_fund(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    case_no = parse_case_no(request.match_info["case_no"])
    now = now_of(request)
    try:
        source = parse_choice(form.get("source"), tuple(SOURCES), field="资金来源")
        amount = parse_yuan(form_text(form, "amount", max_len=20, field="金额"))
        what = form_text(form, "what", max_len=100, field="帮扶内容", required=True)
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            entry = await fulfil_directly(
                db,
                case=case,
                source=source,
                amount_fen=amount,
                what=what,
                actor=Actor.of_staff(staff),
                now=now,
                overdraft_approved=form.get("overdraft") == "1",
                request_key=_rk(form),
            )
            await audit(
                db,
                staff=staff,
                action="case_fund",
                case=case,
                now=now,
                detail=f"{SOURCES[source]} {yuan(amount)}元 {mask_text(what)}",
                ip=client_ip(request),
            )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, _case_url(request, case_no), str(exc), "error")
    await flash_redirect(
        request,
        _case_url(request, case_no),
        f"已由{SOURCES[source]}出资 {yuan(amount)} 元，余额 {yuan(entry.balance_after_fen)} 元",
    )


@routes.post("/staff/cases/{case_no}/supervise", name="staff_case_supervise")
@require_staff()
async def case_supervise(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    case_no = parse_case_no(request.match_info["case_no"])
    now = now_of(request)
    try:
        op = parse_choice(form.get("op"), ("press", "answer"), field="操作")
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            actor = Actor.of_staff(staff)
            if op == "press":
                row = await press(
                    db,
                    case=case,
                    actor=actor,
                    request=form_text(form, "request", max_len=500, field="督办要求", required=True),
                    days=parse_int(
                        form.get("days") or str(DEFAULT_DAYS), field="答复时限", lo=1, hi=MAX_DAYS
                    ),
                    now=now,
                )
                message = f"已督办，镇街须在 {fmt_time(row.due_at)} 前答复"
                await audit(
                    db,
                    staff=staff,
                    action="case_supervise",
                    case=case,
                    now=now,
                    detail=mask_text(row.request)[:200],
                    ip=client_ip(request),
                )
            else:
                row = await answer(
                    db,
                    case=case,
                    supervision_id=parse_int(form.get("supervision_id"), field="督办", lo=1),
                    actor=actor,
                    text=form_text(form, "answer", max_len=1000, field="答复", required=True, multiline=True),
                    now=now,
                )
                message = "督办答复已记录"
                await audit(
                    db,
                    staff=staff,
                    action="case_supervision_answer",
                    case=case,
                    now=now,
                    detail=mask_text(row.answer or "")[:200],
                    ip=client_ip(request),
                )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, _case_url(request, case_no), str(exc), "error")
    await flash_redirect(request, _case_url(request, case_no), message)


# ------------------------------------------------------------------ the fund ledger of a town
def _ledger_town(request: web.Request, staff: Staff) -> str:
    if staff.role in CITY_ROLES:
        return parse_choice(request.query.get("town"), TOWN_NAMES, default=TOWN_NAMES[0], field="镇街")
    if not staff.town:
        raise web.HTTPForbidden()
    return staff.town


@routes.get("/staff/funds", name="staff_funds")
@require_staff()
async def funds_page(request: web.Request, staff: Staff) -> web.Response:
    try:
        town = _ledger_town(request, staff)
    except ParamError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    async with request.app[keys.SESSIONS]() as db:
        book = await ledger(db, town=town)
    return await render(
        request,
        "gov/funds.html",
        {
            "book": book,
            "sources": SOURCES,
            "yuan": yuan,
            "fmt": fmt_time,
            "towns": TOWN_NAMES if staff.role in CITY_ROLES else (town,),
            "may_allocate": staff.role in SUPERVISORS,
            "kind_label": KIND_LABEL,
        },
    )


@routes.post("/staff/funds", name="staff_funds_allocate")
@require_staff(tuple(SUPERVISORS))
async def funds_allocate(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    now = now_of(request)
    url = request.app.router["staff_funds"].url_for()
    try:
        town = (
            parse_choice(form.get("town"), TOWN_NAMES, field="镇街")
            if staff.role in CITY_ROLES
            else staff.town
        )
        if not town:
            raise web.HTTPForbidden()
        url = url.with_query(town=town)
        source = parse_choice(form.get("source"), tuple(SOURCES), field="资金来源")
        amount = parse_yuan(form_text(form, "amount", max_len=20, field="金额"))
        note = form_text(form, "note", max_len=200, field="说明", required=True)
        async with transaction(request.app[keys.SESSIONS]) as db:
            entry = await allocate(
                db,
                town=town,
                source=source,
                amount_fen=amount,
                note=note,
                actor=Actor.of_staff(staff),
                now=now,
            )
            await audit(
                db,
                staff=staff,
                action="fund_allocate",
                now=now,
                detail=f"{town} {SOURCES[source]} {yuan(amount)}元",
                ip=client_ip(request),
            )
    except (LifecycleError, ParamError) as exc:
        await flash_redirect(request, url, str(exc), "error")
    await flash_redirect(
        request, url, f"已登记拨款，{SOURCES[source]}余额 {yuan(entry.balance_after_fen)} 元"
    )
