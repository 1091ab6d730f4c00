"""CSRF tokens for every form (synchroniser token kept in the session) and security headers."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup, escape

CSRF_FIELD = "csrf_token"


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(24)
        session[CSRF_FIELD] = token
    return str(token)


async def check_csrf(request: web.Request, form: Mapping[str, Any]) -> None:
    """Raises 403 when the form's token is missing or wrong; nothing is changed."""
    session = await get_session(request)
    expected = session.get(CSRF_FIELD)
    given = form.get(CSRF_FIELD)
    if (
        not expected
        or not isinstance(given, str)
        or not hmac.compare_digest(str(expected).encode(), given.encode("utf-8", "replace"))
    ):
        raise web.HTTPForbidden(text="页面已过期或请求来源不明，请返回刷新后再试。")


async def csrf_context(request: web.Request) -> dict[str, Any]:
    """aiohttp_jinja2 context processor: `{{ csrf_field() }}` in every form."""
    token = await csrf_token(request)

    def csrf_field() -> Markup:
        return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')

    return {"csrf_field": csrf_field, "csrf_value": token}


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Cache-Control", "no-store")
    return response
