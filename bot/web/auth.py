"""Staff sign-in at the HTTP edge: sessions (aiohttp_session), `current_staff`, `require_staff`, WeChat OAuth.

Passwords, lockout and binding codes are domain rules and live in `bot.cases.access`."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import aiohttp
from aiohttp import web
from aiohttp_session import get_session, new_session
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import keys
from bot.cases.access import LoginFailed, authenticate, hash_password, revoke_sessions, verify_password
from bot.db import transaction
from bot.models import Staff

log = logging.getLogger(__name__)
STAFF_KEY = "staff_id"
EPOCH_KEY = "epoch"
_REQUEST_STAFF = "daguanjia_staff"
_REQUEST_DB = "daguanjia_page_session"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = [
    "LoginFailed",
    "authenticate",
    "current_staff",
    "hash_password",
    "oauth_authorize_url",
    "oauth_exchange",
    "page_session",
    "require_staff",
    "safe_next",
    "sign_in",
    "sign_out",
    "verify_password",
]


async def sign_in(request: web.Request, staff: Staff) -> None:
    """A fresh session (new cookie, no fixation) that remembers the staff member and their session epoch."""
    session = await new_session(request)
    session[STAFF_KEY] = staff.id
    session[EPOCH_KEY] = staff.session_epoch
    request[_REQUEST_STAFF] = staff


async def sign_out(request: web.Request) -> None:
    """End the session here *and* on the server: the epoch is bumped, so a copy of the cookie replayed later
    (or kept on another device) no longer opens anything."""
    staff = await current_staff(request)
    if staff is not None:
        async with transaction(request.app[keys.SESSIONS]) as db:
            me = await db.get(Staff, staff.id)
            if me is not None:
                await revoke_sessions(db, staff=me)
    session = await get_session(request)
    session.invalidate()
    request[_REQUEST_STAFF] = None


async def current_staff(request: web.Request, db: AsyncSession | None = None) -> Staff | None:
    """The signed-in, active staff member, loaded once per request: in ``db`` when given (the page's own
    session, see ``page_session``), else in a session of its own."""
    if _REQUEST_STAFF in request:
        return request[_REQUEST_STAFF]
    session = await get_session(request)
    staff_id = session.get(STAFF_KEY)
    staff = None
    if isinstance(staff_id, int):
        if db is not None:
            staff = await db.get(Staff, staff_id)
        else:
            async with request.app[keys.SESSIONS]() as own:
                staff = await own.get(Staff, staff_id)
        if staff is not None and (not staff.active or session.get(EPOCH_KEY) != staff.session_epoch):
            staff = None  # deactivated, or the session was revoked (logout, password, role or town change)
            session.invalidate()
    request[_REQUEST_STAFF] = staff
    return staff


def require_staff(
    roles: Iterable[str] | None = None, *, reads: bool = False
) -> Callable[[Callable[[web.Request, Staff], Awaitable[web.StreamResponse]]], Handler]:
    """Decorator: the handler gets the signed-in staff member as its second argument. Not signed in → the
    login page (back here afterwards); signed in without one of `roles` → 403.

    ``reads``: for a page that only reads. The staff member is read in the session the handler then takes with
    ``page_session`` (one connection checkout and one transaction for both instead of two: ~1 ms of CPU per
    page on PostgreSQL). The handler must take it before anything else opens a session (on SQLite it holds the
    write lock from its first statement) and must not write in it; it is closed when the handler returns."""
    allowed = frozenset(roles) if roles is not None else None

    def admit(request: web.Request, staff: Staff | None) -> Staff:
        if staff is None:
            if request.method != "GET":
                raise web.HTTPForbidden(text="请先登录")
            login = request.app.router["staff_login"].url_for().with_query(next=request.path_qs)
            raise web.HTTPFound(login)
        if allowed is not None and staff.role not in allowed:
            raise web.HTTPForbidden(text="您没有权限使用这个功能")
        return staff

    def wrap(handler: Callable[[web.Request, Staff], Awaitable[web.StreamResponse]]) -> Handler:
        @functools.wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            if not reads:
                return await handler(request, admit(request, await current_staff(request)))
            db = request.app[keys.SESSIONS]()
            request[_REQUEST_DB] = db
            try:
                return await handler(request, admit(request, await current_staff(request, db)))
            finally:
                request.pop(_REQUEST_DB, None)
                await db.close()  # at once if the handler did not take it (a redirect, a refusal)

        return inner

    return wrap


@contextlib.asynccontextmanager
async def page_session(request: web.Request) -> AsyncIterator[AsyncSession]:
    """The page's read session, closed at the end of the block: the one the signed-in staff member was just read
    in when the handler is decorated with ``require_staff(reads=True)`` (taken once), else a new one."""
    db = request.pop(_REQUEST_DB, None)
    async with db if db is not None else request.app[keys.SESSIONS]() as session:
        yield session


def safe_next(target: str | None, default: str) -> str:
    """A post-sign-in destination, accepted only as a same-site path.

    Browsers drop tabs, newlines and other control characters from URLs and treat ``\\`` like ``/``, so the
    value is normalised *first* (control characters and whitespace removed, percent-decoding looked through)
    and checked afterwards: ``/%09/evil.example`` or ``/\tevil`` would otherwise become ``//evil.example``.
    The accepted value is the normalised one, so what was checked is what the browser gets."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return default
    cleaned = "".join(ch for ch in target if ch.isprintable() and not ch.isspace())
    decoded = unquote(cleaned)
    for candidate in (cleaned, decoded, unquote(decoded)):
        squeezed = "".join(ch for ch in candidate if ch.isprintable() and not ch.isspace())
        if not squeezed.startswith("/") or squeezed.startswith(("//", "/\\")) or "\\" in squeezed:
            return default
        parts = urlsplit(squeezed)
        if parts.scheme or parts.netloc:
            return default
    return cleaned


