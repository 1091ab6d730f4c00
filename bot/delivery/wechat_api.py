"""An async client for the WeChat official-account API (customer-service and template messages, OAuth).

It runs on the app's aiohttp ``ClientSession`` (wechatpy's client is blocking and never runs on the loop).
The access token is cached with its expiry and refreshed by ONE owner: an asyncio lock inside the process and,
when Redis is given, a Redis lock (``SET NX PX``) with the token shared in Redis, so that several workers never
refresh at once (a new token from ``/cgi-bin/token`` invalidates the old one after five minutes). The
``/cgi-bin/stable_token`` endpoint is used when the server offers it: it hands every caller the same token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

TOKEN_INVALID = frozenset({40001, 42001, 40014})
WINDOW_CLOSED = frozenset({45015, 45047})
UNSUBSCRIBED = frozenset({43004})
BUSY = frozenset({-1})
REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before WeChat says the token expires
LOCK_TTL_MS = 15_000


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def token_invalid(self) -> bool:
        return self.errcode in TOKEN_INVALID

    @property
    def window_closed(self) -> bool:
        """Outside the 48-hour window (45015) or its quota used up (45047): use a template message."""
        return self.errcode in WINDOW_CLOSED

    @property
    def unsubscribed(self) -> bool:
        return self.errcode in UNSUBSCRIBED

    @property
    def retryable(self) -> bool:
        """Busy or unreachable: try again later with backoff."""
        return self.errcode in BUSY

    def short(self) -> str:
        """The reason shown to staff (no request ids)."""
        return f"{self.errcode} {self.errmsg.split(' rid:')[0]}".strip()


class WeChatUnavailable(WeChatError):
    """The API could not be reached, timed out or answered something that is not WeChat's JSON."""

    def __init__(self, reason: str) -> None:
        super().__init__(-1, reason)

    @property
    def retryable(self) -> bool:
        return True


