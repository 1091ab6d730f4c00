"""The staff web view (mobile first, works without JavaScript): sign-in, the queue, the case page and its actions.

Every POST checks the CSRF token first and finds the case through the staff member's jurisdiction (another
town's case → 404, nothing changed). Domain errors become HTTP answers here and only here."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from multidict import MultiDictProxy
from yarl import URL

from bot import keys
from bot.background import spawn
from bot.cases.access import (
    SORTS,
    BindLimited,
    LoginFailed,
    QueueFilter,
    StaffError,
    actor_for,
    audit,
    authenticate,
    bind_openid,
    case_view,
    cases_query,
    category_names,
    get_case_for,
    list_queue,
    mask_phone,
    new_bind_code,
    set_password,
    shown_categories,
    staff_by_openid,
    verify_password,
)
from bot.cases.casepage import page_case
from bot.cases.communities import COMMUNITY_PICKERS, communities_by_town
from bot.cases.flags import FLAG_LABEL, clear_flag
from bot.cases.govpanel import case_panel
from bot.cases.lifecycle import (
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
from bot.cases.numbering import CHANNELS, KIND_LABEL
from bot.cases.queries import (
    OUTBOX_STATUS_LABEL,
    case_deliveries,
    deadline_state,
    failed_deliveries,
    flagged_page,
    outbox_row_for,
    queue_badges,
)
from bot.db import transaction
from bot.delivery.dispatcher import NotRetryable, retry
from bot.media import case_media
from bot.models import Case, Staff
from bot.pool import PoolConfig, candidates_panel
from bot.web.auth import (
    OAuthError,
    current_staff,
    oauth_authorize_url,
    oauth_exchange,
    page_session,
    require_staff,
    safe_next,
    sign_in,
    sign_out,
)
from bot.web.params import (
    ParamError,
    clean_query,
    form_text,
    optional_int,
    parse_case_no,
    parse_int_id,
    parse_page,
)
from bot.web.views.common import case_or_404, csrf_form, flash, flash_redirect, page_param
from bot.web.views.common import client_ip as _ip
from bot.web.views.common import fmt_time as _fmt
from bot.web.views.common import now_of as _now
from bot.web.websec import safe_url
from reference import privacy
from reference.towns import TOWNS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
REVEAL_KEY = "reveal_case"

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
        "FLAG_LABEL": FLAG_LABEL,
        **context,
    }
    if template in COMMUNITY_PICKERS:  # the forms that pick a community from the town's list
        me = ctx["me"]  # town staff pick from their own town only: not the whole city's registry per page
        towns = [me.town] if me is not None and me.town else None
        ctx["COMMUNITIES"] = await communities_by_town(request.app[keys.SESSIONS], towns=towns)
    response = aiohttp_jinja2.render_template(template, request, ctx)
    response.set_status(status)
    return response


def _case_url(request: web.Request, case_no: str) -> str:
    return str(request.app.router["staff_case"].url_for(case_no=case_no))


# ------------------------------------------------------------------ sign-in
@routes.get("/staff/login", name="staff_login")
async def login_form(request: web.Request) -> web.Response:
    if await current_staff(request) is not None:
        raise web.HTTPFound(request.app.router["staff_queue"].url_for())
    return await render(request, "staff/login.html", {"next": request.query.get("next", ""), "username": ""})


@routes.post("/staff/login", name="staff_login_post")
async def login_post(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    username = str(form.get("username", ""))[:64]  # never stored: an unknown name is simply not found
    password = str(form.get("password", ""))[:256]
    now = _now(request)
    error = None
    staff: Staff | None = None
    async with transaction(request.app[keys.SESSIONS]) as db:
        try:
            staff = await authenticate(db, username=username, password=password, now=now, ip=_ip(request))
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
    await csrf_form(request)
    await sign_out(request)
    raise web.HTTPFound(request.app.router["staff_login"].url_for())


@routes.get("/staff/oauth/start", name="staff_oauth_start")
async def oauth_start(request: web.Request) -> web.Response:
    """Inside WeChat: off to WeChat's authorisation page, which comes back to the callback with a code."""
    session = await get_session(request)
    state = secrets.token_urlsafe(12)
    session["oauth_state"] = state
    queue_url = str(request.app.router["staff_queue"].url_for())
    session["oauth_next"] = safe_next(request.query.get("next", ""), queue_url)
    # encoded=True: the callback stays percent-encoded inside redirect_uri, as WeChat asks
    raise web.HTTPFound(URL(oauth_authorize_url(request, state=state), encoded=True))


