"""The WeChat simulator as an aiohttp app: WeChat's API endpoints the bot calls, fault injection, recording,
and the resident "phone" page that talks to the bot's webhook exactly as WeChat does.

    python -m bot simulator --port 8090 --webhook-url http://127.0.0.1:8080/wechat
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

from wechat_sim import protocol
from wechat_sim.client import read_reply
from wechat_sim.state import DEMO_OPENID, DEMO_USERS, ENDPOINTS, SentMessage, SimState, error

log = logging.getLogger(__name__)

SIM_STATE = web.AppKey("sim_state", SimState)
SIM_HTTP = web.AppKey("sim_http", aiohttp.ClientSession)
SIM_JINJA = web.AppKey("sim_jinja", jinja2.Environment)
SIM_TASKS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("sim_tasks")

UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
DEFAULT_MENU: list[dict[str, Any]] = [
    {"type": "click", "name": "我要求助", "key": "MENU_HELP"},
    {"type": "click", "name": "查询进度", "key": "MENU_PROGRESS"},
]
SAMPLE_IMAGES: tuple[tuple[str, str], ...] = (
    ("路灯坏了", "streetlight.svg"),
    ("路面坑洼", "pothole.svg"),
    ("轮椅", "wheelchair.svg"),
)

routes = web.RouteTableDef()


def _state(request: web.Request) -> SimState:
    return request.app[SIM_STATE]


def _ok(**extra: Any) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **extra})


def _err(errcode: int, detail: str | None = None) -> web.Response:
    # WeChat answers API errors with HTTP 200 and the errcode in the JSON body.
    return web.json_response(error(errcode, detail))


async def _fault(state: SimState, endpoint: str) -> web.Response | None:
    """Apply an injected fault: its delay, then its errcode (0 = slowness only)."""
    fault = state.take_fault(endpoint)
    if fault is None:
        return None
    if fault.delay_ms:
        await asyncio.sleep(fault.delay_ms / 1000)
    if fault.errcode:
        log.info("simulated fault on %s: errcode %s", endpoint, fault.errcode)
        return _err(fault.errcode)
    return None


async def _json_body(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    raw = await request.read()
    if not raw.strip():
        return None, _err(44002)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, _err(47001)
    if not isinstance(body, dict):
        return None, _err(47001)
    return body, None


# ============================================================================================ access tokens


@routes.get("/cgi-bin/token", name="token")
async def get_token(request: web.Request) -> web.Response:
    state = _state(request)
    state.calls["token"] += 1
    if (resp := await _fault(state, "token")) is not None:
        return resp
    q = request.query
    if q.get("grant_type") != "client_credential":
        return _err(40002)
    if not q.get("appid"):
        return _err(41002)
    if q.get("appid") != state.appid:
        return _err(40013)
    if not q.get("secret"):
        return _err(41004)
    if q.get("secret") != state.secret:
        return _err(40125)
    tok = state.issue_token()
    return web.json_response({"access_token": tok.value, "expires_in": state.token_ttl})


@routes.post("/cgi-bin/stable_token", name="stable_token")
async def stable_token(request: web.Request) -> web.Response:
    state = _state(request)
    state.calls["stable_token"] += 1
    if (resp := await _fault(state, "token")) is not None:
        return resp
    body, bad = await _json_body(request)
    if bad is not None or body is None:
        return bad or _err(47001)
    if body.get("grant_type") != "client_credential":
        return _err(40002)
    if body.get("appid") != state.appid:
        return _err(40013)
    if body.get("secret") != state.secret:
        return _err(40125)
    tok = state.stable_token(force_refresh=bool(body.get("force_refresh")))
    remaining = max(0, int(tok.expires_at - state.now()))
    return web.json_response({"access_token": tok.value, "expires_in": remaining})


# ============================================================================================ messages


def _check_access(state: SimState, request: web.Request) -> web.Response | None:
    code = state.check_token(request.query.get("access_token"))
    return _err(code) if code else None


@routes.post("/cgi-bin/message/custom/send", name="custom_send")
async def custom_send(request: web.Request) -> web.Response:
    state = _state(request)
    state.calls["custom"] += 1
    if (resp := await _fault(state, "custom")) is not None:
        return resp
    if (resp := _check_access(state, request)) is not None:
        return resp
    body, bad = await _json_body(request)
    if bad is not None or body is None:
        return bad or _err(47001)
    openid = body.get("touser")
    if not isinstance(openid, str) or not openid:
        return _err(40003)
    msgtype = body.get("msgtype")
    content: str | None = None
    if msgtype == "text":
        text = body.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            return _err(44004)
    elif msgtype not in ("news", "link", "image", "voice", "video", "miniprogrampage", "mpnews", "msgmenu"):
        return _err(40008)
    user = state.user(openid)
    if not user.subscribed:
        return _err(43004)
    if code := state.window_error(openid):
        return _err(code)
    if state.enforce_window:
        user.quota_left -= 1
    state.record(
        state.new_sent(channel="custom", openid=openid, msgtype=str(msgtype), content=content, payload=body)
    )
    return _ok()


def _template_fields(data: Any) -> tuple[dict[str, str] | None, str | None]:
    """Template/subscribe ``data`` checked against WeChat's rules since May 2023: each value at most 20
    characters, no newline, no ``first``/``remark``. Returns (key -> value, None) or (None, what is wrong)."""
    if not isinstance(data, dict) or not data:
        return None, "data is empty"
    out: dict[str, str] = {}
    for key, item in data.items():
        if key in ("first", "remark"):
            return None, f"data.{key} is no longer supported"
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str):
            return None, f"data.{key}.value is missing"
        if not value.strip():
            return None, f"data.{key}.value is empty"
        if "\n" in value or "\r" in value:
            return None, f"data.{key}.value contains a newline"
        if len(value) > 20:
            return None, f"data.{key}.value exceeds 20 characters"
        out[key] = value
    return out, None


async def _templated_send(request: web.Request, channel: str) -> web.Response:
    state = _state(request)
    state.calls[channel] += 1
    if (resp := await _fault(state, channel)) is not None:
        return resp
    if (resp := _check_access(state, request)) is not None:
        return resp
    body, bad = await _json_body(request)
    if bad is not None or body is None:
        return bad or _err(47001)
    openid = body.get("touser")
    if not isinstance(openid, str) or not openid:
        return _err(40003)
    template_id = body.get("template_id")
    if not isinstance(template_id, str) or not template_id:
        return _err(40037)
    if state.templates is not None and template_id not in state.templates:
        return _err(40037)
    fields, problem = _template_fields(body.get("data"))
    if fields is None:
        return _err(47003, problem)
    if state.templates is not None and set(fields) - set(state.templates[template_id]):
        unknown = sorted(set(fields) - set(state.templates[template_id]))
        return _err(47003, f"data.{unknown[0]} is not in the template")
    if not state.user(openid).subscribed:
        return _err(43004)
    url = body.get("url") if channel == "template" else body.get("page")
    msgid = state.next_msgid()
    state.record(
        state.new_sent(
            channel=channel,
            openid=openid,
            msgtype=channel,
            template_id=template_id,
            data=fields,
            url=url if isinstance(url, str) else None,
            msgid=msgid,
            payload=body,
        )
    )
    if channel == "template" and state.template_job_events:
        _spawn(request.app, _template_job_finished(request.app, openid, msgid))
    return _ok(msgid=msgid) if channel == "template" else _ok()


def _spawn(app: web.Application, coro: Any) -> None:
    """A background delivery, kept referenced and awaited at shutdown."""
    task = asyncio.create_task(coro)
    app[SIM_TASKS].add(task)
    task.add_done_callback(app[SIM_TASKS].discard)


async def _template_job_finished(app: web.Application, openid: str, msgid: int) -> None:
    """WeChat pushes TEMPLATESENDJOBFINISH to the webhook once a template message is delivered."""
    state = app[SIM_STATE]
    await asyncio.sleep(0.05)
    xml = protocol.event_message(
        to_user=state.account,
        from_user=openid,
        event="TEMPLATESENDJOBFINISH",
        create_time=int(state.now()),
        msg_id=msgid,
        status="success",
    )
    try:
        await deliver(state, app[SIM_HTTP], xml, openid)
    except Exception:  # a background push must never crash the simulator
        log.exception("TEMPLATESENDJOBFINISH push failed")


@routes.post("/cgi-bin/message/template/send", name="template_send")
async def template_send(request: web.Request) -> web.Response:
    return await _templated_send(request, "template")


@routes.post("/cgi-bin/message/subscribe/bizsend", name="subscribe_send")
async def subscribe_send(request: web.Request) -> web.Response:
    return await _templated_send(request, "subscribe")


@routes.post("/cgi-bin/menu/create", name="menu_create")
async def menu_create(request: web.Request) -> web.Response:
    state = _state(request)
    state.calls["menu"] += 1
    if (resp := await _fault(state, "menu")) is not None:
        return resp
    if (resp := _check_access(state, request)) is not None:
        return resp
    body, bad = await _json_body(request)
    if bad is not None or body is None:
        return bad or _err(47001)
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return _err(47001)
    state.menu = buttons
    return _ok()


@routes.get("/cgi-bin/user/info", name="user_info")
async def user_info(request: web.Request) -> web.Response:
    state = _state(request)
    state.calls["userinfo"] += 1
    if (resp := await _fault(state, "userinfo")) is not None:
        return resp
    if (resp := _check_access(state, request)) is not None:
        return resp
    openid = request.query.get("openid", "")
    user = state.users.get(openid)
    if user is None:
        return _err(40003)
    if not user.subscribed:
        return web.json_response({"subscribe": 0, "openid": openid})
    return web.json_response(
        {
            "subscribe": 1,
            "openid": openid,
            "language": "zh_CN",
            "subscribe_time": int(user.subscribe_time),
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": "ADD_SCENE_SEARCH",
            "qr_scene": 0,
            "qr_scene_str": "",
        }
    )


# ============================================================================================ OAuth


@routes.get("/sns/oauth2/access_token", name="oauth_access_token")
async def oauth_access_token(request: web.Request) -> web.Response:
    state = _state(request)
    state.calls["oauth"] += 1
    if (resp := await _fault(state, "oauth")) is not None:
        return resp
    q = request.query
    if q.get("grant_type") != "authorization_code":
        return _err(40002)
    if q.get("appid") != state.appid:
        return _err(40013)
    if q.get("secret") != state.secret:
        return _err(40125)
    if not q.get("code"):
        return _err(41008)
    code, entry = state.exchange_code(q["code"])
    if entry is None:
        return _err(code)
    return web.json_response(
        {
            "access_token": f"sns-{entry.openid}-{int(state.now())}",
            "expires_in": 7200,
            "refresh_token": f"snsr-{entry.openid}",
            "openid": entry.openid,
            "scope": entry.scope,
            "is_snapshotuser": 0,
        }
    )


def _oauth_params(request: web.Request) -> tuple[dict[str, str], str | None]:
    q = request.query
    params = {k: q.get(k, "") for k in ("appid", "redirect_uri", "response_type", "scope", "state")}
    if params["appid"] != _state(request).appid:
        return params, "appid 参数错误"
    if params["response_type"] != "code":
        return params, "response_type 参数错误"
    if params["scope"] not in ("snsapi_base", "snsapi_userinfo"):
        return params, "scope 参数错误"
    target = URL(params["redirect_uri"])
    if not target.is_absolute() or target.scheme not in ("http", "https"):
        return params, "redirect_uri 参数错误"
    return params, None


@routes.get("/connect/oauth2/authorize", name="oauth_authorize")
async def oauth_authorize(request: web.Request) -> web.Response:
    """WeChat's web authorisation, simulated: pick (or type) the openid to sign in as."""
    params, problem = _oauth_params(request)
    if problem:
        return aiohttp_jinja2.render_template(
            "oauth.html",
            request,
            {"problem": problem, "params": params, "users": []},
            status=400,
            app_key=SIM_JINJA,
        )
    state = _state(request)
    if auto := request.query.get("sim_openid", "").strip():  # scripted sign-in (browser tests, demos)
        code = state.new_oauth_code(auto, params["scope"])
        target = URL(params["redirect_uri"]).with_fragment(None)
        raise web.HTTPFound(str(target.update_query(code=code, state=params["state"])))
    users = [(u.openid, u.nickname or u.openid) for u in state.users.values()]
    return aiohttp_jinja2.render_template(
        "oauth.html", request, {"problem": None, "params": params, "users": users}, app_key=SIM_JINJA
    )