class MediaTooLarge(Exception):
    """A media file beyond the size limit (it is not read further)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: datetime


def _utcnow() -> datetime:
    return datetime.now(UTC)


#: the longest a temporary QR code lasts (WeChat's limit: 30 days)
MAX_QR_SECONDS = 30 * 86400


class WeChatAPI:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        base_url: str,
        appid: str,
        secret: str,
        redis: Any = None,
        clock: Callable[[], datetime] = _utcnow,
        timeout: float = 10.0,
        use_stable_token: bool = True,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self.secret = secret
        self.redis = redis
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.use_stable_token = use_stable_token
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.token_fetches = 0  # how many times this client asked WeChat for a token
        self.last_error: str | None = None  # the last failure to reach WeChat; cleared by the next answer
        self._redis_key = f"wechat:access_token:{appid}"
        self._redis_lock = f"wechat:access_token_lock:{appid}"
        self.redis_away = False  # the last token refresh found Redis unavailable (and fetched its own)

    # ------------------------------------------------------------------ HTTP
    @property
    def degraded(self) -> bool:
        """WeChat's API did not answer the last call (network, 5xx, busy): /readyz reports it."""
        return self.last_error is not None

    async def _request(
        self, method: str, path: str, *, params: dict[str, str], body: Any = None
    ) -> dict[str, Any]:
        try:
            answer = await self._request_once(method, path, params=params, body=body)
        except WeChatError as exc:
            if exc.retryable:
                self.last_error = exc.short()
            else:
                self.last_error = None  # WeChat answered (an error about this call, not an outage)
            raise
        self.last_error = None
        return answer

    async def _request_once(
        self, method: str, path: str, *, params: dict[str, str], body: Any = None
    ) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None else None
            async with self.session.request(
                method, url, params=params, data=data, headers=headers, timeout=self.timeout
            ) as resp:
                if resp.status >= 500:
                    raise WeChatUnavailable(f"HTTP {resp.status}")
                if resp.status == 404:
                    raise WeChatUnavailable("HTTP 404")
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WeChatUnavailable(f"network: {type(exc).__name__}") from exc
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WeChatUnavailable("not JSON") from None
        if not isinstance(answer, dict):
            raise WeChatUnavailable("not a JSON object")
        errcode = int(answer.get("errcode") or 0)
        if errcode:
            raise WeChatError(errcode, str(answer.get("errmsg", "")))
        return answer

    # ------------------------------------------------------------------ the access token
    def _fresh(self, token: _Token | None) -> bool:
        return token is not None and token.expires_at - REFRESH_MARGIN > self.clock()

    async def access_token(self, *, stale: str | None = None) -> str:
        """The current token. ``stale``: a token WeChat just refused; a new one is fetched unless someone
        already replaced it (so many messages failing with 40001 at once cause one refresh)."""
        tok = self._token
        if self._fresh(tok) and tok is not None and tok.value != stale:
            return tok.value
        async with self._lock:
            tok = self._token
            if self._fresh(tok) and tok is not None and tok.value != stale:
                return tok.value
            if self.redis is not None:
                tok = await self._shared_or_own(stale)
            else:
                tok = await self._fetch(force=stale is not None)
            self._token = tok
            return tok.value

    async def _shared_or_own(self, stale: str | None) -> _Token:
        """The token shared through Redis; with Redis away, this process fetches its own (messages keep going
        out), and the next refresh tries Redis again."""
        try:
            tok = await self._token_via_redis(stale)
        except (RedisError, OSError, TimeoutError) as exc:
            if not self.redis_away:
                log.warning(
                    "Redis unavailable (%s: %s): this process fetches its own WeChat token until Redis returns",
                    type(exc).__name__,
                    str(exc).splitlines()[0][:200] if str(exc) else "",
                )
            self.redis_away = True
            return await self._fetch(force=stale is not None)
        if self.redis_away:
            log.warning("Redis answers again: the WeChat token is shared again")
            self.redis_away = False
        return tok

    async def _token_via_redis(self, stale: str | None) -> _Token:
        shared = await self._redis_get()
        if self._fresh(shared) and shared is not None and shared.value != stale:
            return shared
        owner = secrets.token_hex(8)
        deadline = asyncio.get_running_loop().time() + LOCK_TTL_MS / 1000
        while True:
            if await self.redis.set(self._redis_lock, owner, nx=True, px=LOCK_TTL_MS):
                try:
                    shared = await self._redis_get()  # someone may have refreshed while we waited
                    if self._fresh(shared) and shared is not None and shared.value != stale:
                        return shared
                    tok = await self._fetch(force=stale is not None)
                    ttl_ms = max(1000, int((tok.expires_at - self.clock()).total_seconds() * 1000))
                    payload = json.dumps({"value": tok.value, "expires_at": tok.expires_at.isoformat()})
                    await self.redis.set(self._redis_key, payload, px=ttl_ms)
                    return tok
                finally:
                    # release only our own lock
                    await self.redis.eval(
                        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end",
                        1,
                        self._redis_lock,
                        owner,
                    )
            await asyncio.sleep(0.05)
            shared = await self._redis_get()
            if self._fresh(shared) and shared is not None and shared.value != stale:
                return shared
            if asyncio.get_running_loop().time() > deadline:
                log.warning("the WeChat token refresh lock in Redis was held too long; fetching ourselves")
                return await self._fetch(force=stale is not None)

    async def _redis_get(self) -> _Token | None:
        raw = await self.redis.get(self._redis_key)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return _Token(value=data["value"], expires_at=datetime.fromisoformat(data["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def _fetch(self, *, force: bool) -> _Token:
        self.token_fetches += 1
        now = self.clock()
        if self.use_stable_token:
            try:
                answer = await self._request(
                    "POST",
                    "/cgi-bin/stable_token",
                    params={},
                    body={
                        "grant_type": "client_credential",
                        "appid": self.appid,
                        "secret": self.secret,
                        "force_refresh": force,
                    },
                )
            except WeChatUnavailable as exc:
                if exc.errmsg != "HTTP 404":
                    raise
                log.info("stable_token is not offered by %s; using /cgi-bin/token", self.base_url)
                self.use_stable_token = False
            else:
                return self._token_from(answer, now)
        answer = await self._request(
            "GET",
            "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        return self._token_from(answer, now)

    @staticmethod
    def _token_from(answer: dict[str, Any], now: datetime) -> _Token:
        value = answer.get("access_token")
        if not value:
            raise WeChatUnavailable("no access_token in the answer")
        return _Token(
            value=str(value), expires_at=now + timedelta(seconds=int(answer.get("expires_in", 7200)))
        )

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with the token; on 40001/42001/40014 refresh the token once and try once more."""
        token = await self.access_token()
        try:
            return await self._request("POST", path, params={"access_token": token}, body=body)
        except WeChatError as exc:
            if not exc.token_invalid:
                raise
            log.info("WeChat refused the access token (%s); refreshing once", exc.errcode)
            token = await self.access_token(stale=token)
            return await self._request("POST", path, params={"access_token": token}, body=body)

    # ------------------------------------------------------------------ messages
    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        """A customer-service text message (only inside the 48-hour window and its quota)."""
        return await self._call(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": text}},
        )

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, str], url: str | None = None
    ) -> dict[str, Any]:
        """A template message; ``data`` maps the template's keys to short values."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if url:
            body["url"] = url
        return await self._call("/cgi-bin/message/template/send", body)

    async def send_subscribe(
        self, openid: str, template_id: str, data: dict[str, str], page: str | None = None
    ) -> dict[str, Any]:
        """A subscribe message (bizsend), for accounts that use subscribe messages instead of templates."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if page:
            body["page"] = page
        return await self._call("/cgi-bin/message/subscribe/bizsend", body)

    # ------------------------------------------------------------------ parametric QR codes
    async def create_qrcode(self, scene: str, *, expire_seconds: int | None = None) -> dict[str, Any]:
        """A parametric QR code (``qrcode/create``): permanent (QR_LIMIT_STR_SCENE) without ``expire_seconds``,
        temporary (QR_STR_SCENE, valid ``expire_seconds``, at most WeChat's 30 days) with it. WeChat answers with
        the ``ticket`` (for ``showqrcode``), the ``url`` the code encodes (and ``expire_seconds`` for a temporary
        one). A scan sends the subscribe event with EventKey ``qrscene_<scene>``, or SCAN with ``<scene>`` from a
        follower; WeChat itself refuses a scan of an expired code. ``scene``: 1 to 64 characters."""
        if not 1 <= len(scene) <= 64:
            raise ValueError("a QR scene string has 1 to 64 characters")
        body: dict[str, Any] = {"action_info": {"scene": {"scene_str": scene}}}
        if expire_seconds is None:
            body["action_name"] = "QR_LIMIT_STR_SCENE"
        elif 60 <= expire_seconds <= MAX_QR_SECONDS:
            body["action_name"], body["expire_seconds"] = "QR_STR_SCENE", expire_seconds
        else:
            raise ValueError(f"a temporary QR code lasts 60 to {MAX_QR_SECONDS} seconds")
        return await self._call("/cgi-bin/qrcode/create", body)

    # ------------------------------------------------------------------ temporary media
    async def get_media(self, media_id: str, *, max_bytes: int) -> tuple[bytes, str]:
        """A user's temporary media file (``/cgi-bin/media/get``): (bytes, the Content-Type WeChat declared).

        WeChat answers an error as JSON (40007 when the media id is unknown or its three days are over); a file
        larger than ``max_bytes`` is not read beyond that and raises ``MediaTooLarge``. The access token is
        refreshed once on 40001/42001, as for messages."""
        token = await self.access_token()
        try:
            return await self._get_media_once(media_id, token, max_bytes)
        except WeChatError as exc:
            if not exc.token_invalid:
                raise
            token = await self.access_token(stale=token)
            return await self._get_media_once(media_id, token, max_bytes)

    async def _get_media_once(self, media_id: str, token: str, max_bytes: int) -> tuple[bytes, str]:
        url = f"{self.base_url}/cgi-bin/media/get"
        params = {"access_token": token, "media_id": media_id}
        try:
            async with self.session.get(url, params=params, timeout=self.timeout) as resp:
                if resp.status >= 500 or resp.status == 404:
                    raise WeChatUnavailable(f"HTTP {resp.status}")
                declared = resp.content_type or ""
                length = resp.content_length
                if length is not None and length > max_bytes:
                    raise MediaTooLarge(length)
                raw = await resp.content.read(max_bytes + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WeChatUnavailable(f"network: {type(exc).__name__}") from exc
        if len(raw) > max_bytes:
            raise MediaTooLarge(len(raw))
        if declared in ("application/json", "text/plain") and raw[:1] == b"{":
            try:
                answer = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                answer = None
            if isinstance(answer, dict) and int(answer.get("errcode") or 0):
                raise WeChatError(int(answer["errcode"]), str(answer.get("errmsg", "")))
        self.last_error = None
        return raw, declared

    async def oauth_openid(self, code: str) -> str:
        """Exchange a web-authorisation code (snsapi_base) for the user's openid."""
        answer = await self._request(
            "GET",
            "/sns/oauth2/access_token",
            params={
                "appid": self.appid,
                "secret": self.secret,
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        openid = answer.get("openid")
        if not openid:
            raise WeChatError(40029, "no openid in the answer")
        return str(openid)