@routes.get("/staff/oauth/callback", name="staff_oauth_callback")
async def oauth_callback(request: web.Request) -> web.Response:
    session = await get_session(request)
    expected = session.pop("oauth_state", None)
    target = safe_next(session.pop("oauth_next", None), str(request.app.router["staff_queue"].url_for()))
    code = request.query.get("code", "")[:128]
    state = request.query.get("state", "")
    if (
        not expected
        or not secrets.compare_digest(state.encode("utf-8", "replace"), str(expected).encode())
        or not code
    ):
        ctx = {"error": "微信授权已失效，请重新进入", "next": ""}
        return await render(request, "staff/login.html", ctx, status=400)
    try:
        openid = await oauth_exchange(request, code=code)
    except OAuthError as exc:
        status = 502 if exc.unavailable else 400
        return await render(request, "staff/login.html", {"error": str(exc), "next": ""}, status=status)
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        staff = await staff_by_openid(db, openid=openid)
        if staff is not None:
            await audit(db, staff=staff, action="login", now=now, detail="微信登录", ip=_ip(request))
    if staff is None:
        session["oauth_openid"] = openid
        raise web.HTTPFound(request.app.router["staff_oauth_bind"].url_for())
    await sign_in(request, staff)
    raise web.HTTPFound(target)


@routes.get("/staff/oauth/bind", name="staff_oauth_bind")
async def oauth_bind_form(request: web.Request) -> web.Response:
    session = await get_session(request)
    if not session.get("oauth_openid"):
        raise web.HTTPFound(request.app.router["staff_login"].url_for())
    return await render(request, "staff/oauth_bind.html", {})


@routes.post("/staff/oauth/bind", name="staff_oauth_bind_post")
async def oauth_bind_post(request: web.Request) -> web.Response:
    form = await csrf_form(request)
    session = await get_session(request)
    openid = session.get("oauth_openid")
    if not openid:
        raise web.HTTPFound(request.app.router["staff_login"].url_for())
    now = _now(request)
    error, status = None, 400
    code = str(form.get("code", ""))[:32]
    async with transaction(request.app[keys.SESSIONS]) as db:  # attempts are counted on the server
        try:
            staff = await bind_openid(db, code=code, openid=str(openid), now=now, ip=_ip(request))
            await audit(db, staff=staff, action="bind_wechat", now=now, detail="绑定微信", ip=_ip(request))
        except BindLimited as exc:
            error, status = str(exc), 429
        except StaffError as exc:
            error = str(exc)
    if error:
        return await render(request, "staff/oauth_bind.html", {"error": error}, status=status)
    await sign_in(request, staff)
    await flash_redirect(
        request, request.app.router["staff_queue"].url_for(), "微信已绑定，以后在微信里打开即可直接登录"
    )


# ------------------------------------------------------------------ account
@routes.get("/staff/account", name="staff_account")
@require_staff()
async def account(request: web.Request, staff: Staff) -> web.Response:
    return await render(request, "staff/account.html", {"code": None})


@routes.post("/staff/account/bind-code", name="staff_bind_code")
@require_staff()
async def account_bind_code(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
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
    form = await csrf_form(request)
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        me = await db.get(Staff, staff.id)
        assert me is not None
        old = str(form.get("old", ""))[:256]
        if not await asyncio.to_thread(verify_password, old, me.password_hash):
            error = "原密码不正确"
        else:
            try:
                await set_password(db, staff=me, password=str(form.get("new", ""))[:256])
                await audit(db, staff=me, action="password", now=now, detail="修改密码", ip=_ip(request))
                error = None
            except StaffError as exc:
                error = str(exc)
    if error:
        return await render(request, "staff/account.html", {"code": None, "error": error}, status=400)
    await sign_in(request, me)  # every other session of this account ended with the change; this one goes on
    await flash_redirect(request, request.app.router["staff_account"].url_for(), "密码已修改")


# ------------------------------------------------------------------ the queue
@routes.get("/staff", name="staff_home")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.app.router["staff_queue"].url_for())


