"""The registry of communities (村/社区): every staff member reads their town's list (city roles any town's);
admins add, rename and deactivate communities; staff of a town download its communities' QR posters (PNG/PDF,
audited). The QR code is created through WeChat's ``qrcode/create`` the first time a poster is asked for."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web
from sqlmodel import col, func, select

from bot import keys
from bot.cases.access import audit
from bot.cases.communities import (
    CommunityError,
    add_community,
    ensure_qr,
    list_town,
    rename_community,
    set_active,
)
from bot.cases.lifecycle import ALL_STAFF, CITY_ROLES
from bot.db import transaction
from bot.delivery.wechat_api import WeChatError
from bot.models import Case, Community, Staff
from bot.reporting.posters import FORMATS, PosterError, render_poster
from bot.web.auth import require_staff
from bot.web.params import ParamError, form_text, parse_int_id
from bot.web.views.common import csrf_form, flash_redirect
from bot.web.views.common import now_of as _now
from bot.web.views.staff import render
from reference.communities import KINDS
from reference.towns import TOWNS

routes = web.RouteTableDef()
ADMIN = ("admin",)
TOWN_NAMES = [t.name for t in TOWNS]


def _town_for(request: web.Request, me: Staff) -> str:
    """The town whose list is shown: one's own; city roles pick one (``?town=``, default the first town)."""
    if me.role not in CITY_ROLES:
        return me.town or ""
    wanted = request.query.get("town", "")[:16]
    return wanted if wanted in TOWN_NAMES else TOWN_NAMES[0]


@routes.get("/staff/communities", name="communities")
@require_staff(ALL_STAFF)
async def community_list(request: web.Request, me: Staff) -> web.Response:
    town = _town_for(request, me)
    async with request.app[keys.SESSIONS]() as db:
        rows = await list_town(db, town=town, active_only=False)
        counts = dict(
            (
                await db.exec(
                    select(Case.community_id, func.count())
                    .where(Case.town == town, col(Case.community_id).is_not(None))
                    .group_by(col(Case.community_id))
                )
            ).all()
        )
    return await render(
        request,
        "admin/communities.html",
        {"rows": rows, "town": town, "counts": counts, "kinds": KINDS, "towns": TOWN_NAMES},
    )


@routes.post("/staff/communities", name="communities_post")
@require_staff(ADMIN)
async def community_post(request: web.Request, me: Staff) -> web.Response:
    form = await csrf_form(request)
    now = _now(request)
    kind = "error"
    town = ""
    try:
        op = form_text(form, "op", max_len=16)
        async with transaction(request.app[keys.SESSIONS]) as db:
            if op == "add":
                town = form_text(form, "town", max_len=16, field="镇街")
                c = await add_community(
                    db,
                    town=town,
                    name=form_text(form, "name", max_len=40, field="名称"),
                    kind=form_text(form, "kind", max_len=4, field="类型"),
                    now=now,
                )
                message = f"已添加 {c.town}{c.name}"
            elif op in ("rename", "toggle"):
                found = await db.get(Community, parse_int_id(form.get("id"), field="村（社区）编号"))
                if found is None:
                    raise web.HTTPNotFound(text="没有这个村（社区）")
                c = found
                if op == "rename":
                    message = "已改名：" + await rename_community(
                        db,
                        community=c,
                        name=form_text(form, "name", max_len=40, field="名称"),
                        kind=form_text(form, "kind", max_len=4, field="类型"),
                        now=now,
                    )
                else:
                    await set_active(db, community=c, active=not c.active, now=now)
                    message = f"{c.town}{c.name}：{'启用' if c.active else '停用'}"
            else:
                raise CommunityError("未知的操作")
            town = c.town
            await audit(db, staff=me, action=f"community_{op}", now=now, detail=message, ip=request.remote)
            kind = "info"
    except (CommunityError, ParamError) as exc:
        message = str(exc)
    target = request.app.router["communities"].url_for()
    if town in TOWN_NAMES:
        target = target.with_query(town=town)
    await flash_redirect(request, target, message, kind)


@routes.get(r"/staff/communities/{community_id:\d+}/poster.{fmt:png|pdf}", name="community_poster")
@require_staff(ALL_STAFF)
async def poster(request: web.Request, me: Staff) -> web.Response:
    """The community's QR poster, for staff of its town (city roles: any town); another town's is a 404."""
    community_id = parse_int_id(request.match_info["community_id"], field="村（社区）编号")
    fmt = request.match_info["fmt"]
    now = _now(request)
    async with transaction(request.app[keys.SESSIONS]) as db:
        c = await db.get(Community, community_id)
        if c is None or not c.active or (me.role not in CITY_ROLES and c.town != me.town):
            raise web.HTTPNotFound(text="没有这个村（社区），或不属于您的镇街")
        try:
            content = await ensure_qr(db, community=c, wechat=request.app[keys.WECHAT], now=now)
        except (WeChatError, CommunityError) as exc:
            raise web.HTTPServiceUnavailable(text=f"暂时无法从微信取得二维码，请稍后再试（{exc}）") from exc
        town, name = c.town, c.name
        await audit(
            db, staff=me, action="community_poster", now=now, detail=f"{town}{name} {fmt}", ip=request.remote
        )
    try:
        made = await asyncio.to_thread(render_poster, town=town, community=name, qr_content=content, fmt=fmt)
    except PosterError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    filename = quote(f"{town}{name}-二维码海报.{fmt}")
    return web.Response(
        body=made.body,
        content_type=FORMATS[fmt],
        headers={
            "Content-Disposition": f"attachment; filename=\"poster.{fmt}\"; filename*=UTF-8''{filename}"
        },
    )
