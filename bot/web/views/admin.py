"""Admins manage staff accounts, the categories staff choose from, and the deadline (SLA) policy table."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import keys
from bot.cases.access import (
    TOWN_NAMES,
    StaffError,
    audit,
    create_staff,
    revoke_sessions,
    set_password,
    worker_community,
)
from bot.cases.lifecycle import ALL_STAFF, CITY_ROLES, ROLE_LABEL, ROLES, STATE_LABEL
from bot.cases.numbering import KIND_LABEL
from bot.db import transaction
from bot.deadlines import sla
from bot.models import Case, Category, Resource, Staff
from bot.web.auth import require_staff
from bot.web.params import ParamError, form_text, optional_int, parse_int_id
from bot.web.views.common import csrf_form, flash, flash_redirect
from bot.web.views.common import now_of as _now
from bot.web.views.staff import render
from reference.towns import TOWNS

routes = web.RouteTableDef()
ADMIN = ("admin",)
_SHORT_TOWN = {t.short: t.name for t in TOWNS}
FIELD_LABEL = {
    "username": "用户名",
    "display_name": "姓名",
    "role": "角色",
    "town": "镇街",
    "community": "村（社区）",
}


# ------------------------------------------------------------------ account and category rules (no aiohttp)
async def change_role(
    session: AsyncSession,
    *,
    staff: Staff,
    role: str,
    town: str | None,
    community: str | None,
    community_id: int | None = None,
) -> str:
    """Give an account another role and jurisdiction (the same rules as creating one); returns a summary."""
    if role not in ROLES:
        raise StaffError("角色不正确")
    town = _SHORT_TOWN.get(town or "", town) or None
    community = (community or "").strip() or None
    if role in CITY_ROLES:
        town, community = town if town in TOWN_NAMES else None, None
    elif town not in TOWN_NAMES:
        raise StaffError("请选择正确的镇街")
    # a community worker's community comes from the town's list (bot/cases/communities.py), by id
    registry = await worker_community(
        session, role=role, town=town or "", community_id=community_id, name=community
    )
    community, new_id = (registry.name, registry.id) if registry else (None, None)
    before = f"{ROLE_LABEL.get(staff.role, staff.role)} {staff.town or '全市'}"
    changed = (staff.role, staff.town, staff.community_id) != (role, town, new_id)
    staff.role, staff.town, staff.community, staff.community_id = role, town, community, new_id
    await session.flush()
    if changed:  # new powers or another town: sessions opened under the old ones end now
        await revoke_sessions(session, staff=staff)
    after = f"{ROLE_LABEL[role]} {town or '全市'}{' ' + community if community else ''}"
    return f"{before} → {after}"


async def rename_category(session: AsyncSession, *, category: Category, name: str, now: datetime) -> int:
    """Rename a category everywhere its name is stored (cases, the resource pool); returns the cases changed."""
    name = name.strip()[:32]
    if not name:
        raise StaffError("类别名称不能为空")
    if name == category.name:
        return 0
    clash = await session.exec(
        select(Category.id).where(Category.kind == category.kind, Category.name == name)
    )
    if clash.first() is not None:
        raise StaffError(f"已有同名类别“{name}”")
    old = category.name
    category.name = name
    result = await session.exec(
        sa.update(Case)
        .where(col(Case.kind) == category.kind, col(Case.category) == old)
        .values(category=name)
    )
    changed = int(result.rowcount or 0)
    await session.exec(
        sa.update(Case)
        .where(col(Case.kind) == category.kind, col(Case.suggested_category) == old)
        .values(suggested_category=name)
    )
    if category.kind == "micro_wish":  # the pool offers micro-wish categories by name
        for resource in await session.exec(select(Resource)):
            if old in resource.categories:
                resource.categories = [name if c == old else c for c in resource.categories]
                resource.updated_at = now
                session.add(resource)
    await session.flush()
    return changed


@routes.get("/staff/admin/staff", name="admin_staff")
@require_staff(ADMIN)
async def staff_list(request: web.Request, me: Staff) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        rows = list(await db.exec(select(Staff).order_by(col(Staff.town), col(Staff.username))))
    return await render(request, "admin/staff.html", {"rows": rows, "error": None, "form": {}})


@routes.post("/staff/admin/staff", name="admin_staff_create")
@require_staff(ADMIN)
async def staff_create(request: web.Request, me: Staff) -> web.Response:
    form = await csrf_form(request)
    now = _now(request)
    limits = {"username": 64, "display_name": 64, "role": 32, "town": 16, "community": 64}
    values = {k: str(form.get(k, "")).strip()[:200] for k in limits}
    try:
        values = {k: form_text(form, k, max_len=n, field=FIELD_LABEL[k]) for k, n in limits.items()}
        async with transaction(request.app[keys.SESSIONS]) as db:
            staff = await create_staff(
                db,
                username=values["username"],
                password=str(form.get("password", "")),
                role=values["role"],
                town=values["town"] or None,
                community=values["community"] or None,
                community_id=optional_int(form.get("community_id"), field="村（社区）", lo=1),
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
    except (StaffError, ParamError) as exc:
        async with request.app[keys.SESSIONS]() as db:
            rows = list(await db.exec(select(Staff).order_by(col(Staff.town), col(Staff.username))))
        return await render(
            request, "admin/staff.html", {"rows": rows, "error": str(exc), "form": values}, status=400
        )
    await flash_redirect(request, request.app.router["admin_staff"].url_for(), f"已创建账号 {staff.username}")


@routes.post("/staff/admin/staff/{staff_id:\\d+}", name="admin_staff_update")
@require_staff(ADMIN)
async def staff_update(request: web.Request, me: Staff) -> web.Response:
    form = await csrf_form(request)
    now = _now(request)
    op = form_text(form, "op", max_len=16)
    staff_id = parse_int_id(request.match_info["staff_id"], field="账号编号")
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            staff = await db.get(Staff, staff_id)
            if staff is None:
                raise web.HTTPNotFound()
            if op == "toggle":
                if staff.id == me.id:
                    raise StaffError("不能停用自己的账号")
                staff.active = not staff.active
                detail = "启用" if staff.active else "停用"
                await revoke_sessions(db, staff=staff)
            elif op == "password":
                await set_password(db, staff=staff, password=str(form.get("password", "")))
                detail = "重置密码"
            elif op == "role":
                if staff.id == me.id:
                    raise StaffError("不能修改自己的角色")
                detail = await change_role(
                    db,
                    staff=staff,
                    role=form_text(form, "role", max_len=32, field="角色"),
                    town=form_text(form, "town", max_len=16, field="镇街") or None,
                    community=form_text(form, "community", max_len=64, field="村（社区）"),
                    community_id=optional_int(form.get("community_id"), field="村（社区）", lo=1),
                )
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
    except (StaffError, ParamError) as exc:
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
    form = await csrf_form(request)
    now = _now(request)
    op = form_text(form, "op", max_len=16) or "add"
    kind = "error"
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            cat = None
            if op in ("toggle", "rename"):
                cat = await db.get(Category, parse_int_id(form.get("id"), field="类别编号"))
                if cat is None:
                    raise web.HTTPNotFound()
            if op == "toggle" and cat is not None:
                cat.active = not cat.active
                message = f"{cat.name}：{'启用' if cat.active else '停用'}"
            elif op == "rename" and cat is not None:
                old = cat.name
                changed = await rename_category(
                    db, category=cat, name=form_text(form, "name", max_len=32, field="类别名称"), now=now
                )
                message = f"类别“{old}”已改名为“{cat.name}”（同步修改{changed}件诉求）"
            elif op == "add":
                kind_ = form_text(form, "kind", max_len=16, field="类型")
                name = form_text(form, "name", max_len=32, field="类别名称")
                exists = (
                    await db.exec(select(Category).where(Category.kind == kind_, Category.name == name))
                ).first()
                if kind_ not in KIND_LABEL or not name or exists:
                    raise StaffError("类别名称为空、类型不对或已存在")
                sort = optional_int(form.get("sort"), field="排序", hi=100_000) or 0
                db.add(Category(kind=kind_, name=name, sort=sort))
                message = f"已添加类别 {name}"
            else:
                raise StaffError("未知的操作")
            await audit(
                db, staff=me, action=f"admin_category_{op}", now=now, detail=message, ip=request.remote
            )
            kind = "info"
    except (StaffError, ParamError) as exc:
        message = str(exc)
    await flash_redirect(request, request.app.router["admin_categories"].url_for(), message, kind)


# ------------------------------------------------------------------ deadlines (the SLA policy table)
POLICY_KIND_LABEL = {"any": "两类通用", **{k: f"仅{v}" for k, v in KIND_LABEL.items()}}
#: what must be done before each stage's deadline
STAGE_DUTY = {
    **sla.STAGE_LABEL,
    "offer": "爱心资源答复是否接受",
    "survey": "居民完成满意度评价",
    "call": "工作人员打电话给居民（回访或回电）",
}


def stage_label(stage: str) -> str:
    """The stage as staff know it: the case states it covers (bot.cases.lifecycle.STATE_LABEL), or offer / survey."""
    if stage == "offer":
        return "爱心认领答复"
    if stage == "survey":
        return "满意度回访"
    states = [STATE_LABEL.get(s, s) for s, st in sla.STAGE_OF_STATUS.items() if st == stage]
    return " / ".join(states) or sla.STAGE_LABEL.get(stage, stage)


def _policy_row(policy: sla.Policy) -> dict[str, object]:
    default = next(
        (p for p in sla.DEFAULT_POLICIES if (p.kind, p.stage) == (policy.kind, policy.stage)), None
    )
    return {
        "key": f"{policy.kind}:{policy.stage}",
        "policy": policy,
        "stage_label": stage_label(policy.stage),
        "duty": STAGE_DUTY.get(policy.stage, policy.stage),
        "kind_label": POLICY_KIND_LABEL.get(policy.kind, policy.kind),
        "unit_label": sla.UNIT_LABEL.get(policy.unit, policy.unit),
        "default": default,
        "default_text": sla.describe_policy(default) if default else "",
        "changed": default is not None and default != policy,
        "override": default is None,
    }


def _policy_name(kind: str, stage: str) -> str:
    return f"{stage_label(stage)}（{STAGE_DUTY.get(stage, stage)}，{POLICY_KIND_LABEL.get(kind, kind)}）"


async def _deadlines_page(
    request: web.Request,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        policies = await sla.list_policies(db)
    return await render(
        request,
        "admin/deadlines.html",
        {
            "rows": [_policy_row(p) for p in policies],
            "errors": errors or {},
            "form": form or {},
            "units": sla.UNIT_LABEL,
            "max_amount": sla.MAX_AMOUNT,
            "max_lead": sla.MAX_REMIND_BEFORE_HOURS,
            "city_after": sla.CITY_AFTER_WORKING_DAYS,
            "override_kinds": {k: v for k, v in POLICY_KIND_LABEL.items() if k != "any"},
            "case_stages": {
                s: f"{stage_label(s)}（{STAGE_DUTY[s]}）" for s in sla.POLICY_STAGES if s in sla.CASE_STAGES
            },
        },
        status=status,
    )


@routes.get("/staff/admin/deadlines", name="admin_deadlines")
@require_staff(ALL_STAFF)
async def deadlines(request: web.Request, me: Staff) -> web.Response:
    """Every staff member may read the deadlines they work to; only admins get the forms."""
    return await _deadlines_page(request)


@routes.post("/staff/admin/deadlines", name="admin_deadlines_post")
@require_staff(ADMIN)
async def deadlines_post(request: web.Request, me: Staff) -> web.Response:
    form = await csrf_form(request)
    now = _now(request)
    back = request.app.router["admin_deadlines"].url_for()
    op = form_text(form, "op", max_len=16) or "save"
    values = {
        k: form_text(form, k, max_len=32) for k in ("kind", "stage", "amount", "unit", "remind_before_hours")
    }
    if op not in ("save", "delete", "restore"):
        raise web.HTTPBadRequest(text="未知的操作")
    changes: list[str] = []
    try:
        async with transaction(request.app[keys.SESSIONS]) as db:
            if op == "save":
                old, new = await sla.save_policy(
                    db,
                    kind=values["kind"],
                    stage=values["stage"],
                    amount=values["amount"],
                    unit=values["unit"],
                    remind_before_hours=values["remind_before_hours"],
                )
                if old != new:
                    changes.append(
                        f"{_policy_name(new.kind, new.stage)}：{sla.describe_policy(old)} → {sla.describe_policy(new)}"
                    )
            elif op == "delete":
                removed = await sla.delete_policy(db, kind=values["kind"], stage=values["stage"])
                if removed is None:
                    raise web.HTTPNotFound()
                changes.append(
                    f"{_policy_name(removed.kind, removed.stage)}：{sla.describe_policy(removed)} → 按两类通用的时限"
                )
            else:
                for old_p, new_p in await sla.restore_default_policies(db):
                    some = old_p or new_p
                    assert some is not None
                    changes.append(
                        f"{_policy_name(some.kind, some.stage)}：{sla.describe_policy(old_p)} → "
                        f"{sla.describe_policy(new_p) if new_p else '按两类通用的时限'}（恢复默认）"
                    )
            action = "admin_sla_restore" if op == "restore" else "admin_sla_policy"
            for detail in changes:
                await audit(db, staff=me, action=action, now=now, detail=detail, ip=request.remote)
    except sla.PolicyError as exc:
        if op == "save":  # the form comes back with its values and the reasons; nothing was stored
            return await _deadlines_page(request, errors=exc.errors, form=values, status=400)
        await flash_redirect(request, back, str(exc), "error")
    except sa.exc.IntegrityError:  # another admin added the same override at the same moment
        await flash_redirect(request, back, "另一位管理员刚刚修改了同一项时限，请查看后再改", "error")
    if not changes:
        summary = "没有改动" if op == "save" else "所有时限本来就是默认值，没有改动"
    elif len(changes) == 1:
        summary = changes[0]
    else:
        summary = f"已恢复默认，{len(changes)}项时限有改动"
    await flash_redirect(request, back, f"{summary}。新时限只对此后开始的阶段生效。" if changes else summary)