# ------------------------------------------------------------------ WeChat OAuth (snsapi_base)
#: WeChat serves the authorisation page from open.weixin.qq.com, the API (code exchange) from api.weixin.qq.com
WECHAT_API = "https://api.weixin.qq.com"
WECHAT_OPEN = "https://open.weixin.qq.com"


def oauth_authorize_url(request: web.Request, *, state: str) -> str:
    """WeChat's web-authorisation URL; its parameters in the documented order, the callback fully encoded."""
    settings = request.app[keys.SETTINGS]
    callback = settings.base_url.rstrip("/") + str(request.app.router["staff_oauth_callback"].url_for())
    base = settings.api_base
    if base.startswith(WECHAT_API):
        base = WECHAT_OPEN
    query = urlencode(
        [
            ("appid", settings.wechat_appid),
            ("redirect_uri", callback),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
            ("state", state),
        ],
        quote_via=quote,
        safe="",
    )
    return f"{base}/connect/oauth2/authorize?{query}#wechat_redirect"


class OAuthError(Exception):
    """The code exchange failed: `unavailable` when WeChat could not be asked, else WeChat refused the code
    (forged, expired or already used)."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


async def oauth_exchange(request: web.Request, *, code: str) -> str:
    """Exchange the OAuth code for the user's openid (WeChat's `sns/oauth2/access_token`)."""
    settings = request.app[keys.SETTINGS]
    http = request.app[keys.HTTP]
    params = {
        "appid": settings.wechat_appid,
        "secret": settings.wechat_secret,
        "code": code,
        "grant_type": "authorization_code",
    }
    try:
        async with http.get(
            f"{settings.api_base}/sns/oauth2/access_token",
            params=params,
            timeout=aiohttp.ClientTimeout(total=5),
        ) as resp:
            data: dict[str, Any] = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("oauth exchange failed: %s", type(exc).__name__)
        raise OAuthError("微信授权服务暂时不可用，请稍后再试或使用密码登录", unavailable=True) from exc
    if not isinstance(data, dict):
        raise OAuthError("微信授权服务暂时不可用，请稍后再试或使用密码登录", unavailable=True)
    if data.get("errcode") == -1:
        raise OAuthError("微信系统繁忙，请稍后再试", unavailable=True)
    if data.get("errcode") or not data.get("openid"):
        log.info("oauth exchange refused: errcode=%s", data.get("errcode"))
        raise OAuthError("微信授权已失效，请重新进入")
    return str(data["openid"])
