"""A simulated WeChat user talking to the bot's webhook, for tests and benchmarks.

Each message is built, signed (and in safe/compat mode encrypted) exactly as WeChat does, with a unique MsgId and
the current time (the clock can be injected); ``resend()`` repeats the last request as WeChat's retry does.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from wechat_sim import protocol

DEFAULT_ACCOUNT = "gh_5f3a9c2e7b1d"  # the official account's original id (ToUserName)


@dataclass(frozen=True, slots=True)
class SimReply:
    """The webhook's answer as WeChat sees it. ``text``: the passive reply's Content (decrypted and parsed);
    None when the answer is ``success``, empty, or not a text/news reply. ``fields``: the reply's XML fields."""

    status: int
    body: bytes
    text: str | None
    msg_type: str | None
    fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # why the reply could not be read (bad MsgSignature, wrong AppID, malformed XML)

    @property
    def is_success(self) -> bool:
        """True when the webhook said "no passive reply" (``success`` or an empty body) with a 200."""
        return self.status == 200 and self.body.strip() in (b"", b"success")


def read_reply(status: int, body: bytes, *, token: str, appid: str, aes_key: str | None) -> SimReply:
    """Interpret a webhook answer as WeChat would: verify and decrypt an encrypted reply, then read it."""
    stripped = body.strip()
    if status != 200 or stripped in (b"", b"success"):
        return SimReply(status=status, body=body, text=None, msg_type=None)
    try:
        plain = protocol.decrypt_reply(body, token=token, aes_key=aes_key or "", appid=appid)
        fields = protocol.parse_xml(plain)
    except (protocol.ProtocolError, ValueError, SyntaxError) as exc:
        return SimReply(
            status=status, body=body, text=None, msg_type=None, error=str(exc) or type(exc).__name__
        )
    return SimReply(
        status=status,
        body=body,
        text=protocol.reply_text(fields),
        msg_type=fields.get("MsgType") or None,
        fields=fields,
    )


def msg_id_source() -> Callable[[], int]:
    """Unique 64-bit-looking MsgIds: a random high part per source and a counter below it."""
    base = 6_000_000_000_000_000_000 + (secrets.randbits(40) << 20)  # 19 digits, fits a signed BIGINT
    counter = itertools.count(1)
    return lambda: base + next(counter)


