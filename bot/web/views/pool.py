"""Staff pages of the 爱心资源库: list and filters, a resource's page (history, edit, deactivate, WeChat bind code),
import with a validation report, export, offering a wish from the case page, and batch assignment.

Jurisdiction: a town's staff see the resources serving their town and edit those based in it; city roles see all.
Every POST checks the CSRF token first; domain errors (``LifecycleError``) become flash messages here."""

from __future__ import annotations

import logging
import re

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import keys
from bot.cases.access import actor_for, audit
from bot.cases.lifecycle import CITY_ROLES, TOWN_WORKERS, LifecycleError
from bot.cases.numbering import CHINA
from bot.db import transaction
from bot.models import Offer, Resource, Staff
from bot.pool import (
    EDITABLE,
    OFFER_LABEL,
    Mode,
    PoolConfig,
    PoolFilter,
    allowed_categories,
    bind_code_of,
    can_edit,
    export_pool,
    get_resource_for,
    import_pool,
    list_pool,
    new_volunteer_bind_code,
    offer,
    propose_batch,
    record_answer,
    resource_history,
    send_batch,
    set_active,
    update_resource,
    withdraw_offer,
)
from bot.web.auth import require_staff
from bot.web.params import optional_int
from bot.web.views.common import case_or_404, csrf_form, flash_redirect
from bot.web.views.common import fmt_time as _fmt
from bot.web.views.common import now_of as _now
from bot.web.views.staff import render
from matching.model import KIND_LABELS
from matching.scoring import town_name
from reference.towns import TOWNS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
POOL_ROLES = TOWN_WORKERS | CITY_ROLES
MAX_UPLOAD = 8 * 1024 * 1024


def _config(request: web.Request) -> PoolConfig:
    return PoolConfig.from_settings(request.app[keys.SETTINGS])


def _resource_url(request: web.Request, key: str) -> str:
    return str(request.app.router["staff_pool_resource"].url_for(key=key))


# ------------------------------------------------------------------ list
@routes.get("/staff/pool", name="staff_pool")
@require_staff(POOL_ROLES)
async def pool_list(request: web.Request, staff: Staff) -> web.Response:
    filters = PoolFilter.from_query(request.query)
    async with request.app[keys.SESSIONS]() as db:
        page = await list_pool(db, staff=staff, filters=filters, now=_now(request), config=_config(request))
        cats = await allowed_categories(db)
    base = request.app.router["staff_pool"].url_for()
    ctx = {
        "page": page,
        "f": filters,
        "categories": cats,
        "kinds": KIND_LABELS,
        "prev_url": str(base.with_query(filters.params(page=page.page - 1))) if page.page > 1 else None,
        "next_url": str(base.with_query(filters.params(page=page.page + 1))) if page.has_next else None,
        "export_query": filters.params(page=1),
    }
    return await render(request, "pool/list.html", ctx)


# ------------------------------------------------------------------ import / export (before /{key})
@routes.get("/staff/pool/import", name="staff_pool_import")
@require_staff(POOL_ROLES)
async def import_form(request: web.Request, staff: Staff) -> web.Response:
    return await render(request, "pool/import.html", {"outcome": None})


