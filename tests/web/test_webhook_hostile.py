"""Hostile input at /wechat: each gets a defined status and never reaches the handler (so no row is
written); hostile reply text still renders to XML that parses and carries the text."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from webhooks import MAX_TEXT_BYTES, WebhookConfig, render_text_reply, setup_webhook, sign
from webhooks.testing import RecordingHandler, WeChatSender, message_xml

TOKEN = "hostile-token"
APPID = "wx00000000000hostile"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_hostile0001"
OPENID = "oHostileUser"


async def make(
    aiohttp_client: Any, mode: str, handler: RecordingHandler | None = None, **config: Any
) -> tuple[TestClient[Any, Any], RecordingHandler, WeChatSender]:
    handler = handler or RecordingHandler()
    aes_key = None if mode == "plain" else AES_KEY
    app = web.Application()
    setup_webhook(
        app, config=WebhookConfig(token=TOKEN, appid=APPID, aes_key=aes_key, **config), handler=handler
    )
    return await aiohttp_client(app), handler, WeChatSender(TOKEN, APPID, aes_key, mode)  # type: ignore[arg-type]


def text_xml(content: str = "你好", msg_id: int = 1) -> str:
    return message_xml(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": OPENID,
            "CreateTime": int(time.time()),
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
        }
    )


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName>gh_hostile0001</ToUserName><FromUserName>oHostileUser</FromUserName>
<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>&lol9;</Content><MsgId>66</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_hostile0001</ToUserName><FromUserName>oHostileUser</FromUserName>
<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content><MsgId>67</MsgId></xml>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">
<xml><ToUserName>gh_hostile0001</ToUserName><FromUserName>oHostileUser</FromUserName>
<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>68</MsgId></xml>"""

GBK_BODY = (
    "<xml><ToUserName>gh_hostile0001</ToUserName><FromUserName>oHostileUser</FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>我要轮椅</Content><MsgId>69</MsgId></xml>"
).encode("gbk")


def without(field: str) -> str:
    fields: dict[str, Any] = {
        "ToUserName": ACCOUNT,
        "FromUserName": OPENID,
        "CreateTime": 1700000000,
        "MsgType": "text",
        "Content": "x",
        "MsgId": 70,
    }
    fields.pop(field)
    return message_xml(fields)


HOSTILE_BODIES: list[Any] = [
    pytest.param(b"<xml><ToUserName>gh</ToUserName><FromUserName>", id="truncated"),
    pytest.param(b"this is not xml at all", id="not-xml"),
    pytest.param(b"", id="empty"),
    pytest.param(BILLION_LAUGHS.encode(), id="billion-laughs"),
    pytest.param(EXTERNAL_ENTITY.encode(), id="external-entity"),
    pytest.param(EXTERNAL_DTD.encode(), id="external-dtd"),
    pytest.param(GBK_BODY, id="non-utf8"),
    pytest.param(b"\xff\xfe<\x00x\x00m\x00l\x00>\x00", id="utf16-bom"),
    pytest.param(without("FromUserName").encode(), id="no-FromUserName"),
    pytest.param(without("MsgType").encode(), id="no-MsgType"),
    pytest.param(without("CreateTime").encode(), id="no-CreateTime"),
    pytest.param(
        text_xml().replace("<CreateTime>", "<CreateTime>soon").encode(), id="CreateTime-not-a-number"
    ),
    pytest.param(
        text_xml().replace("<xml>", "<xml><FromUserName>oOther</FromUserName>").encode(), id="two-senders"
    ),
    pytest.param(
        text_xml().replace("<xml>", "<message>").replace("</xml>", "</message>").encode(), id="wrong-root"
    ),
    pytest.param(
        message_xml(
            {"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": 1700000000, "MsgType": "event"}
        ).encode(),
        id="event-without-Event",
    ),
]


@pytest.mark.parametrize("body", HOSTILE_BODIES)
async def test_hostile_plain_body_is_bad_request(aiohttp_client: Any, body: bytes) -> None:
    client, handler, sender = await make(aiohttp_client, "plain")
    started = time.monotonic()
    resp = await client.post("/wechat", params=sender.query(), data=body)
    assert resp.status == 400
    assert time.monotonic() - started < 2
    assert handler.handled == []


@pytest.mark.parametrize("body", [p for p in HOSTILE_BODIES if p.id not in ("non-utf8", "utf16-bom")])
async def test_hostile_xml_inside_a_valid_envelope_is_bad_request(aiohttp_client: Any, body: bytes) -> None:
    """Signed and encrypted correctly, but the plain XML inside is hostile: refused all the same.
    (wechatpy's encryptor only carries text; the non-UTF-8 payload has its own test below.)"""
    client, handler, sender = await make(aiohttp_client, "safe")
    resp = await client.post("/wechat", params=(req := sender.build(body.decode())).params, data=req.body)
    assert resp.status == 400
    assert handler.handled == []