class SimulatedUser:
    """One resident's WeChat, posting to the webhook at ``webhook_url``.

    ``sim_url``: when given (the simulator server's base URL), each message also tells the simulator that this
    user interacted, which opens the 48-hour customer-service window there, as WeChat does."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        webhook_url: str,
        token: str,
        appid: str,
        aes_key: str | None,
        mode: str,
        openid: str,
        account: str = DEFAULT_ACCOUNT,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
        sim_url: str | None = None,
        next_msg_id: Callable[[], int] | None = None,
    ) -> None:
        if mode not in protocol.MODES:
            raise ValueError(f"mode must be one of {protocol.MODES}")
        if mode != "plain" and not aes_key:
            raise ValueError(f"mode {mode!r} needs an EncodingAESKey")
        self.session = session
        self.webhook_url = webhook_url
        self.token = token
        self.appid = appid
        self.aes_key = aes_key
        self.mode = mode
        self.openid = openid
        self.account = account
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.sim_url = sim_url.rstrip("/") if sim_url else None
        self._next_msg_id = next_msg_id or msg_id_source()
        self.last_request: tuple[dict[str, str], bytes] | None = None
        self.last_xml: str | None = None
        self.last_msg_id: int | None = None

    # ------------------------------------------------------------------ building

    def _now(self) -> int:
        return int(self.clock())

    def _common(self) -> dict[str, Any]:
        return {"to_user": self.account, "from_user": self.openid, "create_time": self._now()}

    def _msg_id(self) -> int:
        self.last_msg_id = self._next_msg_id()
        return self.last_msg_id

    def sign_request(self, xml: str, *, timestamp: int | None = None, nonce: str | None = None):
        """(query params, body) for ``xml`` in this user's mode, freshly signed."""
        return protocol.build_request(
            xml,
            mode=self.mode,
            token=self.token,
            timestamp=self._now() if timestamp is None else timestamp,
            nonce=nonce or protocol.new_nonce(),
            openid=self.openid,
            appid=self.appid,
            aes_key=self.aes_key,
        )

    async def send_xml(self, xml: str) -> SimReply:
        self.last_xml = xml
        params, body = self.sign_request(xml)
        return await self.send_raw(params, body)

    # ------------------------------------------------------------------ messages

    async def send_text(self, text: str) -> SimReply:
        return await self.send_xml(
            protocol.text_message(**self._common(), content=text, msg_id=self._msg_id())
        )

    async def send_voice(self, recognition: str, *, media_id: str = "", format: str = "amr") -> SimReply:
        xml = protocol.voice_message(
            **self._common(), recognition=recognition, msg_id=self._msg_id(), media_id=media_id, format=format
        )
        return await self.send_xml(xml)

    async def send_location(self, lat: float, lon: float, label: str, *, scale: int = 15) -> SimReply:
        xml = protocol.location_message(
            **self._common(), lat=lat, lon=lon, label=label, scale=scale, msg_id=self._msg_id()
        )
        return await self.send_xml(xml)

    async def send_image(self, pic_url: str, *, media_id: str = "") -> SimReply:
        xml = protocol.image_message(
            **self._common(), pic_url=pic_url, media_id=media_id, msg_id=self._msg_id()
        )
        return await self.send_xml(xml)

    async def send_link(self, title: str, description: str, url: str) -> SimReply:
        xml = protocol.link_message(
            **self._common(), title=title, description=description, url=url, msg_id=self._msg_id()
        )
        return await self.send_xml(xml)

    async def send_video(self, *, short: bool = False) -> SimReply:
        return await self.send_xml(
            protocol.video_message(**self._common(), msg_id=self._msg_id(), short=short)
        )

    async def send_event(self, event: str, key: str | None = None, **extra: object) -> SimReply:
        """An event (subscribe, unsubscribe, CLICK with ``key``, VIEW, SCAN, LOCATION with lat/lon,
        TEMPLATESENDJOBFINISH with status/msg_id); events carry no MsgId."""
        self.last_msg_id = None
        xml = protocol.event_message(**self._common(), event=event, key=key, **extra)  # type: ignore[arg-type]
        return await self.send_xml(xml)

    # ------------------------------------------------------------------ transport

    async def send_raw(self, params: dict[str, str], body: bytes) -> SimReply:
        """POST exactly these query parameters and body to the webhook."""
        self.last_request = (dict(params), body)
        await self._touch_simulator()
        async with self.session.post(
            self.webhook_url,
            params=params,
            data=body,
            headers={"Content-Type": "text/xml"},
            timeout=self.timeout,
        ) as resp:
            raw = await resp.read()
            status = resp.status
        return read_reply(status, raw, token=self.token, appid=self.appid, aes_key=self.aes_key)

    async def resend(self, *, fresh_signature: bool = False) -> SimReply:
        """WeChat's retry of the last message: the same XML (same MsgId and CreateTime). By default the exact
        same request; ``fresh_signature`` re-signs it with a new timestamp and nonce."""
        if self.last_request is None:
            raise RuntimeError("nothing sent yet")
        if fresh_signature and self.last_xml is not None:
            params, body = self.sign_request(self.last_xml)
            return await self.send_raw(params, body)
        params, body = self.last_request
        return await self.send_raw(params, body)

    async def verify_url(self, echostr: str | None = None) -> tuple[int, str, str]:
        """WeChat's GET check of the server URL: (status, body, the echostr sent)."""
        echostr = echostr or str(secrets.randbits(63))
        params = protocol.verification_request(
            token=self.token, echostr=echostr, timestamp=self._now(), nonce=protocol.new_nonce()
        )
        async with self.session.get(self.webhook_url, params=params, timeout=self.timeout) as resp:
            return resp.status, await resp.text(), echostr

    async def _touch_simulator(self) -> None:
        if self.sim_url is None:
            return
        async with self.session.post(
            f"{self.sim_url}/_sim/interaction", json={"openid": self.openid}, timeout=self.timeout
        ) as resp:
            resp.raise_for_status()
