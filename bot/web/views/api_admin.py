"""Admins manage the open API's callers: create a key (shown once), revoke it, and see and replay the callbacks
that could not be delivered (the dead-letter list)."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.api import callbacks
from bot.api.clients import SCOPES, ClientError, create_client, list_clients, revoke
from bot.cases.access import audit
from bot.db import transaction
from bot.models import Staff
from bot.web.auth import require_staff
from bot.web.params import ParamError, parse_int_id
from bot.web.views.common import client_ip, csrf_form, flash_redirect
from bot.web.views.common import now_of as _now
from bot.web.views.staff import render
from reference.towns import TOWNS

routes = web.RouteTableDef()
ADMIN = ("admin",)


async def _page(
    request: web.Request, *, new_key: str | None = None, error: str | None = None
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        clients = await list_clients(db)
        dead = await callbacks.dead_letters(db)
    return await render(
        request,
        "admin/api_keys.html",
        {
            "clients": clients,
            "dead": dead,
            "scopes": SCOPES,
            "towns": [t.name for t in TOWNS],
            "new_key": new_key,
            "error": error,
        },
        status=400 if error else 200,
    )


@routes.get("/staff/admin/api-keys", name="admin_api_keys")
@require_staff(ADMIN)
async def api_keys(request: web.Request, me: Staff) -> web.Response:
    return await _page(request)


@routes.post("/staff/admin/api-keys", name="admin_api_keys_post")
@require_staff(ADMIN)
async def api_keys_post(request: web.Request, me: Staff) -> web.Response:
    form = await csrf_form(request)
    op = form.get("op")
    now = _now(request)
    url = request.app.router["admin_api_keys"].url_for()
    try:
        if op == "create":
            scopes = [s for s in form.getall("scope", []) if isinstance(s, str)]
            town = str(form.get("town") or "") or None
            async with transaction(request.app[keys.SESSIONS]) as db:
                client, key = await create_client(
                    db, name=str(form.get("name", ""))[:80], scopes=scopes, town=town, now=now
                )
                await audit(
                    db,
                    staff=me,
                    action="api_key_create",
                    now=now,
                    ip=client_ip(request),
                    detail=f"{client.name}: {', '.join(client.scopes)}; {client.town or '全市'}",
                )
            return await _page(request, new_key=key)
        target = parse_int_id(form.get("id"))
        async with transaction(request.app[keys.SESSIONS]) as db:
            if op == "revoke":
                done = await revoke(db, client_id=target, now=now)
                await audit(
                    db, staff=me, action="api_key_revoke", now=now, ip=client_ip(request), detail=f"#{target}"
                )
                text = "已吊销密钥" if done else "这个密钥已经吊销"
            elif op == "replay":
                done = await callbacks.replay(db, callback_id=target, now=now)
                await audit(
                    db,
                    staff=me,
                    action="api_callback_replay",
                    now=now,
                    ip=client_ip(request),
                    detail=f"#{target}",
                )
                text = "已重新排队发送" if done else "这条回调不在死信列表中"
            else:
                raise ParamError("未知的操作")
    except ClientError as exc:
        return await _page(request, error=str(exc))
    except ParamError as exc:
        return await _page(request, error=exc.message)
    await flash_redirect(request, url, text)
