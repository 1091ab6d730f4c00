"""The WeChat official-account API endpoints the bot calls, simulated with WeChat's documented JSON and error
codes: access tokens, customer-service, template and subscribe messages, the menu, user info and web OAuth."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from wechat_sim import protocol
from wechat_sim.keys import (
    SIM_HTTP,
    SIM_JINJA,
    SIM_STATE,
    SIM_TASKS,
    endpoint,
    err,
    log,
    ok,
    state_of,
)
from wechat_sim.push import deliver
from wechat_sim.state import SimState

routes = web.RouteTableDef()


@routes.get("/cgi-bin/token", name="token")
@endpoint("token")
async def get_token(request: web.Request, state: SimState, _: dict[str, Any]) -> web.Response:
    q = request.query
    if q.get("grant_type") != "client_credential":
        return err(40002)
    if not q.get("appid"):
        return err(41002)
    if q.get("appid") != state.appid:
        return err(40013)
    if not q.get("secret"):
        return err(41004)
    if q.get("secret") != state.secret:
        return err(40125)
    tok = state.issue_token()
    return web.json_response({"access_token": tok.value, "expires_in": state.token_ttl})


@routes.post("/cgi-bin/stable_token", name="stable_token")
@endpoint("stable_token", fault="token", body=True)
async def stable_token(request: web.Request, state: SimState, body: dict[str, Any]) -> web.Response:
    if body.get("grant_type") != "client_credential":
        return err(40002)
    if body.get("appid") != state.appid:
        return err(40013)
    if body.get("secret") != state.secret:
        return err(40125)
    tok = state.stable_token(force_refresh=bool(body.get("force_refresh")))
    remaining = max(0, int(tok.expires_at - state.now()))
    return web.json_response({"access_token": tok.value, "expires_in": remaining})


def check_access(state: SimState, request: web.Request) -> web.Response | None:
    code = state.check_token(request.query.get("access_token"))
    return err(code) if code else None


@routes.post("/cgi-bin/message/custom/send", name="custom_send")
@endpoint("custom", access=True, body=True)
async def custom_send(request: web.Request, state: SimState, body: dict[str, Any]) -> web.Response:
    openid = body.get("touser")
    if not isinstance(openid, str) or not openid:
        return err(40003)
    msgtype = body.get("msgtype")
    content: str | None = None
    if msgtype == "text":
        text = body.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            return err(44004)
    elif msgtype not in ("news", "link", "image", "voice", "video", "miniprogrampage", "mpnews", "msgmenu"):
        return err(40008)
    user = state.user(openid)
    if not user.subscribed:
        return err(43004)
    if code := state.window_error(openid):
        return err(code)
    if state.enforce_window:
        user.quota_left -= 1
    state.record(
        state.new_sent(channel="custom", openid=openid, msgtype=str(msgtype), content=content, payload=body)
    )
    return ok()


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


async def _templated_send(
    request: web.Request, state: SimState, body: dict[str, Any], channel: str
) -> web.Response:
    openid = body.get("touser")
    if not isinstance(openid, str) or not openid:
        return err(40003)
    template_id = body.get("template_id")
    if not isinstance(template_id, str) or not template_id:
        return err(40037)
    if state.templates is not None and template_id not in state.templates:
        return err(40037)
    fields, problem = _template_fields(body.get("data"))
    if fields is None:
        return err(47003, problem)
    if state.templates is not None and set(fields) - set(state.templates[template_id]):
        unknown = sorted(set(fields) - set(state.templates[template_id]))
        return err(47003, f"data.{unknown[0]} is not in the template")
    if not state.user(openid).subscribed:
        return err(43004)
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
        spawn(request.app, _template_job_finished(request.app, openid, msgid))
    return ok(msgid=msgid) if channel == "template" else ok()


def spawn(app: web.Application, coro: Any) -> None:
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
@endpoint("template", access=True, body=True)
async def template_send(request: web.Request, state: SimState, body: dict[str, Any]) -> web.Response:
    return await _templated_send(request, state, body, "template")


@routes.post("/cgi-bin/message/subscribe/bizsend", name="subscribe_send")
@endpoint("subscribe", access=True, body=True)
async def subscribe_send(request: web.Request, state: SimState, body: dict[str, Any]) -> web.Response:
    return await _templated_send(request, state, body, "subscribe")


@routes.post("/cgi-bin/menu/create", name="menu_create")
@endpoint("menu", access=True, body=True)
async def menu_create(request: web.Request, state: SimState, body: dict[str, Any]) -> web.Response:
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return err(47001)
    state.menu = buttons
    return ok()


@routes.get("/cgi-bin/user/info", name="user_info")
@endpoint("userinfo", access=True)
async def user_info(request: web.Request, state: SimState, _: dict[str, Any]) -> web.Response:
    openid = request.query.get("openid", "")
    user = state.users.get(openid)
    if user is None:
        return err(40003)
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


@routes.get("/sns/oauth2/access_token", name="oauth_access_token")
@endpoint("oauth")
async def oauth_access_token(request: web.Request, state: SimState, _: dict[str, Any]) -> web.Response:
    q = request.query
    if q.get("grant_type") != "authorization_code":
        return err(40002)
    if q.get("appid") != state.appid:
        return err(40013)
    if q.get("secret") != state.secret:
        return err(40125)
    if not q.get("code"):
        return err(41008)
    code, entry = state.exchange_code(q["code"])
    if entry is None:
        return err(code)
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
    if params["appid"] != state_of(request).appid:
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
    state = state_of(request)
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
    code = state_of(request).new_oauth_code(openid, params["scope"])
    target = URL(params["redirect_uri"]).with_fragment(None)
    raise web.HTTPFound(str(target.update_query(code=code, state=params["state"])))
