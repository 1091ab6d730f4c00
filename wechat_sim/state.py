"""The simulator's memory: tokens, users, 48-hour windows, faults, what was sent, each phone's chat.

Everything the HTTP handlers do goes through ``SimState``; tests in the same process use it directly
(``app[SIM_STATE]``). No HTTP here.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

ENDPOINTS: tuple[str, ...] = (
    "token",
    "custom",
    "template",
    "subscribe",
    "oauth",
    "userinfo",
    "menu",
    "media",
    "qrcode",
    "*",
)
#: WeChat keeps a temporary media file (what a user sends: image, voice, video) for three days
MEDIA_TTL = 3 * 24 * 3600

ERRMSG: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41006: "media_id missing",
    41008: "missing code",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    44004: "empty content",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    47003: "argument invalid!",
}

DEMO_USERS: tuple[tuple[str, str], ...] = (
    ("oDGJx0demo0resident00000001", "居民一号"),
    ("oDGJx0demo0resident00000002", "居民二号"),
    ("oDGJx0demo0staff0000000001", "镇街工作人员"),
    ("oDGJx0demo0volunteer000001", "爱心志愿者"),
)
DEMO_OPENID = DEMO_USERS[0][0]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def rid() -> str:
    """WeChat appends a request id to every errmsg: ``… rid: 65f0c2a1-1b2c3d4e-5f6a7b8c``."""
    return f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


def error(errcode: int, detail: str | None = None) -> dict[str, Any]:
    msg = ERRMSG.get(errcode, "error")
    if detail:
        msg = f"{msg} {detail}"
    return {"errcode": errcode, "errmsg": f"{msg} rid: {rid()}"}


@dataclass(slots=True)
class Fault:
    endpoint: str
    errcode: int
    times: int | None = 1  # None: until cleared
    delay_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class AccessToken:
    value: str
    kind: str  # "token" | "stable"
    issued_at: float
    expires_at: float
    revoked_at: float | None = None  # stops working at this time (a newer token was issued)


@dataclass(slots=True)
class SentMessage:
    """One message the bot sent through the API."""

    id: int
    channel: str  # "custom" | "template" | "subscribe"
    openid: str
    time: float
    msgtype: str = "text"
    content: str | None = None
    template_id: str | None = None
    data: dict[str, str] | None = None  # template/subscribe fields: key -> value
    url: str | None = None
    msgid: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["time_iso"] = iso(self.time)
        return out

    def display(self) -> str:
        """How the message looks in the resident's chat."""
        if self.channel == "custom":
            if self.msgtype == "text":
                return self.content or ""
            if self.msgtype == "news":
                arts = self.payload.get("news", {}).get("articles", [])
                return "\n".join(f"{a.get('title', '')} {a.get('description', '')}".strip() for a in arts)
            return f"[{self.msgtype}]"
        label = "模板消息" if self.channel == "template" else "订阅通知"
        lines = [f"【{label}】"] + [f"{k}：{v}" for k, v in (self.data or {}).items()]
        return "\n".join(lines)


@dataclass(slots=True)
class ChatEntry:
    id: int
    openid: str
    sender: str  # "user" | "bot" | "system"
    kind: str  # "text" | "voice" | "location" | "image" | "event" | "passive" | "custom" | "template" | …
    text: str
    time: float
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["time_iso"] = iso(self.time)
        return out


@dataclass(slots=True)
class User:
    openid: str
    nickname: str = ""
    subscribed: bool = True
    subscribe_time: float = 0.0
    last_interaction: float | None = None
    quota_left: int = 0


@dataclass(slots=True)
class SimMedia:
    """A temporary media file a user sent, as WeChat keeps it for ``media/get`` (three days)."""

    media_id: str
    data: bytes
    content_type: str
    created_at: float
    deleted: bool = False