@routes.post("/staff/pool/import", name="staff_pool_import_post")
@require_staff(POOL_ROLES)
async def import_post(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    upload = form.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return await render(
            request, "pool/import.html", {"outcome": None, "error": "请选择要上传的文件"}, status=400
        )
    data = upload.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return await render(
            request, "pool/import.html", {"outcome": None, "error": "文件超过8MB，请分批导入"}, status=400
        )
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        outcome = await import_pool(db, data=data, filename=upload.filename, now=now, staff=staff)
        if outcome.ok:
            await audit(
                db,
                staff=staff,
                action="pool_import",
                now=now,
                ip=request.remote,
                detail=f"{upload.filename[:80]}：新增{outcome.created}，更新{outcome.updated}",
            )
    return await render(
        request,
        "pool/import.html",
        {"outcome": outcome, "filename": upload.filename},
        status=200 if outcome.ok else 400,
    )


async def _export(request: web.Request, staff: Staff, fmt: str) -> web.Response:
    """A POST with a CSRF token (a cross-site link cannot start a download or write an audit entry); one audit
    entry per export: who, which format, how many records, whether numbers were full."""
    await csrf_form(request)
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        export = await export_pool(db, staff=staff, now=now, fmt=fmt, config=_config(request))
        await audit(
            db,
            staff=staff,
            action="pool_export",
            now=now,
            ip=request.remote,
            detail=f"导出爱心资源{fmt.upper()}：{export.rows}条，电话{'完整' if export.full_phones else '已遮盖'}",
        )
    stamp = now.astimezone(CHINA).strftime("%Y%m%d")
    if fmt == "xlsx":
        ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        ctype = "text/csv; charset=utf-8"
    return web.Response(
        body=export.body,
        headers={
            "Content-Type": ctype,
            "Content-Disposition": f"attachment; filename=pool-{stamp}.{fmt}",
            "Cache-Control": "no-store",
        },
    )


@routes.post("/staff/pool/export.csv", name="staff_pool_export_csv")
@require_staff(POOL_ROLES)
async def export_csv(request: web.Request, staff: Staff) -> web.Response:
    return await _export(request, staff, "csv")


@routes.post("/staff/pool/export.xlsx", name="staff_pool_export_xlsx")
@require_staff(POOL_ROLES)
async def export_xlsx(request: web.Request, staff: Staff) -> web.Response:
    return await _export(request, staff, "xlsx")


@routes.get("/staff/pool/export.csv", name="staff_pool_export_csv_get")
@routes.get("/staff/pool/export.xlsx", name="staff_pool_export_xlsx_get")
@require_staff(POOL_ROLES)
async def export_by_link(request: web.Request, staff: Staff) -> web.Response:
    """An old bookmark or a link from elsewhere: nothing is exported or logged; the buttons are on the list."""
    await flash_redirect(request, request.app.router["staff_pool"].url_for(), "请点击页面上的“导出”按钮下载")


# ------------------------------------------------------------------ batch assignment
@routes.get("/staff/batch", name="staff_batch")
@require_staff(POOL_ROLES)
async def batch_page(request: web.Request, staff: Staff) -> web.Response:
    town = staff.town if staff.role not in CITY_ROLES else (town_name(request.query.get("town", "")) or None)
    proposal = None
    if request.query.get("run"):
        async with request.app[keys.SESSIONS]() as db:
            proposal = await propose_batch(db, town=town, now=_now(request), config=_config(request))
    return await render(request, "pool/batch.html", {"proposal": proposal, "town": town or ""})


@routes.post("/staff/batch/send", name="staff_batch_send")
@require_staff(POOL_ROLES)
async def batch_send(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    pairs: list[tuple[str, str]] = []
    for value in form.getall("pick", []):
        case_no, _, key = str(value).partition("|")
        if case_no and key:
            pairs.append((case_no[:24], key[:32]))
    if not pairs:
        await flash_redirect(request, request.app.router["staff_batch"].url_for(), "请至少选择一条", "error")
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        sent, problems = await send_batch(
            db, pairs=pairs[:500], actor=actor_for(staff), staff=staff, now=now, config=_config(request)
        )
        await audit(
            db,
            staff=staff,
            action="batch_offer",
            now=now,
            ip=request.remote,
            detail=f"批量派单{sent}条，未发{len(problems)}条",
        )
    text = f"已发出{sent}个邀请" + (f"；{len(problems)}条未发：{'；'.join(problems[:5])}" if problems else "")
    kind = "error" if problems and not sent else "info"
    await flash_redirect(request, request.app.router["staff_batch"].url_for(), text, kind)


# ------------------------------------------------------------------ offering from the case page
@routes.post("/staff/cases/{case_no}/offer", name="staff_case_offer")
@require_staff(POOL_ROLES)
async def case_offer(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    case_no = request.match_info["case_no"]
    mode: Mode = "top_k" if form.get("mode") == "top_k" else "single"
    k = optional_int(form.get("k"), field="人数", lo=1, hi=10) or 3
    key = str(form.get("key", "")).strip()[:32]
    now = _now(request)
    case_url = str(request.app.router["staff_case"].url_for(case_no=case_no))
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            outcome = await offer(
                db,
                case=case,
                actor=actor_for(staff),
                mode=mode,
                k=k,
                now=now,
                keys=[key] if key else None,
                config=_config(request),
            )
            await audit(
                db,
                staff=staff,
                action="case_offer",
                case=case,
                now=now,
                ip=request.remote,
                detail=outcome.message,
            )
    except LifecycleError as exc:
        await flash_redirect(request, case_url + "#pool", str(exc), "error")
    await flash_redirect(
        request, case_url + "#pool", outcome.message, "error" if outcome.exhausted else "info"
    )


# ------------------------------------------------------------------ an invitation, for a donor without WeChat
def _offer_id(request: web.Request) -> int:
    raw = request.match_info["offer_id"]
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise web.HTTPNotFound()
    return int(raw)


@routes.post("/staff/cases/{case_no}/offers/{offer_id}/phone", name="staff_offer_phone")
@require_staff(POOL_ROLES)
async def offer_phone(request: web.Request, staff: Staff) -> web.Response:
    """The audited reveal of a donor's full number (shown once, in the next page's message)."""
    await csrf_form(request)
    case_no, offer_id = request.match_info["case_no"], _offer_id(request)
    case_url = str(request.app.router["staff_case"].url_for(case_no=case_no)) + "#pool"
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        case = await case_or_404(db, staff=staff, case_no=case_no)
        found = await db.get(Offer, offer_id)
        resource = await db.get(Resource, found.resource_id) if found and found.case_id == case.id else None
        if resource is None:
            raise web.HTTPNotFound()
        await audit(
            db,
            staff=staff,
            action="reveal_donor_phone",
            case=case,
            now=now,
            ip=request.remote,
            detail=f"查看爱心资源{resource.key}的完整电话",
        )
    await flash_redirect(
        request, case_url, f"{resource.name}的电话：{resource.phone or '未登记'}（已记入操作日志）"
    )


@routes.post("/staff/cases/{case_no}/offers/{offer_id}/answer", name="staff_offer_answer")
@require_staff(POOL_ROLES)
async def offer_answer_by_staff(request: web.Request, staff: Staff) -> web.Response:
    """Staff record the answer a donor gave on the phone."""
    form = await csrf_form(request)
    choice = str(form.get("answer", ""))
    case_no, offer_id = request.match_info["case_no"], _offer_id(request)
    case_url = str(request.app.router["staff_case"].url_for(case_no=case_no)) + "#pool"
    if choice not in ("accept", "decline"):
        await flash_redirect(request, case_url, "请选择接受或婉拒", "error")
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            answer = await record_answer(
                db,
                case=case,
                offer_id=offer_id,
                accepted=choice == "accept",
                actor=actor_for(staff),
                now=now,
                config=_config(request),
            )
            await audit(
                db,
                staff=staff,
                action="offer_answer_recorded",
                case=case,
                now=now,
                ip=request.remote,
                detail=f"代为记录爱心人士答复：{'接受' if choice == 'accept' else '婉拒'}",
            )
    except LifecycleError as exc:
        await flash_redirect(request, case_url, str(exc), "error")
    await flash_redirect(request, case_url, answer.message, "info" if answer.ok else "error")


@routes.post("/staff/cases/{case_no}/offers/{offer_id}/withdraw", name="staff_offer_withdraw")
@require_staff(POOL_ROLES)
async def offer_withdraw(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    case_no, offer_id = request.match_info["case_no"], _offer_id(request)
    case_url = str(request.app.router["staff_case"].url_for(case_no=case_no)) + "#pool"
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            case = await case_or_404(db, staff=staff, case_no=case_no)
            await withdraw_offer(db, case=case, offer_id=offer_id, actor=actor_for(staff), now=now)
            await audit(
                db,
                staff=staff,
                action="offer_withdraw",
                case=case,
                now=now,
                ip=request.remote,
                detail="撤回邀请",
            )
    except LifecycleError as exc:
        await flash_redirect(request, case_url, str(exc), "error")
    await flash_redirect(request, case_url, "已撤回邀请")


# ------------------------------------------------------------------ one resource
async def _resource_or_404(db: AsyncSession, *, staff: Staff, key: str) -> Resource:
    """The resource if the staff member may see it; otherwise "not found"."""
    row = await get_resource_for(db, staff=staff, key=key)
    if row is None:
        raise web.HTTPNotFound()
    return row


async def _resource_page(
    request: web.Request,
    staff: Staff,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    code: str | None = None,
    status: int = 200,
) -> web.Response:
    key = request.match_info["key"]
    async with request.app[keys.SESSIONS]() as db:
        row = await _resource_or_404(db, staff=staff, key=key)
        history = await resource_history(db, resource=row, now=_now(request), config=_config(request))
        cats = await allowed_categories(db)
    values = form or {
        "name": row.name,
        "contact": row.contact,
        "phone": row.phone or "",
        "kind": row.kind,
        "categories": "、".join(row.categories or []),
        "items": "、".join(row.items or []),
        "home_town": row.home_town,
        "towns_served": "、".join(row.towns_served or []) or "全市",
        "capacity_open": str(row.capacity_open),
        "capacity_month": str(row.capacity_month),
        "max_fund": "" if row.max_fund is None else str(row.max_fund),
        "available": "1" if row.available else "",
        "community_id": str(row.community_id or ""),
    }
    ctx = {
        "r": row,
        "h": history,
        "errors": errors or {},
        "v": values,
        "code": code,
        "pending_code": bind_code_of(row) is not None,
        "editable": can_edit(staff, row),
        "kinds": KIND_LABELS,
        "categories": cats,
        "OFFER_LABEL": OFFER_LABEL,
        "fmt": _fmt,
        "towns": TOWNS,
    }
    return await render(request, "pool/resource.html", ctx, status=status)


@routes.get("/staff/pool/{key}", name="staff_pool_resource")
@require_staff(POOL_ROLES)
async def resource_page(request: web.Request, staff: Staff) -> web.Response:
    return await _resource_page(request, staff)


@routes.post("/staff/pool/{key}/edit", name="staff_pool_edit")
@require_staff(POOL_ROLES)
async def resource_edit(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    key = request.match_info["key"]
    values = {name: str(form.get(name, ""))[:500] for name in EDITABLE}
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            row = await _resource_or_404(db, staff=staff, key=key)
            errors = await update_resource(db, staff=staff, resource=row, values=values, now=now)
            if not errors:
                await audit(
                    db,
                    staff=staff,
                    action="pool_edit",
                    now=now,
                    detail=f"修改爱心资源{key}",
                    ip=request.remote,
                )
    except LifecycleError as exc:
        await flash_redirect(request, _resource_url(request, key), str(exc), "error")
    if errors:
        return await _resource_page(request, staff, errors=errors, form=values, status=400)
    await flash_redirect(request, _resource_url(request, key), "已保存")


@routes.post("/staff/pool/{key}/active", name="staff_pool_active")
@require_staff(POOL_ROLES)
async def resource_active(request: web.Request, staff: Staff) -> web.Response:
    form = await csrf_form(request)
    key = request.match_info["key"]
    active = form.get("active") == "1"
    now = _now(request)
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            row = await _resource_or_404(db, staff=staff, key=key)
            await set_active(db, staff=staff, resource=row, active=active, now=now)
            await audit(
                db,
                staff=staff,
                action="pool_active",
                now=now,
                ip=request.remote,
                detail=f"{'启用' if active else '停用'}爱心资源{key}",
            )
    except LifecycleError as exc:
        await flash_redirect(request, _resource_url(request, key), str(exc), "error")
    await flash_redirect(
        request, _resource_url(request, key), "已启用" if active else "已停用，不会再收到新的邀请"
    )


@routes.post("/staff/pool/{key}/bind-code", name="staff_pool_bind_code")
@require_staff(POOL_ROLES)
async def resource_bind_code(request: web.Request, staff: Staff) -> web.Response:
    await csrf_form(request)
    key = request.match_info["key"]
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        row = await _resource_or_404(db, staff=staff, key=key)
        if not can_edit(staff, row):
            raise web.HTTPForbidden(text="只能为本镇街的爱心资源生成绑定码")
        code = await new_volunteer_bind_code(db, resource=row, now=now)
        await audit(
            db,
            staff=staff,
            action="pool_bind_code",
            now=now,
            detail=f"为{key}生成微信绑定码",
            ip=request.remote,
        )
    return await _resource_page(request, staff, code=code)
