"""CSRF tokens for every form (synchroniser token kept in the session), security headers (CSP, HSTS when
cookies are Secure), the client's address behind trusted proxies, and the template filters that mask resident
text and refuse unsafe link targets."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup, escape

from bot import keys
from reference import privacy

CSRF_FIELD = "csrf_token"


# ------------------------------------------------------------------ template filters
def masked(text: object, reveal: bool = False) -> str:
    """Jinja filter ``|masked``: resident text with phone and ID-card numbers masked (reference.privacy);
    the original only when the page is the audited reveal (``|masked(full_phone)``)."""
    value = "" if text is None else str(text)
    return value if reveal else privacy.mask_text(value)


def safe_url(url: object) -> str:
    """Jinja filter ``|safe_url``: an http(s) URL or a same-site path; anything else (``javascript:``,
    ``data:``) becomes ``#``."""
    value = "".join(ch for ch in str(url or "") if ch.isprintable() and not ch.isspace())
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    return value if scheme in ("http", "https") and value[len(scheme) + 1 :].startswith("//") else "#"


FILTERS = {"masked": masked, "safe_url": safe_url}


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


#: paths that never render a page: no session and no cookie for them (the WeChat webhook answers XML to WeChat's
#: servers; a session there cost an encrypted cookie on every message)
NO_PAGE_PATHS = frozenset({"/wechat"})


async def csrf_context(request: web.Request) -> dict[str, Any]:
    """aiohttp_jinja2 context processor: `{{ csrf_field() }}` in every form."""
    if request.path in NO_PAGE_PATHS:
        return {}
    token = await csrf_token(request)

    def csrf_field() -> Markup:
        return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')

    return {"csrf_field": csrf_field, "csrf_value": token}


#: no script at all (the pages work without JavaScript); inline styles stay allowed for the few style
#: attributes and <style> blocks of the templates; images also from WeChat's https media hosts
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and error pages get the headers too
        _harden(request, exc)
        raise
    _harden(request, response)
    return response


def _harden(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:
        return
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    settings = request.app.get(keys.SETTINGS)
    if settings is not None and settings.cookie_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if response.content_type == "text/html":
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Cache-Control", "no-store")


# ------------------------------------------------------------------ the client's address behind a proxy
def _networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return nets


def _trusted(address: str | None, nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in nets)


def forwarded_client(remote: str | None, forwarded_for: str, trusted: Iterable[str]) -> str | None:
    """The client's address: ``remote`` itself unless ``remote`` is a trusted proxy; then the right-most
    X-Forwarded-For entry that is not a trusted proxy (entries to its left were written by the client and
    prove nothing)."""
    nets = _networks(trusted)
    if not nets or not forwarded_for or not _trusted(remote, nets):
        return remote
    hops = [h.strip() for h in forwarded_for.split(",")][-20:]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote  # a malformed chain: keep the direct peer
        if not _trusted(hop, nets):
            return hop
    return hops[0] if hops else remote


@web.middleware
async def client_address(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``request.remote`` becomes the real client's address when the direct peer is in TRUSTED_PROXIES (the
    audit log, /metrics, /readyz and sign-in throttling all read ``request.remote``); otherwise
    X-Forwarded-For is ignored, so a client cannot choose its own address."""
    settings = request.app.get(keys.SETTINGS)
    trusted = settings.trusted_proxies if settings is not None else []
    if trusted:
        real = forwarded_client(request.remote, request.headers.get("X-Forwarded-For", ""), trusted)
        if real is not None and real != request.remote:
            request = request.clone(remote=real)
    return await handler(request)
