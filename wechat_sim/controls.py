"""The simulator's test controls under ``/_sim/``: inject faults, read and clear what was sent, open the 48-hour
window, (un)subscribe a user, expire tokens, switch the configuration at run time."""

from __future__ import annotations

from aiohttp import web

from wechat_sim import protocol
from wechat_sim.keys import control_json, state_of
from wechat_sim.state import ENDPOINTS

routes = web.RouteTableDef()


@routes.get("/_sim/faults", name="faults_list")
async def faults_list(request: web.Request) -> web.Response:
    return web.json_response([f.to_json() for f in state_of(request).faults])


@routes.post("/_sim/faults", name="faults_add")
async def faults_add(request: web.Request) -> web.Response:
    body = await control_json(request)
    try:
        fault = state_of(request).add_fault(
            str(body.get("endpoint", "*")),
            int(body["errcode"]),
            times=body["times"] if "times" in body else 1,
            delay_ms=int(body.get("delay_ms", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"bad fault: {exc}; endpoints: {', '.join(ENDPOINTS)}") from exc
    return web.json_response(fault.to_json(), status=201)


@routes.delete("/_sim/faults", name="faults_clear")
async def faults_clear(request: web.Request) -> web.Response:
    state_of(request).clear_faults()
    return web.json_response({"ok": True})


@routes.get("/_sim/sent", name="sent_list")
async def sent_list(request: web.Request) -> web.Response:
    openid = request.query.get("openid") or None
    return web.json_response([m.to_json() for m in state_of(request).sent_to(openid)])


@routes.delete("/_sim/sent", name="sent_clear")
async def sent_clear(request: web.Request) -> web.Response:
    state_of(request).clear_sent()
    return web.json_response({"ok": True})


@routes.post("/_sim/interaction", name="interaction")
async def interaction(request: web.Request) -> web.Response:
    """A user interacted (sent a message, clicked the menu) outside the phone page: open the 48-hour window."""
    body = await control_json(request)
    user = state_of(request).interaction(str(body["openid"]))
    return web.json_response({"openid": user.openid, "quota_left": user.quota_left})


@routes.post("/_sim/subscription", name="subscription")
async def subscription(request: web.Request) -> web.Response:
    body = await control_json(request)
    user = state_of(request).set_subscribed(str(body["openid"]), bool(body.get("subscribed", True)))
    return web.json_response({"openid": user.openid, "subscribed": user.subscribed})


@routes.post("/_sim/tokens/expire", name="tokens_expire")
async def tokens_expire(request: web.Request) -> web.Response:
    state_of(request).expire_tokens()
    return web.json_response({"ok": True})


@routes.get("/_sim/calls", name="calls")
async def calls(request: web.Request) -> web.Response:
    return web.json_response(dict(state_of(request).calls))


@routes.post("/_sim/config", name="config")
async def config(request: web.Request) -> web.Response:
    """Switch ``enforce_window``, ``window_quota``, ``webhook_url``, ``mode`` at run time."""
    state = state_of(request)
    body = await control_json(request)
    if "enforce_window" in body:
        state.enforce_window = bool(body["enforce_window"])
    if "window_quota" in body:
        state.window_quota = int(body["window_quota"])
    if "webhook_url" in body:
        state.webhook_url = str(body["webhook_url"])
    if "mode" in body:
        if body["mode"] not in protocol.MODES or (body["mode"] != "plain" and not state.aes_key):
            raise web.HTTPBadRequest(text="mode must be plain, or compat/safe with an EncodingAESKey")
        state.mode = body["mode"]
    return web.json_response(
        {
            "enforce_window": state.enforce_window,
            "window_quota": state.window_quota,
            "webhook_url": state.webhook_url,
            "mode": state.mode,
        }
    )