@routes.get("/staff/cases", name="staff_queue")
@require_staff(reads=True)
async def queue(request: web.Request, staff: Staff) -> web.Response:
    query = clean_query(request.query)
    query["page"] = str(parse_page(request.query))
    filters = QueueFilter.from_query(query)
    flag = query.get("flag", "")
    flag = flag if flag in FLAG_LABEL else ""
    now = _now(request)
    async with page_session(request) as db:  # the session the staff member was read in
        if flag:  # the cases a flag asks staff to act on, whatever their state
            page = await flagged_page(db, staff=staff, flag=flag, page=filters.page, now=now)
        else:
            page = await list_queue(db, staff=staff, filters=filters, now=now)
        cats = await shown_categories(db)
        counts, calls = await queue_badges(db, staff=staff, now=now)  # flags and calls: one statement
    base = request.app.router["staff_queue"].url_for()
    extra = {"flag": flag} if flag else {}
    ctx = {
        "page": page,
        "f": filters,
        "flag": flag,
        "flag_counts": counts,
        "calls_open": calls.open,
        "calls_late": calls.late,
        "callbacks_open": calls.callbacks,
        "calltasks_open": calls.calltasks,
        "sorts": SORTS,
        "categories": cats,
        "fmt": _fmt,
        "prev_url": str(base.with_query({**filters.params(page=page.page - 1), **extra}))
        if page.page > 1
        else None,
        "next_url": str(base.with_query({**filters.params(page=page.page + 1), **extra}))
        if page.has_next
        else None,
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
    async with page_session(request) as db:  # a GET: the session the staff member was read in
        # the case with what its panels need to know (which have rows: only those are read), in one statement
        found = await page_case(db, cases_query(staff).where(Case.case_no == parse_case_no(case_no)))
        if found is None:
            raise web.HTTPNotFound()
        case, extras = found
        view = await case_view(db, staff=staff, case=case, extras=extras)
        cats = await shown_categories(db, kind=case.kind)
        deliveries = await case_deliveries(db, case=case) if extras.deliveries else []
        pool_panel = await candidates_panel(
            db,
            case=case,
            staff=staff,
            now=_now(request),
            config=PoolConfig.from_settings(request.app[keys.SETTINGS]),
            has_offers=extras.offers,
        )
        gov = await case_panel(db, case=case, extras=extras)
        stored_media = await case_media(db, case_id=case.id or 0) if extras.media else []
    actor = actor_for(staff)
    now = _now(request)
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
        "deliveries": deliveries,
        "deadline_state": deadline_state(case, now),
        "pool_panel": pool_panel,
        "stored_media": stored_media,
        "gov": gov,
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
    form = await csrf_form(request)

    def g(name: str, limit: int, label: str, multiline: bool = False) -> str:
        return form_text(form, name, max_len=limit, field=label, multiline=multiline)

    data = StaffCaseInput(kind="micro_wish", description="", town=staff.town or "", community=staff.community)
    try:
        data = StaffCaseInput(
            kind=g("kind", 16, "类型"),
            description=g("description", 2000, "诉求内容", multiline=True),
            town=g("town", 16, "镇街") or (staff.town or ""),
            channel=g("channel", 16, "来源"),
            community=g("community", 64, "村（社区）") or None,
            address=g("address", 128, "地址") or None,
            beneficiary=g("beneficiary", 32, "受助人") or None,
            contact_phone=g("contact_phone", 32, "联系电话") or None,
            category=g("category", 32, "类别") or None,
            item=g("item", 64, "物品") or None,
        )
    except ParamError as exc:
        return await render(request, "staff/new.html", {"d": data, "error": exc.message}, status=400)
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            if data.category and data.category not in await category_names(db, kind=data.kind):
                raise StaffError("请从列表中选择类别")
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
    except (LifecycleError, StaffError) as exc:
        return await render(request, "staff/new.html", {"d": data, "error": str(exc)}, status=400)
    await flash(
        request,
        f"已登记诉求{case.case_no}。请告诉居民：关注公众号后发送绑定码 {case.bind_code} 即可在微信查看进度。",
    )
    raise web.HTTPFound(_case_url(request, case.case_no))


@routes.get("/staff/cases/{case_no}", name="staff_case")
@require_staff(reads=True)
async def case_page(request: web.Request, staff: Staff) -> web.Response:
    case_no = parse_case_no(request.match_info["case_no"])
    session = await get_session(request)
    reveal = session.get(REVEAL_KEY) == case_no  # set by the audited reveal just before, used once
    if reveal:
        del session[REVEAL_KEY]
    return await _case_page(request, staff, case_no, full_phone=reveal)


@routes.post("/staff/cases/{case_no}/phone", name="staff_case_phone")
@require_staff()
async def reveal_phone(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    case_no = parse_case_no(request.match_info["case_no"])
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        case = await case_or_404(db, staff=staff, case_no=case_no)
        await audit(
            db, staff=staff, action="reveal_phone", case=case, now=now, detail="查看完整电话", ip=_ip(request)
        )
    # POST → redirect → GET: the next page view (once) shows the originals; a reload masks again
    session = await get_session(request)
    session[REVEAL_KEY] = case.case_no
    raise web.HTTPFound(_case_url(request, case.case_no))


async def _perform(db: Any, *, case: Case, staff: Staff, form: MultiDictProxy[Any], now: datetime) -> str:
    """Run one action of the case page; returns the message shown afterwards."""
    actor = actor_for(staff)
    op = form_text(form, "action", max_len=16, field="操作")
    note = form_text(form, "note", max_len=1000, field="备注", multiline=True) or None
    rk = form_text(form, "rk", max_len=40, field="rk") or None
    label = ACTION_LABEL.get(op, op)
    if op == "claim":
        await claim(db, case=case, actor=actor, now=now, request_key=rk)
        return "认领成功，这件诉求由您负责"
    if op == "release":
        await release(db, case=case, actor=actor, now=now, note=note, request_key=rk)
        return "已释放，其他同事可以认领"
    if op == "complete":
        photos = [p for p in form_text(form, "photos", max_len=2000, field="照片").split() if p][:20]
        if any(safe_url(p) != p or not p.startswith(("http://", "https://")) for p in photos):
            raise StaffError("照片请填写以 http:// 或 https:// 开头的链接")
        await complete(db, case=case, actor=actor, note=note or "", photos=photos, now=now, request_key=rk)
        return "已办结，居民会收到通知和评价邀请"
    if op == "ask":
        await ask_resident(
            db,
            case=case,
            actor=actor,
            question=form_text(form, "question", max_len=500, field="问题", multiline=True),
            now=now,
            request_key=rk,
        )
        return "问题已发给居民，居民回复后会显示在时间线上"
    if op == "note":
        await add_note(db, case=case, actor=actor, note=note or "", now=now)
        return "备注已保存"
    if op == "edit":
        category = form_text(form, "category", max_len=32, field="类别") or None
        if category is not None and category != case.category:
            if category not in await category_names(db, kind=case.kind):
                raise StaffError("请从列表中选择类别")
        events = await edit_case(
            db,
            case=case,
            actor=actor,
            now=now,
            category=category,
            town=form_text(form, "town", max_len=16, field="镇街") or None,
            community=form_text(form, "community", max_len=64, field="村（社区）")
            if "community" in form
            else None,
        )
        return "已修改" if events else "没有改动"
    if op == "merge":
        into_no = form_text(form, "into", max_len=24, field="合并到").upper()
        into = await get_case_for(db, staff=staff, case_no=parse_case_no(into_no)) if into_no else None
        if into is None:
            raise StaffError(f"找不到诉求{into_no or '（未填编号）'}")
        await merge_case(db, case=case, into=into, actor=actor, note=note, now=now, request_key=rk)
        return f"已合并到{into.case_no}"
    if op == "reassign":
        to_id = optional_int(form.get("to_staff"), field="指派给", lo=1)
        target = await db.get(Staff, to_id) if to_id is not None else None
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
    form = await csrf_form(request)
    case_no = parse_case_no(request.match_info["case_no"])
    now = _now(request)
    op = form_text(form, "action", max_len=16, field="操作")
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            message = await _perform(db, case=case, staff=staff, form=form, now=now)
            detail = (
                form_text(form, "note", max_len=1000, multiline=True)
                or form_text(form, "question", max_len=500, multiline=True)
            )[:200]
            await audit(
                db,
                staff=staff,
                action=f"case_{op}",
                case=case,
                now=now,
                detail=privacy.mask_text(detail),
                ip=_ip(request),
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
    except (LifecycleError, StaffError, ParamError) as exc:
        await flash_redirect(request, _case_url(request, case_no), str(exc), "error")
    await flash_redirect(request, _case_url(request, case_no), message)


@routes.post("/staff/cases/{case_no}/flag", name="staff_case_flag")
@require_staff()
async def case_clear_flag(request: web.Request, staff: Staff) -> web.Response:
    """Clear the case's flag with a note of what was done (e.g. after phoning the resident)."""
    form = await csrf_form(request)
    case_no = parse_case_no(request.match_info["case_no"])
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            flag = case.flag
            event = await clear_flag(
                db,
                case=case,
                actor=actor_for(staff),
                note=form_text(form, "note", max_len=500, field="处理情况", multiline=True),
                now=now,
                expected=form_text(form, "flag", max_len=32, field="标记") or None,
            )
            await audit(
                db,
                staff=staff,
                action="case_clear_flag",
                case=case,
                now=now,
                detail=privacy.mask_text(event.note),
                ip=_ip(request),
            )
    except (StaffError, ParamError) as exc:
        await flash_redirect(request, _case_url(request, case_no), str(exc), "error")
    await flash_redirect(request, _case_url(request, case_no), f"已处理“{FLAG_LABEL.get(flag or '', flag)}”")


# ------------------------------------------------------------------ deliveries: failed messages and retry
@routes.get("/staff/outbox", name="staff_outbox")
@require_staff()
async def outbox_page(request: web.Request, staff: Staff) -> web.Response:
    page = page_param(request)
    async with request.app[keys.SESSIONS]() as db:
        rows, has_next = await failed_deliveries(db, staff=staff, page=page)
    return await render(
        request, "staff/outbox.html", {"rows": rows, "page": page, "has_next": has_next, "fmt": _fmt}
    )


def _dispatch_soon(app: web.Application) -> None:
    """Send the retried message now rather than at the scheduler's next tick (when this process sends)."""
    if keys.WECHAT not in app or keys.TASKS not in app or keys.DISPATCH_NOW not in app:
        return
    spawn(app, app[keys.DISPATCH_NOW](app))


@routes.post("/staff/outbox/{outbox_id:\\d+}/retry", name="staff_outbox_retry")
@require_staff()
async def outbox_retry(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    outbox_id = parse_int_id(request.match_info["outbox_id"], field="消息编号")
    back = safe_next(str(form.get("next", "")), str(request.app.router["staff_outbox"].url_for()))
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            row = await outbox_row_for(db, staff=staff, outbox_id=outbox_id)
            if row is None:
                raise web.HTTPNotFound()
            case = await db.get(Case, row.case_id) if row.case_id else None
            previous = OUTBOX_STATUS_LABEL.get(row.status, row.status)
            await retry(db, outbox_id=outbox_id, now=now)
            await audit(
                db,
                staff=staff,
                action="outbox_retry",
                case=case,
                now=now,
                detail=f"重新发送消息#{outbox_id}（原状态：{previous}）",
                ip=_ip(request),
            )
    except NotRetryable as exc:
        label = OUTBOX_STATUS_LABEL.get(str(exc), str(exc))
        await flash_redirect(request, back, f"这条消息{label}，不需要重新发送", "error")
    _dispatch_soon(request.app)
    await flash_redirect(request, back, "已重新排队发送，稍后刷新查看结果")
