"""The resident's "phone": the chat page, its inbox, and sending a message to the bot's webhook."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from wechat_sim import protocol
from wechat_sim.keys import SIM_HTTP, SIM_JINJA, control_json, state_of
from wechat_sim.media import sample_media
from wechat_sim.push import deliver
from wechat_sim.state import DEMO_OPENID, DEMO_USERS, SimState

routes = web.RouteTableDef()

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


def _town_choices() -> list[tuple[str, float, float]]:
    try:
        # lazy: the simulator also runs without the bot's reference package
        from reference.towns import TOWNS
    except ImportError:  # the simulator also runs without the bot package
        return [("厚街镇", 22.94, 113.67), ("虎门镇", 22.82, 113.67), ("莞城街道", 23.043, 113.752)]
    return [(t.name, t.lat, t.lon) for t in TOWNS]


@routes.get("/", name="index")
async def index(request: web.Request) -> web.Response:
    state = state_of(request)
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
    state = state_of(request)
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
    entries = [e.to_json() for e in state_of(request).chat_after(openid, after)]
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
        media_id = f"sim-image-{msg_id}"
        sample_media(state, pic, media_id)  # WeChat keeps the picture for media/get (three days)
        xml = protocol.image_message(**common, pic_url=pic, msg_id=msg_id, media_id=media_id)
        return kind, xml, "🖼 [图片]"
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


@routes.post("/_sim/send", name="sim_send")
async def sim_send(request: web.Request) -> web.Response:
    """The phone sends a message: the server builds WeChat's XML and delivers it to the bot's webhook."""
    state = state_of(request)
    body = await control_json(request)
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
