"""The contract between the WeChat webhook edge and the bot.

The edge turns one verified HTTP request into one :class:`Delivery` and hands it to an
:class:`InboundHandler`; the handler's answer comes back as text and is rendered to WeChat XML here.
Nothing in this module imports aiohttp, so ``bot/`` can implement the handler without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

MSG_TYPES = ("text", "voice", "image", "location", "link", "video", "shortvideo", "event", "unknown")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message or event as WeChat delivered it, after verification and decryption."""

    key: str
    """Dedupe key: ``msg:<MsgId>`` for messages, ``evt:<FromUserName>:<CreateTime>:<event>`` for events."""
    openid: str
    """FromUserName: the resident's openid for this official account."""
    account: str
    """ToUserName: the official account's original id (gh_...)."""
    msg_type: str
    """One of :data:`MSG_TYPES`; anything WeChat sends that is not listed there is ``unknown``."""
    event: str | None
    """Lower-case event name for events (``subscribe``, ``click``, ``templatesendjobfinish``...), else None."""
    text: str | None
    """Text content, voice Recognition ('' when empty), link title and url, or the event key."""
    media: dict[str, Any]
    """Extra fields: pic_url, media_id, lat, lon, label, scale, url, event_key, status, format..."""
    create_time: datetime
    """CreateTime as an aware UTC datetime."""
    raw_xml: str
    """The verified, decrypted plain XML, for the record."""


@runtime_checkable
class InboundHandler(Protocol):
    """What the bot plugs into the edge."""

    async def handle(self, delivery: Delivery) -> str | None:
        """Handle one delivery; return the reply text for a passive reply, or None for no reply.

        WeChat retries a delivery it got no answer for (same MsgId / same event key), and retries may
        arrive while the first attempt still runs: the handler must give the same delivery one effect
        (the edge already joins a retry to an attempt still running in this process).
        """
        ...

    async def deliver_late(self, delivery: Delivery, reply: str) -> None:
        """Called when :meth:`handle` finished after the reply budget: send ``reply`` via the outbox."""
        ...


@runtime_checkable
class KeepsUnanswered(Protocol):
    """An optional part of a handler: make a delivery survive a crash before the edge answers ``success`` for it.

    The edge calls :meth:`keep` when the reply budget has passed and :meth:`InboundHandler.handle` is still running:
    WeChat will not send the delivery again, so from then on it exists only in this process unless the handler
    writes it down. The edge answers only after ``keep`` returns; the reply of a kept delivery always goes out
    through ``deliver_late``."""

    async def keep(self, delivery: Delivery) -> None: ...


@runtime_checkable
class NonceStore(Protocol):
    """Replay memory for the (nonce, timestamp) pairs of processed requests."""

    async def seen(self, nonce: str, timestamp: str, ttl: int) -> bool:
        """True if the pair was already recorded (a replay), else record it and return False."""
        ...

    async def claim(self, nonce: str, timestamp: str, fingerprint: str, ttl: int) -> str | None:
        """Record ``fingerprint`` for the pair unless one is there; return the one already recorded.

        ``None`` means the pair is new. The webhook compares the returned fingerprint with the one of the
        request at hand to tell a WeChat retry (same delivery) from a replay carrying another body.
        """
        ...


@dataclass(frozen=True)
class WebhookConfig:
    token: str
    appid: str
    aes_key: str | None
    """EncodingAESKey (43 characters). None or '' = plaintext mode; set = compatible/safe mode only."""
    max_clock_skew: int = 300
    """Seconds a request's timestamp may differ from now; 0 turns the check off."""
    reply_budget: float = 3.5
    """Seconds the handler has for a passive reply (WeChat gives up after 5 s)."""
    max_body: int = 64 * 1024
    shutdown_grace: float = 10.0
    """Seconds the cleanup context waits for running handler tasks at shutdown before cancelling them."""

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("WebhookConfig.token must not be empty")
        if self.aes_key and len(self.aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        if self.reply_budget <= 0 or self.reply_budget >= 5:
            raise ValueError("reply_budget must be between 0 and 5 seconds")

    @property
    def encrypted(self) -> bool:
        return bool(self.aes_key)

    @property
    def nonce_ttl(self) -> int:
        """How long a nonce is remembered: as long as its timestamp can pass the window, and then some."""
        if self.max_clock_skew <= 0:
            return 24 * 3600
        return max(2 * self.max_clock_skew + 60, 600)
