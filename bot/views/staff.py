"""The staff web view (mobile first, works without JavaScript): sign-in, the queue, the case page and its actions.

Every POST checks the CSRF token first and finds the case through the staff member's jurisdiction (another
town's case → 404, nothing changed). Domain errors become HTTP answers here and only here."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from multidict import MultiDictProxy

from bot import keys
from bot.auth import (
    OAuthError,
    current_staff,
    oauth_authorize_url,
    oauth_exchange,
    require_staff,
    safe_next,
    sign_in,
    sign_out,
)
from bot.cases import CHANNELS, KIND_LABEL
from bot.db import transaction
from bot.lifecycle import (
    ACTION_LABEL,
    CITY_ROLES,
    OPEN_STATES,
    ROLE_LABEL,
    STATE_LABEL,
    SUPERVISORS,
    TERMINAL,
    TRANSITIONS,
    ClaimConflict,
    LifecycleError,
    StaffCaseInput,
    add_note,
    allowed_actions,
    ask_resident,
    claim,
    complete,
    create_staff_case,
    edit_case,
    merge_case,
    reassign,
    release,
    transition,
)
from bot.models import Case, Staff
from bot.staff_service import (
    SORTS,
    LoginFailed,
    QueueFilter,
    StaffError,
    actor_for,
    audit,
    authenticate,
    bind_openid,
    case_view,
    categories,
    get_case_for,
    list_audit,
    list_queue,
    mask_phone,
    new_bind_code,
    set_password,
    staff_by_openid,
)
from bot.towns import TOWNS
from bot.websec import check_csrf

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: actions the case page offers as simple forms (with an optional or required note)
SIMPLE_ACTIONS = (
    "verify",
    "accept",
    "reject",
    "match",
    "dispatch",
    "start",
    "close",
    "cancel",
    "reopen",
    "resume",
)


# ------------------------------------------------------------------ helpers
def _now(request: web.Request) -> datetime:
    now: datetime = request.app[keys.CLOCK]()  # type: ignore[operator]
    return now


def _ip(request: web.Request) -> str | None:
    return request.remote


async def flash(request: web.Request, text: str, kind: str = "info") -> None:
    session = await get_session(request)
    session["flash"] = {"text": text, "kind": kind}


async def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    session = await get_session(request)
    ctx = {
        "flash": session.pop("flash", None),
        "me": await current_staff(request),
        "STATE_LABEL": STATE_LABEL,
        "KIND_LABEL": KIND_LABEL,
        "ROLE_LABEL": ROLE_LABEL,
        "ACTION_LABEL": ACTION_LABEL,
        "CHANNELS": CHANNELS,
        "SUPERVISORS": SUPERVISORS,
        "CITY_ROLES": CITY_ROLES,
        "TOWNS": TOWNS,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, ctx)
    response.set_status(status)
    return response


def _case_url(request: web.Request, case_no: str) -> str:
    return str(request.app.router["staff_case"].url_for(case_no=case_no))


def _fmt(dt: datetime | None) -> str:
    from bot.cases import CHINA

    return dt.astimezone(CHINA).strftime("%m-%d %H:%M") if dt else ""


# ------------------------------------------------------------------ sign-in
@routes.get("/staff/login", name="staff_login")
async def login_form(request: web.Request) -> web.Response:
    if await current_staff(request) is not None:
        raise web.HTTPFound(request.app.router["staff_queue"].url_for())
    return await render(request, "staff/login.html", {"next": request.query.get("next", ""), "username": ""})


@routes.post("/staff/login", name="staff_login_post")
async def login_post(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:256]
    now = _now(request)
    error = None
    staff: Staff | None = None
    async with transaction(request.app[keys.SESSIONS]) as db:
        try:
            staff = await authenticate(db, username=username, password=password, now=now)
            await audit(db, staff=staff, action="login", now=now, detail="密码登录", ip=_ip(request))
        except LoginFailed as exc:
            error = str(exc)
    if staff is None:
        ctx = {"error": error, "next": form.get("next", ""), "username": username}
        return await render(request, "staff/login.html", ctx, status=401)
    await sign_in(request, staff)
    target = safe_next(str(form.get("next", "")), str(request.app.router["staff_queue"].url_for()))
    raise web.HTTPFound(target)


@routes.post("/staff/logout", name="staff_logout")
async def logout(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    await sign_out(request)
    raise web.HTTPFound(request.app.router["staff_login"].url_for())


@routes.get("/staff/oauth/start", name="staff_oauth_start")
async def oauth_start(request: web.Request) -> web.Response:
    session = await get_session(request)
    state = secrets.token_urlsafe(12)
    session["oauth_state"] = state
    raise web.HTTPFound(oauth_authorize_url(request, state=state))


@routes.get("/staff/oauth/callback", name="staff_oauth_callback")
async def oauth_callback(request: web.Request) -> web.Response:
    session = await get_session(request)
    expected = session.pop("oauth_state", None)
    code = request.query.get("code", "")
    if not expected or request.query.get("state") != expected or not code:
        return await render(
            request, "staff/login.html", {"error": "微信授权已失效，请重新进入", "next": ""}, status=400
        )
    try:
        openid = await oauth_exchange(request, code=code)
    except OAuthError as exc:
        return await render(request, "staff/login.html", {"error": str(exc), "next": ""}, status=502)
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        staff = await staff_by_openid(db, openid=openid)
        if staff is not None:
            await audit(db, staff=staff, action="login", now=now, detail="微信登录", ip=_ip(request))
    if staff is None:
        session["oauth_openid"] = openid
        raise web.HTTPFound(request.app.router["staff_oauth_bind"].url_for())
    await sign_in(request, staff)
    raise web.HTTPFound(request.app.router["staff_queue"].url_for())


@routes.get("/staff/oauth/bind", name="staff_oauth_bind")
async def oauth_bind_form(request: web.Request) -> web.Response:
    session = await get_session(request)
    if not session.get("oauth_openid"):
        raise web.HTTPFound(request.app.router["staff_login"].url_for())
    return await render(request, "staff/oauth_bind.html", {})


@routes.post("/staff/oauth/bind", name="staff_oauth_bind_post")
async def oauth_bind_post(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    session = await get_session(request)
    openid = session.get("oauth_openid")
    if not openid:
        raise web.HTTPFound(request.app.router["staff_login"].url_for())
    tries = int(session.get("bind_tries", 0))
    if tries >= 5:
        return await render(
            request, "staff/oauth_bind.html", {"error": "尝试次数过多，请稍后重新进入"}, status=429
        )
    now = _now(request)
    error = None
    async with transaction(request.app[keys.SESSIONS]) as db:
        try:
            staff = await bind_openid(db, code=str(form.get("code", "")), openid=str(openid), now=now)
            await audit(db, staff=staff, action="bind_wechat", now=now, detail="绑定微信", ip=_ip(request))
        except StaffError as exc:
            error = str(exc)
    if error:
        session["bind_tries"] = tries + 1
        return await render(request, "staff/oauth_bind.html", {"error": error}, status=400)
    await sign_in(request, staff)
    await flash(request, "微信已绑定，以后在微信里打开即可直接登录")
    raise web.HTTPFound(request.app.router["staff_queue"].url_for())


# ------------------------------------------------------------------ account
@routes.get("/staff/account", name="staff_account")
@require_staff()
async def account(request: web.Request, staff: Staff) -> web.Response:
    return await render(request, "staff/account.html", {"code": None})


@routes.post("/staff/account/bind-code", name="staff_bind_code")
@require_staff()
async def account_bind_code(request: web.Request, staff: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        me = await db.get(Staff, staff.id)
        assert me is not None
        code = await new_bind_code(db, staff=me, now=now)
        await audit(db, staff=me, action="bind_code", now=now, detail="生成微信绑定码", ip=_ip(request))
    return await render(request, "staff/account.html", {"code": code})


@routes.post("/staff/account/password", name="staff_password")
@require_staff()
async def account_password(request: web.Request, staff: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        me = await db.get(Staff, staff.id)
        assert me is not None
        from bot.staff_service import verify_password

        if not verify_password(str(form.get("old", "")), me.password_hash):
            error = "原密码不正确"
        else:
            try:
                await set_password(db, staff=me, password=str(form.get("new", "")))
                await audit(db, staff=me, action="password", now=now, detail="修改密码", ip=_ip(request))
                error = None
            except StaffError as exc:
                error = str(exc)
    if error:
        return await render(request, "staff/account.html", {"code": None, "error": error}, status=400)
    await flash(request, "密码已修改")
    raise web.HTTPFound(request.app.router["staff_account"].url_for())


# ------------------------------------------------------------------ the queue
@routes.get("/staff", name="staff_home")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.app.router["staff_queue"].url_for())


@routes.get("/staff/cases", name="staff_queue")
@require_staff()
async def queue(request: web.Request, staff: Staff) -> web.Response:
    filters = QueueFilter.from_query(request.query)
    now = _now(request)
    async with request.app[keys.SESSIONS]() as db:
        page = await list_queue(db, staff=staff, filters=filters, now=now)
        cats = await categories(db)
    base = request.app.router["staff_queue"].url_for()
    ctx = {
        "page": page,
        "f": filters,
        "sorts": SORTS,
        "categories": cats,
        "fmt": _fmt,
        "prev_url": str(base.with_query(filters.params(page=page.page - 1))) if page.page > 1 else None,
        "next_url": str(base.with_query(filters.params(page=page.page + 1))) if page.has_next else None,
        "open_states": [s for s in STATE_LABEL if s in OPEN_STATES],
        "all_states": list(STATE_LABEL),
    }
    return await render(request, "staff/queue.html", ctx)


# ------------------------------------------------------------------ the case page
async def _case_page(
    request: web.Request,
    staff: Staff,
    case_no: str,
    *,
    full_phone: bool = False,
    status: int = 200,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        case = await get_case_for(db, staff=staff, case_no=case_no)
        if case is None:
            raise web.HTTPNotFound()
        view = await case_view(db, staff=staff, case=case)
        cats = await categories(db, kind=case.kind)
    actor = actor_for(staff)
    actions = allowed_actions(case, actor)
    ctx = {
        "c": case,
        "v": view,
        "actions": actions,
        "simple_actions": [a for a in actions if a in SIMPLE_ACTIONS],
        "needs_note": {a for (_, a), r in TRANSITIONS.items() if r.reason},
        "phone": view.phone if full_phone else mask_phone(view.phone),
        "full_phone": full_phone,
        "categories": cats,
        "fmt": _fmt,
        "rk": secrets.token_urlsafe(12),
        "terminal": case.status in TERMINAL,
        "is_owner": case.claimed_by_id == staff.id,
        **(extra or {}),
    }
    return await render(request, "staff/case.html", ctx, status=status)


@routes.get("/staff/cases/new", name="staff_case_new")
@require_staff()
async def new_case_form(request: web.Request, staff: Staff) -> web.Response:
    data = StaffCaseInput(kind="micro_wish", description="", town=staff.town or "", community=staff.community)
    return await render(request, "staff/new.html", {"d": data, "error": None})


@routes.post("/staff/cases/new", name="staff_case_create")
@require_staff()
async def new_case_post(request: web.Request, staff: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)

    def g(name: str, limit: int = 64) -> str:
        return str(form.get(name, "")).strip()[:limit]

    data = StaffCaseInput(
        kind=g("kind", 16),
        description=g("description", 2000),
        town=g("town", 16) or (staff.town or ""),
        channel=g("channel", 16),
        community=g("community") or None,
        address=g("address", 128) or None,
        beneficiary=g("beneficiary", 32) or None,
        contact_phone=g("contact_phone", 32) or None,
        category=g("category", 32) or None,
        item=g("item") or None,
    )
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await create_staff_case(db, actor=actor_for(staff), data=data, now=now)
            await audit(
                db,
                staff=staff,
                action="create_case",
                case=case,
                now=now,
                detail=CHANNELS.get(data.channel, data.channel),
                ip=_ip(request),
            )
    except LifecycleError as exc:
        return await render(request, "staff/new.html", {"d": data, "error": str(exc)}, status=400)
    await flash(
        request,
        f"已登记诉求{case.case_no}。请告诉居民：关注公众号后发送绑定码 {case.bind_code} 即可在微信查看进度。",
    )
    raise web.HTTPFound(_case_url(request, case.case_no))


@routes.get("/staff/cases/{case_no}", name="staff_case")
@require_staff()
async def case_page(request: web.Request, staff: Staff) -> web.Response:
    return await _case_page(request, staff, request.match_info["case_no"])


@routes.post("/staff/cases/{case_no}/phone", name="staff_case_phone")
@require_staff()
async def reveal_phone(request: web.Request, staff: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    case_no = request.match_info["case_no"]
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        case = await get_case_for(db, staff=staff, case_no=case_no)
        if case is None:
            raise web.HTTPNotFound()
        await audit(
            db, staff=staff, action="reveal_phone", case=case, now=now, detail="查看完整电话", ip=_ip(request)
        )
    return await _case_page(request, staff, case_no, full_phone=True)


async def _perform(db: Any, *, case: Case, staff: Staff, form: MultiDictProxy[Any], now: datetime) -> str:
    """Run one action of the case page; returns the message shown afterwards."""
    actor = actor_for(staff)
    op = str(form.get("action", ""))
    note = str(form.get("note", "")).strip()[:1000] or None
    rk = str(form.get("rk", ""))[:40] or None
    label = ACTION_LABEL.get(op, op)
    if op == "claim":
        await claim(db, case=case, actor=actor, now=now, request_key=rk)
        return "认领成功，这件诉求由您负责"
    if op == "release":
        await release(db, case=case, actor=actor, now=now, note=note, request_key=rk)
        return "已释放，其他同事可以认领"
    if op == "complete":
        photos = [p for p in str(form.get("photos", "")).split() if p]
        await complete(db, case=case, actor=actor, note=note or "", photos=photos, now=now, request_key=rk)
        return "已办结，居民会收到通知和评价邀请"
    if op == "ask":
        await ask_resident(
            db, case=case, actor=actor, question=str(form.get("question", ""))[:500], now=now, request_key=rk
        )
        return "问题已发给居民，居民回复后会显示在时间线上"
    if op == "note":
        await add_note(db, case=case, actor=actor, note=note or "", now=now)
        return "备注已保存"
    if op == "edit":
        events = await edit_case(
            db,
            case=case,
            actor=actor,
            now=now,
            category=str(form.get("category", "")) or None,
            town=str(form.get("town", "")) or None,
            community=str(form["community"]) if "community" in form else None,
        )
        return "已修改" if events else "没有改动"
    if op == "merge":
        into_no = str(form.get("into", "")).strip().upper()[:24]
        into = await get_case_for(db, staff=staff, case_no=into_no)
        if into is None:
            raise StaffError(f"找不到诉求{into_no or '（未填编号）'}")
        await merge_case(db, case=case, into=into, actor=actor, note=note, now=now, request_key=rk)
        return f"已合并到{into.case_no}"
    if op == "reassign":
        to_id = str(form.get("to_staff", ""))
        target = await db.get(Staff, int(to_id)) if to_id.isdigit() else None
        if target is None:
            raise StaffError("请选择要指派的工作人员")
        await reassign(db, case=case, actor=actor, to_staff=target, note=note, now=now, request_key=rk)
        return f"已指派给{target.display_name or target.username}"
    if op in SIMPLE_ACTIONS:
        await transition(db, case=case, action=op, actor=actor, note=note, now=now, request_key=rk)
        return f"已{label}"
    raise StaffError("未知的操作")


@routes.post("/staff/cases/{case_no}/act", name="staff_case_act")
@require_staff()
async def case_act(request: web.Request, staff: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    case_no = request.match_info["case_no"]
    now = _now(request)
    op = str(form.get("action", ""))[:16]
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await get_case_for(db, staff=staff, case_no=case_no)
            if case is None:
                raise web.HTTPNotFound()
            message = await _perform(db, case=case, staff=staff, form=form, now=now)
            detail = str(form.get("note", "") or form.get("question", ""))[:200]
            await audit(
                db, staff=staff, action=f"case_{op}", case=case, now=now, detail=detail, ip=_ip(request)
            )
    except ClaimConflict as exc:
        async with transaction(request.app[keys.SESSIONS]) as db:
            await audit(
                db,
                staff=staff,
                action="claim_conflict",
                now=now,
                detail=f"{case_no} 已由{exc.owner_name}认领",
                ip=_ip(request),
            )
        return await _case_page(request, staff, case_no, status=409, extra={"conflict": str(exc)})
    except (LifecycleError, StaffError) as exc:
        await flash(request, str(exc), "error")
        raise web.HTTPFound(_case_url(request, case_no)) from None
    await flash(request, message)
    raise web.HTTPFound(_case_url(request, case_no))


# ------------------------------------------------------------------ audit log
@routes.get("/staff/audit", name="staff_audit")
@require_staff(SUPERVISORS)
async def audit_page(request: web.Request, staff: Staff) -> web.Response:
    page = int(request.query["page"]) if request.query.get("page", "").isdigit() else 1
    page = max(1, min(page, 10_000))
    async with request.app[keys.SESSIONS]() as db:
        rows = await list_audit(db, viewer=staff, page=page)
    return await render(request, "staff/audit.html", {"rows": rows, "page": page, "fmt": _fmt})