@dataclass(slots=True)
class OAuthCode:
    openid: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class SimState:
    """The simulated WeChat: configuration and everything it remembers."""

    token: str
    appid: str
    secret: str
    aes_key: str | None
    mode: str
    webhook_url: str
    account: str = "gh_5f3a9c2e7b1d"
    enforce_window: bool = False
    window_seconds: int = 48 * 3600
    window_quota: int = 5
    token_ttl: int = 7200
    token_grace: int = 300
    reply_timeout: float = 5.0
    reply_tries: int = 3
    templates: dict[str, tuple[str, ...]] | None = None  # template_id -> keys; None accepts any template
    template_job_events: bool = False  # push TEMPLATESENDJOBFINISH to the webhook after each template send
    clock: Callable[[], float] = time.time

    tokens: dict[str, AccessToken] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    sent: list[SentMessage] = field(default_factory=list)
    chats: dict[str, list[ChatEntry]] = field(default_factory=dict)
    codes: dict[str, OAuthCode] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    menu: list[dict[str, Any]] | None = None
    webhook_log: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, SimMedia] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._seq = itertools.count(1)
        self._msgid = itertools.count(6_000_000_000_000_000_000 + (secrets.randbits(40) << 20))
        now = self.clock()
        for openid, nickname in DEMO_USERS:
            self.users[openid] = User(openid=openid, nickname=nickname, subscribe_time=now)

    def now(self) -> float:
        return self.clock()

    # ------------------------------------------------------------------ faults

    def add_fault(self, endpoint: str, errcode: int, *, times: int | None = 1, delay_ms: int = 0) -> Fault:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}")
        fault = Fault(endpoint=endpoint, errcode=int(errcode), times=times, delay_ms=max(0, int(delay_ms)))
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, endpoint: str) -> Fault | None:
        """The first fault armed for ``endpoint`` (or "*"), counted down once."""
        for fault in self.faults:
            if fault.endpoint in (endpoint, "*"):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ access tokens

    def _new_token(self, kind: str) -> AccessToken:
        now = self.now()
        for old in self.tokens.values():
            if old.kind == kind and old.revoked_at is None:
                old.revoked_at = now + self.token_grace
        tok = AccessToken(
            value=secrets.token_urlsafe(96)[:128],
            kind=kind,
            issued_at=now,
            expires_at=now + self.token_ttl,
        )
        self.tokens[tok.value] = tok
        return tok

    def issue_token(self) -> AccessToken:
        """``/cgi-bin/token``: always a new token; the previous one keeps working for ``token_grace`` seconds."""
        return self._new_token("token")

    def stable_token(self, *, force_refresh: bool = False) -> AccessToken:
        """``/cgi-bin/stable_token``: the same token until it expires, unless ``force_refresh``."""
        now = self.now()
        if not force_refresh:
            for tok in self.tokens.values():
                if tok.kind == "stable" and tok.revoked_at is None and tok.expires_at > now:
                    return tok
        return self._new_token("stable")

    def check_token(self, value: str | None) -> int:
        """0, or WeChat's errcode for this access_token: 41001 missing, 40001 unknown/replaced, 42001 expired."""
        if not value:
            return 41001
        tok = self.tokens.get(value)
        now = self.now()
        if tok is None or (tok.revoked_at is not None and now >= tok.revoked_at):
            return 40001
        if now >= tok.expires_at:
            return 42001
        return 0

    def expire_tokens(self) -> None:
        """Make every issued token expired (the next API call answers 42001)."""
        now = self.now()
        for tok in self.tokens.values():
            tok.expires_at = min(tok.expires_at, now)

    # ------------------------------------------------------------------ users and the 48-hour window

    def user(self, openid: str) -> User:
        user = self.users.get(openid)
        if user is None:
            user = self.users[openid] = User(openid=openid, subscribe_time=self.now())
        return user

    def interaction(self, openid: str) -> User:
        """The user sent a message or clicked the menu: the 48-hour window opens with a fresh quota."""
        user = self.user(openid)
        user.last_interaction = self.now()
        user.quota_left = self.window_quota
        return user

    def set_subscribed(self, openid: str, subscribed: bool) -> User:
        user = self.user(openid)
        if subscribed and not user.subscribed:
            user.subscribe_time = self.now()
        user.subscribed = subscribed
        return user

    def window_error(self, openid: str) -> int:
        """0 when a customer-service message may go out now, else 45015 (window closed) or 45047 (quota)."""
        if not self.enforce_window:
            return 0
        user = self.user(openid)
        if user.last_interaction is None or self.now() - user.last_interaction > self.window_seconds:
            return 45015
        if user.quota_left <= 0:
            return 45047
        return 0

    # ------------------------------------------------------------------ recording

    def next_msgid(self) -> int:
        return next(self._msgid)

    def record(self, message: SentMessage) -> SentMessage:
        self.sent.append(message)
        self.add_chat(
            message.openid, sender="bot", kind=message.channel, text=message.display(), url=message.url
        )
        return message

    def new_sent(self, **kwargs: Any) -> SentMessage:
        return SentMessage(id=next(self._seq), time=self.now(), **kwargs)

    def sent_to(self, openid: str | None = None) -> list[SentMessage]:
        return [m for m in self.sent if openid is None or m.openid == openid]

    def clear_sent(self) -> None:
        self.sent.clear()

    def add_chat(
        self, openid: str, *, sender: str, kind: str, text: str, url: str | None = None
    ) -> ChatEntry:
        entry = ChatEntry(
            id=next(self._seq), openid=openid, sender=sender, kind=kind, text=text, time=self.now(), url=url
        )
        self.chats.setdefault(openid, []).append(entry)
        return entry

    def chat_after(self, openid: str, after: int = 0) -> list[ChatEntry]:
        return [e for e in self.chats.get(openid, []) if e.id > after]

    # ------------------------------------------------------------------ temporary media (media/get)

    def add_media(self, data: bytes, content_type: str, media_id: str | None = None) -> SimMedia:
        """Keep ``data`` under ``media_id`` (a new one when not given), as WeChat does with what a user sends."""
        media_id = media_id or f"sim-media-{secrets.token_hex(12)}"
        item = SimMedia(media_id=media_id, data=data, content_type=content_type, created_at=self.now())
        self.media[media_id] = item
        return item

    def get_media(self, media_id: str) -> SimMedia | None:
        """The media still held: neither deleted nor older than WeChat's three days on this clock."""
        item = self.media.get(media_id)
        if item is None or item.deleted or self.now() - item.created_at > MEDIA_TTL:
            return None
        return item

    def expire_media(self, media_id: str | None = None) -> int:
        """WeChat's three days are over: delete one media file, or all of them. Returns how many."""
        count = 0
        for item in self.media.values():
            if (media_id is None or item.media_id == media_id) and not item.deleted:
                item.deleted, item.data = True, b""
                count += 1
        return count

    # ------------------------------------------------------------------ OAuth

    def new_oauth_code(self, openid: str, scope: str = "snsapi_base") -> str:
        """A web-authorisation code for ``openid``: valid 5 minutes, usable once."""
        code = secrets.token_hex(16)
        self.codes[code] = OAuthCode(openid=openid, scope=scope, expires_at=self.now() + 300)
        self.user(openid)
        return code

    def exchange_code(self, code: str) -> tuple[int, OAuthCode | None]:
        entry = self.codes.get(code)
        if entry is None or self.now() > entry.expires_at:
            return 40029, None
        if entry.used:
            return 40163, None
        entry.used = True
        return 0, entry
