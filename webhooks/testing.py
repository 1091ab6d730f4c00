"""Test helpers: a WeChat-side sender and a recording handler.

The sender builds requests exactly as WeChat's servers do, with wechatpy's ``WeChatCrypto`` (an
implementation independent of :mod:`webhooks.crypto`), so tests of the edge do not check the edge against
itself. End-to-end tests and the load benchmark can use it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import xmltodict
from wechatpy.crypto import WeChatCrypto

from .types import Delivery

Mode = Literal["plain", "compatible", "safe"]


def wechat_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def message_xml(fields: Mapping[str, str | int | float]) -> str:
    """``<xml>`` with one element per field; strings in CDATA, numbers bare (as WeChat writes them)."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if isinstance(value, str):
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
        else:
            parts.append(f"<{name}>{value}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


@dataclass
class SignedRequest:
    params: dict[str, str]
    body: bytes


@dataclass
class WeChatSender:
    token: str
    appid: str
    aes_key: str | None = None
    mode: Mode = "plain"

    def __post_init__(self) -> None:
        if self.mode != "plain" and not self.aes_key:
            raise ValueError("compatible and safe modes need an EncodingAESKey")

    def query(self, *, timestamp: int | str | None = None, nonce: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nc = nonce or str(secrets.randbelow(10**10))
        return {"signature": wechat_signature(self.token, ts, nc), "timestamp": ts, "nonce": nc}

    def build(
        self,
        plain_xml: str,
        *,
        timestamp: int | str | None = None,
        nonce: str | None = None,
        appid: str | None = None,
    ) -> SignedRequest:
        """Sign (and in compatible/safe mode encrypt, for ``appid`` or the configured one) a message."""
        params = self.query(timestamp=timestamp, nonce=nonce)
        if self.mode == "plain":
            return SignedRequest(params, plain_xml.encode("utf-8"))
        assert self.aes_key
        crypto = WeChatCrypto(self.token, self.aes_key, appid or self.appid)
        envelope = xmltodict.parse(crypto.encrypt_message(plain_xml, params["nonce"], params["timestamp"]))
        encrypt = envelope["xml"]["Encrypt"]
        params |= {"encrypt_type": "aes", "msg_signature": envelope["xml"]["MsgSignature"]}
        if self.mode == "safe":
            found = re.search(r"<ToUserName>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</ToUserName>", plain_xml)
            to_user = found.group(1) if found else ""
            body = f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        else:  # compatible: the plain fields and the Encrypt element side by side
            body = plain_xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        return SignedRequest(params, body.encode("utf-8"))

    def open_reply(self, body: str) -> dict[str, str] | None:
        """The reply's fields (decrypted and signature-checked in aes modes), or None for ``success``/''."""
        if body.strip() in ("", "success"):
            return None
        root = ET.fromstring(body)
        if self.mode != "plain":
            assert self.aes_key
            crypto = WeChatCrypto(self.token, self.aes_key, self.appid)
            body = crypto.decrypt_message(
                body,
                root.findtext("MsgSignature"),
                root.findtext("TimeStamp"),
                root.findtext("Nonce"),
            )
            root = ET.fromstring(body)
        return {child.tag: child.text or "" for child in root}


@dataclass
class RecordingHandler:
    """An InboundHandler that records what it gets; ``reply`` computes the answer, ``delay`` slows it."""

    reply: Callable[[Delivery], str | None] = lambda d: f"收到 {d.msg_type}"
    delay: float = 0.0
    fail: bool = False
    handled: list[Delivery] = field(default_factory=list)
    late: list[tuple[Delivery, str]] = field(default_factory=list)
    late_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, delivery: Delivery) -> str | None:
        self.handled.append(delivery)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("handler failure for the test")
        return self.reply(delivery)

    async def deliver_late(self, delivery: Delivery, reply: str) -> None:
        self.late.append((delivery, reply))
        self.late_arrived.set()
