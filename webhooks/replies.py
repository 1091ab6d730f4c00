"""Rendering the bot's answer as WeChat passive-reply XML, safely.

Text goes inside CDATA sections. Three things can break such XML or WeChat's reading of it: control
characters (illegal in XML 1.0), the sequence ``]]>`` (ends a CDATA section early) and length (WeChat
rejects text replies over 2048 bytes). Each is handled here, so any string from the bot renders to XML that
parses and carries the text.
"""

from __future__ import annotations

import re
import time

from .crypto import WeChatAes, sign

MAX_TEXT_BYTES = 2048
ELLIPSIS = "…"

# XML 1.0 forbids C0 controls except tab/newline/CR, surrogates and U+FFFE/U+FFFF; we also drop C1
# controls, tab and CR (WeChat's bubbles show them as garbage). Newline is kept.
_UNWANTED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """Drop control and XML-illegal characters, keeping newlines (CRLF and CR become LF)."""
    return _UNWANTED.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def cap_text(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """Cut ``text`` at a character boundary so that its UTF-8 form fits ``limit`` bytes, marking the cut."""
    if len(text.encode("utf-8")) <= limit:
        return text
    budget = limit - len(ELLIPSIS.encode("utf-8"))
    cut = text.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return cut + ELLIPSIS


def cdata(value: str) -> str:
    """A CDATA section holding ``value``, split wherever ``value`` contains ``]]>``."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_text_reply(*, to_user: str, from_user: str, text: str, create_time: int | None = None) -> str:
    """The passive text reply: ``to_user`` is the resident's openid, ``from_user`` the account id."""
    body = cap_text(clean_text(text))
    now = int(time.time()) if create_time is None else create_time
    return (
        "<xml>"
        f"<ToUserName>{cdata(clean_text(to_user))}</ToUserName>"
        f"<FromUserName>{cdata(clean_text(from_user))}</FromUserName>"
        f"<CreateTime>{now}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(body)}</Content>"
        "</xml>"
    )


def encrypt_reply(xml: str, *, aes: WeChatAes, token: str, nonce: str, timestamp: int | None = None) -> str:
    """Wrap a reply for compatible/safe mode: Encrypt, MsgSignature, TimeStamp, Nonce."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    encrypted = aes.encrypt(xml)
    signature = sign(token, ts, nonce, encrypted)
    return (
        "<xml>"
        f"<Encrypt>{cdata(encrypted)}</Encrypt>"
        f"<MsgSignature>{cdata(signature)}</MsgSignature>"
        f"<TimeStamp>{ts}</TimeStamp>"
        f"<Nonce>{cdata(nonce)}</Nonce>"
        "</xml>"
    )