@routes.get("/connect/oauth2/authorize/confirm", name="oauth_confirm")
async def oauth_confirm(request: web.Request) -> web.Response:
    params, problem = _oauth_params(request)
    openid = next((v.strip() for v in request.query.getall("openid", []) if v.strip()), "")
    if problem or not openid:
        raise web.HTTPBadRequest(text=problem or "openid missing")
    code = _state(request).new_oauth_code(openid, params["scope"])
    target = URL(params["redirect_uri"]).with_fragment(None)
    raise web.HTTPFound(str(target.update_query(code=code, state=params["state"])))


# ============================================================================================ test controls


@routes.get("/_sim/faults", name="faults_list")
async def faults_list(request: web.Request) -> web.Response:
    return web.json_response([f.to_json() for f in _state(request).faults])


@routes.post("/_sim/faults", name="faults_add")
async def faults_add(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        fault = _state(request).add_fault(
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
    _state(request).clear_faults()
    return web.json_response({"ok": True})


@routes.get("/_sim/sent", name="sent_list")
async def sent_list(request: web.Request) -> web.Response:
    openid = request.query.get("openid") or None
    return web.json_response([m.to_json() for m in _state(request).sent_to(openid)])


@routes.delete("/_sim/sent", name="sent_clear")
async def sent_clear(request: web.Request) -> web.Response:
    _state(request).clear_sent()
    return web.json_response({"ok": True})


@routes.post("/_sim/interaction", name="interaction")
async def interaction(request: web.Request) -> web.Response:
    """A user interacted (sent a message, clicked the menu) outside the phone page: open the 48-hour window."""
    body = await request.json()
    user = _state(request).interaction(str(body["openid"]))
    return web.json_response({"openid": user.openid, "quota_left": user.quota_left})


@routes.post("/_sim/subscription", name="subscription")
async def subscription(request: web.Request) -> web.Response:
    body = await request.json()
    user = _state(request).set_subscribed(str(body["openid"]), bool(body.get("subscribed", True)))
    return web.json_response({"openid": user.openid, "subscribed": user.subscribed})


@routes.post("/_sim/tokens/expire", name="tokens_expire")
async def tokens_expire(request: web.Request) -> web.Response:
    _state(request).expire_tokens()
    return web.json_response({"ok": True})


@routes.get("/_sim/calls", name="calls")
async def calls(request: web.Request) -> web.Response:
    return web.json_response(dict(_state(request).calls))


@routes.post("/_sim/config", name="config")
async def config(request: web.Request) -> web.Response:
    """Switch ``enforce_window``, ``window_quota``, ``webhook_url``, ``mode`` at run time."""
    state = _state(request)
    body = await request.json()
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


# ============================================================================================ the phone


def _town_choices() -> list[tuple[str, float, float]]:
    try:
        from reference.towns import TOWNS
    except ImportError:  # the simulator also runs without the bot package
        return [("厚街镇", 22.94, 113.67), ("虎门镇", 22.82, 113.67), ("莞城街道", 23.043, 113.752)]
    return [(t.name, t.lat, t.lon) for t in TOWNS]


@routes.get("/", name="index")
async def index(request: web.Request) -> web.Response:
    state = _state(request)
    return aiohttp_jinja2.render_template(
        "index.html",
        request,
        {
            "state": state,
            "users": list(state.users.values()),
            "recent": list(reversed(state.sent[-50:])),
            "faults": state.faults,
        },
        app_key=SIM_JINJA,
    )


@routes.get("/phone", name="phone")
async def phone(request: web.Request) -> web.Response:
    state = _state(request)
    openid = request.query.get("openid", "").strip() or DEMO_OPENID
    user = state.user(openid)
    return aiohttp_jinja2.render_template(
        "phone.html",
        request,
        {
            "openid": openid,
            "nickname": user.nickname or "微信用户",
            "subscribed": user.subscribed,
            "menu": state.menu or DEFAULT_MENU,
            "towns": _town_choices(),
            "images": SAMPLE_IMAGES,
            "mode": state.mode,
            "users": DEMO_USERS,
        },
        app_key=SIM_JINJA,
    )


@routes.get("/_sim/inbox", name="inbox")
async def inbox(request: web.Request) -> web.Response:
    openid = request.query.get("openid", "") or DEMO_OPENID
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        after = 0
    entries = [e.to_json() for e in _state(request).chat_after(openid, after)]
    return web.json_response({"entries": entries, "last": entries[-1]["id"] if entries else after})


def _user_message(state: SimState, request: web.Request, body: dict[str, Any], openid: str, msg_id: int):
    """(xml, what the chat shows) for a message the phone sends."""
    common: dict[str, Any] = {"to_user": state.account, "from_user": openid, "create_time": int(state.now())}
    kind = str(body.get("type", "text"))
    if kind == "text":
        content = str(body.get("content", ""))
        return kind, protocol.text_message(**common, content=content, msg_id=msg_id), content
    if kind == "voice":
        rec = str(body.get("recognition", ""))
        return kind, protocol.voice_message(**common, recognition=rec, msg_id=msg_id), f"🎤 语音：{rec}"
    if kind == "location":
        lat, lon = float(body["lat"]), float(body["lon"])
        label = str(body.get("label") or "")
        xml = protocol.location_message(**common, lat=lat, lon=lon, label=label, msg_id=msg_id)
        return kind, xml, f"📍 位置：{label or f'{lat},{lon}'}"
    if kind == "image":
        pic = str(body.get("pic_url", ""))
        if pic and not URL(pic).is_absolute():
            pic = str(request.url.origin().join(URL(pic)))
        return kind, protocol.image_message(**common, pic_url=pic, msg_id=msg_id), "🖼 [图片]"
    if kind == "link":
        xml = protocol.link_message(
            **common,
            title=str(body.get("title", "")),
            description=str(body.get("description", "")),
            url=str(body.get("url", "")),
            msg_id=msg_id,
        )
        return kind, xml, f"🔗 {body.get('title', '')}"
    if kind == "video":
        return kind, protocol.video_message(**common, msg_id=msg_id), "🎬 [视频]"
    if kind == "event":
        event = str(body.get("event", ""))
        if event not in protocol.EVENTS:
            raise web.HTTPBadRequest(text=f"unknown event {event!r}")
        key = body.get("key")
        extra: dict[str, Any] = {}
        if event == "LOCATION":
            extra = {"lat": float(body.get("lat", 0)), "lon": float(body.get("lon", 0))}
        xml = protocol.event_message(**common, event=event, key=key if key is None else str(key), **extra)
        shown = {
            "subscribe": "［关注了公众号］",
            "unsubscribe": "［取消关注］",
            "CLICK": f"［点击菜单 {body.get('label') or key}］",
            "VIEW": f"［打开菜单链接 {key}］",
        }.get(event, f"［事件 {event}］")
        return kind, xml, shown
    raise web.HTTPBadRequest(text=f"unknown message type {kind!r}")


async def deliver(state: SimState, session: aiohttp.ClientSession, xml: str, openid: str) -> dict[str, Any]:
    """POST one message to the webhook like WeChat: signed (and encrypted) in the configured mode, 5 s per try,
    up to 3 tries on timeout or connection failure, the same request each time. Returns what the phone shows."""
    params, body = protocol.build_request(
        xml,
        mode=state.mode,
        token=state.token,
        timestamp=int(state.now()),
        nonce=protocol.new_nonce(),
        openid=openid,
        appid=state.appid,
        aes_key=state.aes_key,
    )
    timeout = aiohttp.ClientTimeout(total=state.reply_timeout)
    outcome: dict[str, Any] = {"tries": 0, "status": None, "reply": None, "msg_type": None, "error": None}
    for attempt in range(1, state.reply_tries + 1):
        outcome["tries"] = attempt
        started = time.monotonic()
        try:
            async with session.post(
                state.webhook_url,
                params=params,
                data=body,
                headers={"Content-Type": "text/xml"},
                timeout=timeout,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome["error"] = "timeout" if isinstance(exc, TimeoutError) else f"connection: {exc}"
            log.info("webhook try %s failed: %s", attempt, outcome["error"])
            continue
        state.webhook_log.append(
            {"openid": openid, "status": status, "ms": round((time.monotonic() - started) * 1000, 1)}
        )
        reply = read_reply(status, raw, token=state.token, appid=state.appid, aes_key=state.aes_key)
        outcome |= {"status": status, "reply": reply.text, "msg_type": reply.msg_type, "error": reply.error}
        if status != 200:
            outcome["error"] = f"HTTP {status}"
        return outcome
    return outcome


@routes.post("/_sim/send", name="sim_send")
async def sim_send(request: web.Request) -> web.Response:
    """The phone sends a message: the server builds WeChat's XML and delivers it to the bot's webhook."""
    state = _state(request)
    body = await request.json()
    openid = str(body.get("openid") or DEMO_OPENID)
    is_event = body.get("type") == "event"
    msg_id = state.next_msgid()
    try:
        kind, xml, shown = _user_message(state, request, body, openid, msg_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"bad message: {exc}") from exc
    if is_event and body.get("event") in ("subscribe", "unsubscribe"):
        state.set_subscribed(openid, body["event"] == "subscribe")
    if not (is_event and body.get("event") == "unsubscribe"):
        state.interaction(openid)
    state.add_chat(openid, sender="user", kind=kind, text=shown)
    outcome = await deliver(state, request.app[SIM_HTTP], xml, openid)
    if outcome["error"] and outcome["reply"] is None:
        state.add_chat(openid, sender="system", kind="error", text=UNAVAILABLE)
    elif outcome["reply"]:
        state.add_chat(openid, sender="bot", kind="passive", text=outcome["reply"])
    outcome["msg_id"] = None if is_event else msg_id
    return web.json_response(outcome)


# ============================================================================================ assembly


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession()
    app[SIM_HTTP] = session
    app[SIM_TASKS] = set()
    yield
    pending = app[SIM_TASKS]
    tasks = list(pending)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


def create_sim_app(
    *,
    token: str,
    appid: str,
    aes_key: str | None,
    mode: str,
    webhook_url: str,
    secret: str,
    enforce_window: bool = False,
    reply_timeout: float = 5.0,
    clock: Callable[[], float] = time.time,
    templates: dict[str, tuple[str, ...]] | None = None,
    template_job_events: bool = False,
) -> web.Application:
    """The simulator app; its ``SimState`` is ``app[SIM_STATE]``."""
    if mode not in protocol.MODES:
        raise ValueError(f"mode must be one of {protocol.MODES}")
    if mode != "plain":
        if not aes_key:
            raise ValueError(f"mode {mode!r} needs an EncodingAESKey")
        protocol.aes_key_bytes(aes_key)
    app = web.Application()
    app[SIM_STATE] = SimState(
        token=token,
        appid=appid,
        secret=secret,
        aes_key=aes_key or None,
        mode=mode,
        webhook_url=webhook_url,
        enforce_window=enforce_window,
        reply_timeout=reply_timeout,
        templates=templates,
        template_job_events=template_job_events,
        clock=clock,
    )
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("wechat_sim", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        app_key=SIM_JINJA,
    )
    app.cleanup_ctx.append(_http_session)
    app.add_routes(routes)
    app.router.add_static("/static/", os.path.join(os.path.dirname(__file__), "static"), name="static")
    return app


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings: they carry the AppSecret, access tokens and OAuth codes."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bot simulator", description="WeChat simulator")
    parser.add_argument("--host", default=env("SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SIMULATOR_PORT", "8090")))
    parser.add_argument("--webhook-url", default=env("SIMULATOR_WEBHOOK_URL", "http://127.0.0.1:8080/wechat"))
    parser.add_argument("--token", default=env("WECHAT_TOKEN", "daguanjia-dev-token"))
    parser.add_argument("--appid", default=env("WECHAT_APPID", "wx00000000simulator"))
    parser.add_argument("--secret", default=env("WECHAT_SECRET", "simulator-secret"))
    parser.add_argument("--aes-key", default=env("WECHAT_ENCODING_AES_KEY", ""))
    parser.add_argument(
        "--mode", choices=protocol.MODES, default=None, help="default: safe with a key, else plain"
    )
    parser.add_argument("--enforce-window", action="store_true", help="enforce the 48-hour window and quota")
    args = parser.parse_args(argv)
    mode = args.mode or ("safe" if args.aes_key else "plain")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_sim_app(
        token=args.token,
        appid=args.appid,
        aes_key=args.aes_key or None,
        mode=mode,
        webhook_url=args.webhook_url,
        secret=args.secret,
        enforce_window=args.enforce_window,
    )
    print(f"WeChat simulator on http://{args.host}:{args.port}/  phone: http://{args.host}:{args.port}/phone")
    print(f"  webhook {args.webhook_url} ({mode} mode)")
    web.run_app(app, host=args.host, port=args.port, print=None, access_log_class=PathOnlyAccessLogger)


__all__ = ["SIM_STATE", "SentMessage", "SimState", "create_sim_app", "deliver", "main"]


if __name__ == "__main__":
    main()