async def test_non_utf8_payload_inside_envelope_is_bad_request(aiohttp_client: Any) -> None:
    client, handler, sender = await make(aiohttp_client, "safe")
    # The envelope built by hand around GBK bytes, following WeChat's documented layout.
    key = base64.b64decode(AES_KEY + "=")
    plain = b"0123456789abcdef" + struct.pack(">I", len(GBK_BODY)) + GBK_BODY + APPID.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    envelope = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    params = sender.query()
    params |= {
        "encrypt_type": "aes",
        "msg_signature": sign(TOKEN, params["timestamp"], params["nonce"], envelope),
    }
    body = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{envelope}]]></Encrypt></xml>"
    )
    resp = await client.post("/wechat", params=params, data=body.encode())
    assert resp.status == 400
    assert handler.handled == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BILLION_LAUGHS.encode(), id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY.encode(), id="external-entity"),
        pytest.param(b"<xml><Encrypt>", id="truncated"),
        pytest.param(GBK_BODY, id="non-utf8"),
        pytest.param(b"<xml><Encrypt><![CDATA[not base64 !!]]></Encrypt></xml>", id="garbage-encrypt"),
    ],
)
async def test_hostile_outer_envelope_is_refused(aiohttp_client: Any, body: bytes) -> None:
    client, handler, sender = await make(aiohttp_client, "safe")
    params = sender.query()
    # msg_signature over the garbage Encrypt, so the garbage gets as far as decryption
    params |= {
        "encrypt_type": "aes",
        "msg_signature": sign(TOKEN, params["timestamp"], params["nonce"], "not base64 !!"),
    }
    resp = await client.post("/wechat", params=params, data=body)
    assert resp.status == 400
    assert handler.handled == []


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_oversize_body_is_refused_with_413(aiohttp_client: Any, mode: str) -> None:
    client, handler, sender = await make(aiohttp_client, mode, max_body=2048)
    req = sender.build(text_xml("轮" * 2000))
    assert len(req.body) > 2048
    resp = await client.post("/wechat", params=req.params, data=req.body)
    assert resp.status == 413
    assert handler.handled == []


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_oversize_body_is_refused_before_it_all_arrived(aiohttp_client: Any, framing: str) -> None:
    """The sender sends 8 KiB of a (declared or chunked) 4 MiB body and then waits: the answer comes."""
    client, handler, sender = await make(aiohttp_client, "plain", max_body=4096)
    query = "&".join(f"{k}={v}" for k, v in sender.query().items())
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        head = f"POST /wechat?{query} HTTP/1.1\r\nHost: test\r\nContent-Type: text/xml\r\n"
        if framing == "chunked":
            writer.write(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(8):
                writer.write(b"400\r\n" + b"a" * 1024 + b"\r\n")
        else:
            writer.write(head.encode() + b"Content-Length: 4194304\r\n\r\n" + b"a" * 8192)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=3)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 413")
    assert handler.handled == []


async def test_body_at_the_limit_is_accepted(aiohttp_client: Any) -> None:
    xml = text_xml("好")
    client, handler, sender = await make(aiohttp_client, "plain", max_body=len(xml.encode()))
    resp = await client.post("/wechat", params=(req := sender.build(xml)).params, data=req.body)
    assert resp.status == 200
    assert len(handler.handled) == 1


# --- hostile reply text ------------------------------------------------------------------------------

HOSTILE_REPLIES = [
    pytest.param("结束]]>注入<xml>&amp;", "结束]]>注入<xml>&amp;", id="cdata-end"),
    pytest.param("]]>]]>]]]]>", "]]>]]>]]]]>", id="many-cdata-ends"),
    pytest.param("a\x00b\x07c\x1bd\x7fe\x85f", "abcdef", id="control-chars"),
    pytest.param("第一行\r\n第二行\r第三行\n\t完", "第一行\n第二行\n第三行\n完", id="newlines-kept"),
    pytest.param("bad \ufffe\uffff end", "bad  end", id="xml-illegal-code-points"),
]


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
@pytest.mark.parametrize(("reply", "shown"), HOSTILE_REPLIES)
async def test_hostile_reply_text_renders_to_parseable_xml(
    aiohttp_client: Any, mode: str, reply: str, shown: str
) -> None:
    client, handler, sender = await make(aiohttp_client, mode, RecordingHandler(reply=lambda d: reply))
    resp = await client.post("/wechat", params=(req := sender.build(text_xml())).params, data=req.body)
    assert resp.status == 200
    fields = sender.open_reply(await resp.text())
    assert fields is not None
    assert fields["Content"] == shown
    assert fields["ToUserName"] == OPENID


async def test_long_reply_is_cut_at_a_character_boundary(aiohttp_client: Any) -> None:
    long = "您好，" + "轮椅申请已受理。" * 400  # ~9.6 kB of UTF-8
    client, handler, sender = await make(aiohttp_client, "safe", RecordingHandler(reply=lambda d: long))
    resp = await client.post("/wechat", params=(req := sender.build(text_xml())).params, data=req.body)
    fields = sender.open_reply(await resp.text())
    assert fields is not None
    content = fields["Content"]
    assert len(content.encode("utf-8")) <= MAX_TEXT_BYTES
    assert len(content.encode("utf-8")) > MAX_TEXT_BYTES - 4
    assert content.endswith("…")
    assert long.startswith(content[:-1])


@pytest.mark.parametrize(
    "text",
    ["普通回复", "x" * 2048, "x" * 2049, "好" * 683, "好" * 682 + "x", "🙂" * 600, "]]>" * 700],
)
def test_rendered_reply_always_parses_and_fits(text: str) -> None:
    xml = render_text_reply(to_user="o]]>user", from_user=ACCOUNT, text=text, create_time=1700000000)
    root = ET.fromstring(xml)
    content = root.findtext("Content") or ""
    assert root.findtext("ToUserName") == "o]]>user"
    assert len(content.encode("utf-8")) <= MAX_TEXT_BYTES
    if len(text.encode("utf-8")) <= MAX_TEXT_BYTES:
        assert content == text
    else:
        assert content.endswith("…") and text.startswith(content[:-1])
