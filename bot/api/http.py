"""``/api/v1/``: the open API's HTTP edge. Bearer keys, scopes, jurisdiction, a rate limit per key, an audit row
per call, and every error as ``application/problem+json`` (RFC 9457). The OpenAPI document is ``/api/openapi.json``
and the readable reference ``/api/docs`` (rendered here, no CDN)."""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from yarl import URL

from bot import keys
from bot.api import callbacks, service
from bot.api.clients import Caller, authenticate
from bot.api.service import CaseFilter, Invalid, NotFound
from bot.api.spec import openapi_document
from bot.cases.lifecycle import STATE_LABEL
from bot.cases.numbering import KIND_LABEL
from bot.conversation.ratelimit import RateLimiter
from bot.db import transaction
from bot.models import ApiSubscription, AuditLog

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
PER_MINUTE = web.AppKey("api_calls_per_minute", int)
MAX_BODY = 64 * 1024
PROBLEM = "application/problem+json"


class Problem(Exception):
    """An error answered as problem+json; raised by handlers, rendered by the middleware."""

    def __init__(self, status: int, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(status: int, title: str, detail: str = "", **extra: Any) -> web.Response:
    payload: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        payload["detail"] = detail
    payload.update(extra)
    return web.Response(
        status=status, text=json.dumps(payload, ensure_ascii=False), content_type=PROBLEM, charset="utf-8"
    )


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@web.middleware
async def problems(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as exc:
        resp = problem_response(exc.status, exc.title, exc.detail, **exc.extra)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="daguanjia"'
        if exc.status == 429:
            resp.headers["Retry-After"] = "60"
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        resp = problem_response(exc.status, _TITLES.get(exc.status, "Error"))
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("API error on %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error", "请稍后重试；问题已记录。")


def _now(request: web.Request) -> datetime:
    return request.config_dict[keys.CLOCK]()


async def _caller(request: web.Request, scope: str) -> Caller:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) > 200:
        raise Problem(401, "Unauthorized", "需要 Authorization: Bearer <key>")
    sessions = request.config_dict[keys.SESSIONS]
    async with transaction(sessions) as session:
        caller = await authenticate(session, key=header[7:].strip(), now=_now(request))
    if caller is None:
        raise Problem(401, "Unauthorized", "密钥无效或已吊销")
    made = request.config_dict[keys.LIMITERS]
    if "api" not in made:  # Redis is connected after the app is built, so the limiter is made on first use
        made["api"] = RateLimiter(limit=request.app[PER_MINUTE], redis=request.config_dict[keys.REDIS])
    limiter = made["api"]
    if not await limiter.allow(f"api:{caller.id}", now=_now(request).timestamp()):
        raise Problem(429, "Too Many Requests", "调用过于频繁，请稍后再试")
    if not caller.may(scope):
        raise Problem(403, "Forbidden", f"此密钥没有 {scope} 权限")
    request["api_caller"] = caller
    return caller


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise Problem(415, "Unsupported Media Type", "请求体应为 application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "Content Too Large", f"请求体最多 {MAX_BODY} 字节")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Problem(413, "Content Too Large", f"请求体最多 {MAX_BODY} 字节")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "Bad Request", "请求体不是合法的 JSON") from exc
    if not isinstance(body, dict):
        raise Problem(400, "Bad Request", "请求体应为 JSON 对象")
    return body


def _invalid(exc: Invalid) -> Problem:
    extra = {"errors": [{"field": exc.field, "detail": str(exc)}]} if exc.field else {}
    return Problem(422, "Unprocessable Content", str(exc), **extra)


async def _audit(request: web.Request, caller: Caller, status: int, case_id: int | None = None) -> None:
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        session.add(
            AuditLog(
                action="api_call",
                case_id=case_id,
                detail=f"{caller.name}: {request.method} {request.path[:120]} → {status}",
                ip=(request.remote or "")[:64] or None,
                at=_now(request),
            )
        )


def _json(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(data, ensure_ascii=False),
        content_type="application/json",
        charset="utf-8",
        headers=headers or None,
    )


# ------------------------------------------------------------------------------------------------- cases
@routes.post("/v1/cases", name="api_create_case")
async def create_case(request: web.Request) -> web.Response:
    caller = await _caller(request, "cases:write")
    body = await _body(request)
    sessions = request.config_dict[keys.SESSIONS]
    now = _now(request)
    try:
        async with transaction(sessions) as session:
            new = await service.parse_new_case(session, body, caller)
            case, created = await service.create(session, new, caller, now=now)
            data = service.case_json(case, caller, external_id=new.external_id)
            case_id = case.id
    except Invalid as exc:
        raise _invalid(exc) from exc
    except IntegrityError:  # the same external id created concurrently: answer with the winner
        async with transaction(sessions) as session:
            found = await service.existing_ref(session, caller, str(body.get("external_id")))
            if found is None:
                raise
            data, created, case_id = (
                service.case_json(found, caller, external_id=str(body["external_id"])),
                False,
                found.id,
            )
    await _audit(request, caller, 201 if created else 200, case_id)
    location = str(request.app.router["api_case"].url_for(case_no=data["case_no"]))
    return _json(data, 201 if created else 200, Location=location)


def _parse_filter(request: web.Request, caller: Caller) -> CaseFilter:
    q = request.query
    unknown = set(q) - {"status", "kind", "town", "updated_since", "cursor", "limit"}
    if unknown:
        raise Problem(400, "Bad Request", f"未知的查询参数：{', '.join(sorted(unknown))[:100]}")
    statuses = tuple(s for s in q.get("status", "").split(",") if s)
    if any(s not in STATE_LABEL for s in statuses):
        raise Problem(400, "Bad Request", "status 取值无效")
    kind = q.get("kind")
    if kind is not None and kind not in KIND_LABEL:
        raise Problem(400, "Bad Request", "kind 取值无效")
    town = q.get("town") or None
    if town is not None and len(town) > 16:
        raise Problem(400, "Bad Request", "town 取值无效")
    limit_raw = q.get("limit", "20")
    limit = int(limit_raw) if limit_raw.isascii() and limit_raw.isdigit() and len(limit_raw) <= 3 else 0
    if not 1 <= limit <= service.PAGE_MAX:
        raise Problem(400, "Bad Request", f"limit 应为 1–{service.PAGE_MAX}")
    since = None
    if (raw := q.get("updated_since")) is not None:
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00")) if len(raw) <= 40 else None
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise Problem(
                400, "Bad Request", "updated_since 应为带时区的 ISO 8601 时间，如 2026-12-01T00:00:00Z"
            )
    try:
        after = service.decode_cursor(q["cursor"]) if q.get("cursor") else 0
    except Invalid as exc:
        raise Problem(400, "Bad Request", str(exc)) from exc
    return CaseFilter(status=statuses, kind=kind, town=town, updated_since=since, after_id=after, limit=limit)


@routes.get("/v1/cases", name="api_cases")
async def list_cases(request: web.Request) -> web.Response:
    caller = await _caller(request, "cases:read")
    flt = _parse_filter(request, caller)
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        rows, cursor = await service.list_cases(session, caller, flt)
        items = [service.case_json(c, caller) for c in rows]
    await _audit(request, caller, 200)
    return _json({"items": items, "next_cursor": cursor})


async def _case_for(request: web.Request, caller: Caller, session: Any) -> Any:
    try:
        return await service.get(session, caller, request.match_info["case_no"])
    except NotFound as exc:
        raise Problem(404, "Not Found", "没有这个诉求编号") from exc


@routes.get("/v1/cases/{case_no}", name="api_case")
async def read_case(request: web.Request) -> web.Response:
    caller = await _caller(request, "cases:read")
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        case = await _case_for(request, caller, session)
        data = service.case_json(
            case, caller, external_id=await service.external_id_of(session, caller, case)
        )
    await _audit(request, caller, 200, case.id)
    return _json(data)


@routes.get("/v1/cases/{case_no}/timeline", name="api_timeline")
async def read_timeline(request: web.Request) -> web.Response:
    caller = await _caller(request, "cases:read")
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        case = await _case_for(request, caller, session)
        events = [service.event_json(e, caller) for e in await service.timeline(session, case)]
    await _audit(request, caller, 200, case.id)
    return _json({"case_no": case.case_no, "events": events})


@routes.post("/v1/cases/{case_no}/notes", name="api_notes")
async def add_note(request: web.Request) -> web.Response:
    caller = await _caller(request, "cases:write")
    body = await _body(request)
    try:
        async with transaction(request.config_dict[keys.SESSIONS]) as session:
            case = await _case_for(request, caller, session)
            event = await service.add_note(session, caller, case, body, now=_now(request))
            data = service.event_json(event, caller)
    except Invalid as exc:
        raise _invalid(exc) from exc
    await _audit(request, caller, 201, case.id)
    return _json(data, 201)


# ------------------------------------------------------------------------------------------- subscriptions
def _callback_url(raw: Any, production: bool) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 512:
        raise Invalid("url 必填，最多 512 字符", field="url")
    try:
        url = URL(raw)
    except (ValueError, TypeError) as exc:
        raise Invalid("url 无效", field="url") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise Invalid("url 应为 http(s) 地址", field="url")
    if production:
        if url.scheme != "https":
            raise Invalid("生产环境的回调地址必须是 https", field="url")
        try:
            ip = ipaddress.ip_address(url.host)
        except ValueError:
            ip = None
        if url.host == "localhost" or (
            ip is not None and (ip.is_private or ip.is_loopback or ip.is_link_local)
        ):
            raise Invalid("回调地址不能指向内网", field="url")
    return str(url)


@routes.post("/v1/subscriptions", name="api_subscribe")
async def subscribe(request: web.Request) -> web.Response:
    caller = await _caller(request, "webhooks")
    body = await _body(request)
    production = request.config_dict[keys.SETTINGS].environment == "production"
    try:
        url = _callback_url(body.get("url"), production)
    except Invalid as exc:
        raise _invalid(exc) from exc
    secret = secrets.token_urlsafe(32)
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        sub = await callbacks.subscribe(session, client_id=caller.id, url=url, secret=secret)
        data = {"id": sub.id, "url": sub.url, "secret": secret, "events": ["case.status_changed"]}
    await _audit(request, caller, 201)
    return _json(data, 201)


@routes.get("/v1/subscriptions", name="api_subscriptions")
async def list_subscriptions(request: web.Request) -> web.Response:
    caller = await _caller(request, "webhooks")
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        subs = (
            await session.exec(
                select(ApiSubscription)
                .where(ApiSubscription.client_id == caller.id, col(ApiSubscription.active))
                .order_by(col(ApiSubscription.id))
            )
        ).all()
        items = [{"id": s.id, "url": s.url, "events": ["case.status_changed"]} for s in subs]
    await _audit(request, caller, 200)
    return _json({"items": items})


@routes.delete("/v1/subscriptions/{sub_id}", name="api_unsubscribe")
async def unsubscribe(request: web.Request) -> web.Response:
    caller = await _caller(request, "webhooks")
    raw = request.match_info["sub_id"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise Problem(404, "Not Found", "没有这个订阅")
    async with transaction(request.config_dict[keys.SESSIONS]) as session:
        sub = await session.get(ApiSubscription, int(raw))
        if sub is None or sub.client_id != caller.id or not sub.active:
            raise Problem(404, "Not Found", "没有这个订阅")
        sub.active = False
    await _audit(request, caller, 204)
    return web.Response(status=204)


# ------------------------------------------------------------------------------------------------- docs
@routes.get("/openapi.json", name="api_openapi")
async def openapi(request: web.Request) -> web.Response:
    base = request.config_dict[keys.SETTINGS].base_url.rstrip("/")
    return _json(openapi_document(server=f"{base}/api"))


@routes.get("/docs", name="api_docs")
async def docs(request: web.Request) -> web.Response:
    """A readable reference rendered from the same document (no JavaScript, no CDN)."""
    spec = openapi_document(server="/api")
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{html.escape(spec['info']['title'])}</title>",
        "<style>body{font:16px/1.6 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;color:#1a1a1a}"
        "code,pre{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}pre{padding:.6rem;overflow:auto}"
        "h2{border-top:1px solid #d1d5db;padding-top:1rem}.m{font-weight:700;color:#1d4ed8}</style></head><body>",
        f"<main><h1>{html.escape(spec['info']['title'])} <small>v{html.escape(spec['info']['version'])}</small></h1>",
        f"<p>{html.escape(spec['info']['description'])}</p>",
        "<p>机器可读的描述：<a href='/api/openapi.json'>/api/openapi.json</a>（OpenAPI 3.1）</p>",
    ]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            parts.append(
                f"<h2><span class='m'>{method.upper()}</span> <code>/api{html.escape(path)}</code></h2>"
            )
            parts.append(f"<p>{html.escape(op.get('summary', ''))}</p>")
            if op.get("description"):
                parts.append(f"<p>{html.escape(op['description'])}</p>")
            sec = op.get("security")
            scopes = ", ".join(s for req in (sec or []) for s in req.get("bearer", []))
            parts.append(f"<p>权限：{html.escape(scopes) if sec else '无需密钥'}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append(
                    "<ul>"
                    + "".join(
                        f"<li><code>{html.escape(p['name'])}</code>（{html.escape(p['in'])}）"
                        f"{html.escape(p.get('description', ''))}</li>"
                        for p in params
                    )
                    + "</ul>"
                )
            codes = ", ".join(op.get("responses", {}))
            parts.append(f"<p>响应：{html.escape(codes)}</p>")
    parts.append("</main></body></html>")
    return web.Response(text="".join(parts), content_type="text/html", charset="utf-8")


def create_api_app(*, calls_per_minute: int) -> web.Application:
    app = web.Application(middlewares=[problems])
    app[PER_MINUTE] = calls_per_minute
    app.add_routes(routes)
    return app


__all__ = ["create_api_app", "problem_response"]
