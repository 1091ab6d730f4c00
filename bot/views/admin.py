"""Admins manage staff accounts and the categories staff choose from."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select

from bot import keys
from bot.auth import require_staff
from bot.cases import KIND_LABEL
from bot.db import transaction
from bot.models import Category, Staff
from bot.staff_service import StaffError, audit, create_staff, set_password
from bot.views.staff import _now, flash, render
from bot.websec import check_csrf

routes = web.RouteTableDef()
ADMIN = ("admin",)


@routes.get("/staff/admin/staff", name="admin_staff")
@require_staff(ADMIN)
async def staff_list(request: web.Request, me: Staff) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        rows = list(await db.exec(select(Staff).order_by(col(Staff.town), col(Staff.username))))
    return await render(request, "admin/staff.html", {"rows": rows, "error": None, "form": {}})


@routes.post("/staff/admin/staff", name="admin_staff_create")
@require_staff(ADMIN)
async def staff_create(request: web.Request, me: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    now = _now(request)
    values = {
        k: str(form.get(k, "")).strip() for k in ("username", "display_name", "role", "town", "community")
    }
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            staff = await create_staff(
                db,
                username=values["username"],
                password=str(form.get("password", "")),
                role=values["role"],
                town=values["town"] or None,
                community=values["community"] or None,
                display_name=values["display_name"] or None,
            )
            await audit(
                db,
                staff=me,
                action="admin_create_staff",
                now=now,
                detail=f"{staff.username} {staff.role} {staff.town or ''}",
                ip=request.remote,
            )
    except StaffError as exc:
        async with request.app[keys.SESSIONS]() as db:
            rows = list(await db.exec(select(Staff).order_by(col(Staff.town), col(Staff.username))))
        return await render(
            request, "admin/staff.html", {"rows": rows, "error": str(exc), "form": values}, status=400
        )
    await flash(request, f"已创建账号 {staff.username}")
    raise web.HTTPFound(request.app.router["admin_staff"].url_for())


@routes.post("/staff/admin/staff/{staff_id:\\d+}", name="admin_staff_update")
@require_staff(ADMIN)
async def staff_update(request: web.Request, me: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    now = _now(request)
    op = str(form.get("op", ""))
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            staff = await db.get(Staff, int(request.match_info["staff_id"]))
            if staff is None:
                raise web.HTTPNotFound()
            if op == "toggle":
                if staff.id == me.id:
                    raise StaffError("不能停用自己的账号")
                staff.active = not staff.active
                detail = "启用" if staff.active else "停用"
            elif op == "password":
                await set_password(db, staff=staff, password=str(form.get("password", "")))
                detail = "重置密码"
            elif op == "unbind":
                staff.openid = None
                detail = "解绑微信"
            else:
                raise StaffError("未知的操作")
            await audit(
                db,
                staff=me,
                action=f"admin_staff_{op}",
                now=now,
                detail=f"{staff.username} {detail}",
                ip=request.remote,
            )
    except StaffError as exc:
        await flash(request, str(exc), "error")
    else:
        await flash(request, f"{staff.username}：{detail}")
    raise web.HTTPFound(request.app.router["admin_staff"].url_for())


@routes.get("/staff/admin/categories", name="admin_categories")
@require_staff(ADMIN)
async def category_list(request: web.Request, me: Staff) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        rows = list(
            await db.exec(select(Category).order_by(col(Category.kind), col(Category.sort), col(Category.id)))
        )
    return await render(request, "admin/categories.html", {"rows": rows, "kinds": KIND_LABEL})


@routes.post("/staff/admin/categories", name="admin_categories_post")
@require_staff(ADMIN)
async def category_post(request: web.Request, me: Staff) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    now = _now(request)
    op = str(form.get("op", "add"))
    async with transaction(request.app[keys.SESSIONS]) as db:
        if op == "toggle" and str(form.get("id", "")).isdigit():
            cat = await db.get(Category, int(str(form["id"])))
            if cat is None:
                raise web.HTTPNotFound()
            cat.active = not cat.active
            message = f"{cat.name}：{'启用' if cat.active else '停用'}"
        else:
            kind, name = str(form.get("kind", "")), str(form.get("name", "")).strip()[:32]
            exists = (
                await db.exec(select(Category).where(Category.kind == kind, Category.name == name))
            ).first()
            if kind not in KIND_LABEL or not name or exists:
                message = "类别名称为空、类型不对或已存在"
            else:
                sort = str(form.get("sort", "0"))
                db.add(Category(kind=kind, name=name, sort=int(sort) if sort.isdigit() else 0))
                message = f"已添加类别 {name}"
        await audit(db, staff=me, action=f"admin_category_{op}", now=now, detail=message, ip=request.remote)
    await flash(request, message)
    raise web.HTTPFound(request.app.router["admin_categories"].url_for())
