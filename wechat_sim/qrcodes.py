"""Parametric QR codes, simulated: ``/cgi-bin/qrcode/create`` (temporary and permanent, numeric and string
scenes, WeChat's JSON and error codes), ``/cgi-bin/showqrcode?ticket=`` (the code as a PNG), and the test control
``POST /_sim/scan`` (``GET /_sim/qrcodes`` lists the codes, ``POST /_sim/qrcodes/expire`` ends a temporary one) — a user scans a code: WeChat pushes ``subscribe`` with EventKey ``qrscene_<scene>`` and the
Ticket when the user does not follow the account yet, ``SCAN`` with EventKey ``<scene>`` when they do. A scan of an
expired temporary code pushes nothing (WeChat tells the user on the phone): 410."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from wechat_sim import protocol
from wechat_sim.keys import SIM_HTTP, control_json, endpoint, err, state_of
from wechat_sim.phone import UNAVAILABLE
from wechat_sim.push import deliver
from wechat_sim.state import SimState

routes = web.RouteTableDef()
ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")
MAX_TEMPORARY = 2_592_000  # 30 days, WeChat's limit for temporary codes
DEFAULT_TEMPORARY = 60
EXPIRED = "该二维码已过期，请重新获取。"  # what WeChat shows the user who scans an expired temporary code


@dataclass(frozen=True, slots=True)
class QrCode:
    ticket: str
    url: str  # what the code encodes (WeChat: http://weixin.qq.com/q/…)
    scene: str
    expires_at: float | None  # None: permanent


SIM_QRCODES: web.AppKey[dict[str, QrCode]] = web.AppKey("sim_qrcodes", dict)


def _scene(action: str, info: Any) -> tuple[str | None, int]:
    """(scene, 0) or (None, errcode) for WeChat's ``action_info``."""
    scene = info.get("scene") if isinstance(info, dict) else None
    if not isinstance(scene, dict):
        return None, 40053
    if action.endswith("STR_SCENE"):
        value = scene.get("scene_str")
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            return None, 40053
        return value, 0
    number = scene.get("scene_id")
    limit = 100_000 if action == "QR_LIMIT_SCENE" else 2**32 - 1
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= limit:
        return None, 40053
    return str(number), 0


@routes.post("/cgi-bin/qrcode/create", name="qrcode_create")
@endpoint("qrcode", access=True, body=True)
async def qrcode_create(request: web.Request, state: SimState, body: dict[str, Any]) -> web.Response:
    action = body.get("action_name")
    if action not in ACTIONS:
        return err(40052)
    scene, code = _scene(str(action), body.get("action_info"))
    if scene is None:
        return err(code)
    codes = request.app[SIM_QRCODES]
    answer: dict[str, Any] = {}
    expires_at = None
    if not str(action).startswith("QR_LIMIT"):
        seconds = body.get("expire_seconds", DEFAULT_TEMPORARY)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            return err(40009)
        seconds = min(seconds, MAX_TEMPORARY)
        expires_at = state.now() + seconds
        answer["expire_seconds"] = seconds
    else:  # a permanent code for the same scene is the same code
        same = next((c for c in codes.values() if c.scene == scene and c.expires_at is None), None)
        if same is not None:
            return web.json_response({"ticket": same.ticket, "url": same.url})
    ticket = "gQ" + secrets.token_urlsafe(36)
    qr = QrCode(ticket, f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}", scene, expires_at)
    codes[ticket] = qr
    return web.json_response({"ticket": ticket, **answer, "url": qr.url})


def _find(request: web.Request, *, ticket: str = "", url: str = "") -> QrCode | None:
    state = state_of(request)
    codes = request.app[SIM_QRCODES]
    qr = codes.get(ticket) if ticket else next((c for c in codes.values() if url and c.url == url), None)
    if qr is None or (qr.expires_at is not None and qr.expires_at < state.now()):
        return None
    return qr


@routes.get("/cgi-bin/showqrcode", name="showqrcode")
async def showqrcode(request: web.Request) -> web.Response:
    """The image of a code by its ticket (WeChat: no access token needed; an unknown ticket is a 404)."""
    qr = _find(request, ticket=request.query.get("ticket", ""))
    if qr is None:
        raise web.HTTPNotFound(text="invalid ticket")
    import qrcode  # lazy: only this endpoint draws images

    buf = io.BytesIO()
    qrcode.make(qr.url).save(buf)
    return web.Response(body=buf.getvalue(), content_type="image/png")


@routes.post("/_sim/qrcodes/expire", name="sim_qrcodes_expire")
async def qrcode_expire(request: web.Request) -> web.Response:
    """A temporary code's time is up now (by ``ticket``); a permanent code never expires (409)."""
    body = await control_json(request)
    codes = request.app[SIM_QRCODES]
    qr = codes.get(str(body.get("ticket") or ""))
    if qr is None:
        raise web.HTTPNotFound(text="no such QR code")
    if qr.expires_at is None:
        raise web.HTTPConflict(text="a permanent QR code does not expire")
    codes[qr.ticket] = replace(qr, expires_at=state_of(request).now() - 1)
    return web.json_response({"ticket": qr.ticket, "expired": True})


@routes.get("/_sim/qrcodes", name="sim_qrcodes")
async def qrcode_list(request: web.Request) -> web.Response:
    """Every code created so far (to pick one to scan): ticket, url, scene, whether it is permanent."""
    codes = request.app[SIM_QRCODES].values()
    return web.json_response(
        [
            {"ticket": c.ticket, "url": c.url, "scene": c.scene, "permanent": c.expires_at is None}
            for c in codes
        ]
    )


@routes.post("/_sim/scan", name="sim_scan")
async def scan(request: web.Request) -> web.Response:
    """A user scans a code (by ``ticket``, or by ``url``: the content read from a printed poster). The event goes
    to the bot's webhook over HTTP like any other push; the phone shows the passive reply."""
    state = state_of(request)
    body = await control_json(request)
    openid = str(body.get("openid") or "").strip()
    if not openid:
        raise web.HTTPBadRequest(text="openid missing")
    ticket, url = str(body.get("ticket") or ""), str(body.get("url") or "")
    qr = _find(request, ticket=ticket, url=url)
    if qr is None:
        codes = request.app[SIM_QRCODES]
        stale = (
            codes.get(ticket) if ticket else next((c for c in codes.values() if url and c.url == url), None)
        )
        if stale is None:
            raise web.HTTPNotFound(text="no such QR code")
        # WeChat tells the user on the phone and pushes nothing to the account
        state.add_chat(openid, sender="system", kind="error", text=EXPIRED)
        return web.json_response({"expired": True, "reply": None, "error": None}, status=410)
    known = state.users.get(openid)  # a user the simulator has not seen yet does not follow the account
    follower = known is not None and known.subscribed and not body.get("new_user")
    event, key = ("SCAN", qr.scene) if follower else ("subscribe", f"qrscene_{qr.scene}")
    xml = protocol.event_message(
        to_user=state.account,
        from_user=openid,
        event=event,
        create_time=int(state.now()),
        key=key,
        ticket=qr.ticket,
    )
    state.set_subscribed(openid, True)
    state.interaction(openid)
    state.add_chat(openid, sender="user", kind="event", text="［扫描二维码］")
    outcome = await deliver(state, request.app[SIM_HTTP], xml, openid)
    if outcome["error"] and outcome["reply"] is None:
        state.add_chat(openid, sender="system", kind="error", text=UNAVAILABLE)
    elif outcome["reply"]:
        state.add_chat(openid, sender="bot", kind="passive", text=outcome["reply"])
    return web.json_response({**outcome, "event": event, "event_key": key})
