"""The /wechat edge's checks at their exact limits, each with the status and the reason it answers (the order of
checks in webhooks/views.py): the timestamp is 1–12 ASCII digits, the nonce 1–64 characters, a missing one is
refused as missing (never a 500, never checked as some default value), the timestamp window is inclusive at
``max_clock_skew`` seconds and on for a skew of one second, the body limit counts every chunk of a chunked body and
a body that arrives in pieces is read whole. The clock of the window is pinned by replacing ``time.time`` as the
edge sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from webhooks import WebhookConfig, setup_webhook
from webhooks import views as webhook_views
from webhooks.testing import RecordingHandler, WeChatSender, message_xml, wechat_signature

TOKEN = "edge-token"
APPID = "wx00000000000000edge"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
T0 = 1_764_900_000  # a fixed "now" for the window


async def make(
    aiohttp_client: Any, mode: str = "plain", **config: Any
) -> tuple[TestClient[Any, Any], RecordingHandler, WeChatSender]:
    handler = RecordingHandler()
    aes_key = None if mode == "plain" else AES_KEY
    app = web.Application()
    setup_webhook(
        app, config=WebhookConfig(token=TOKEN, appid=APPID, aes_key=aes_key, **config), handler=handler
    )
    return await aiohttp_client(app), handler, WeChatSender(TOKEN, APPID, aes_key, mode)  # type: ignore[arg-type]


def signed(timestamp: str, nonce: str) -> dict[str, str]:
    return {"signature": wechat_signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def text_xml(content: str = "你好", msg_id: int = 1, create_time: int = T0) -> str:
    fields = {"ToUserName": "gh_edge", "FromUserName": "oEdgeUser", "CreateTime": create_time}
    return message_xml(fields | {"MsgType": "text", "Content": content, "MsgId": msg_id})


async def answer(resp: Any) -> tuple[int, str]:
    return resp.status, await resp.text()


# --- timestamp and nonce in the query --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "accepted"),
    [
        pytest.param("1", True, id="one-digit"),
        pytest.param("123456789012", True, id="12-digits"),
        pytest.param("1234567890123", False, id="13-digits"),
        pytest.param("abc", False, id="letters"),
        pytest.param("12a", False, id="digits-and-a-letter"),
        pytest.param("١٧٦٤٩٠٠٠٠٠", False, id="arabic-indic-digits"),  # digits to Python, not ASCII
        pytest.param("-5", False, id="negative"),
        pytest.param("", False, id="empty"),
    ],
)
async def test_the_timestamp_is_one_to_twelve_ascii_digits(
    aiohttp_client: Any, timestamp: str, accepted: bool
) -> None:
    client, _, _ = await make(aiohttp_client, max_clock_skew=0)  # the window off: only the form counts
    resp = await client.get("/wechat", params=signed(timestamp, "n1") | {"echostr": "e1"})
    assert await answer(resp) == ((200, "e1") if accepted else (403, "missing or malformed timestamp"))


@pytest.mark.parametrize(
    ("nonce", "accepted"),
    [
        pytest.param("n", True, id="one-character"),
        pytest.param("n" * 64, True, id="64-characters"),
        pytest.param("n" * 65, False, id="65-characters"),
        pytest.param("", False, id="empty"),
        pytest.param("随机数", True, id="not-ascii"),
    ],
)
async def test_the_nonce_is_one_to_sixty_four_characters(
    aiohttp_client: Any, nonce: str, accepted: bool
) -> None:
    client, _, _ = await make(aiohttp_client, max_clock_skew=0)
    resp = await client.get("/wechat", params=signed("1409735669", nonce) | {"echostr": "e2"})
    assert await answer(resp) == ((200, "e2") if accepted else (403, "missing or malformed nonce"))


@pytest.mark.parametrize("missing", ["timestamp", "nonce"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_missing_timestamp_or_nonce_is_refused_as_missing(
    aiohttp_client: Any, missing: str, method: str
) -> None:
    client, handler, _ = await make(aiohttp_client, max_clock_skew=0)
    params = {k: v for k, v in signed("1409735669", "n3").items() if k != missing}
    resp = await client.request(method, "/wechat", params=params, data=text_xml().encode())
    assert await answer(resp) == (403, f"missing or malformed {missing}")
    assert handler.handled == []


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_a_missing_signature_is_refused(aiohttp_client: Any, mode: str) -> None:
    client, handler, sender = await make(aiohttp_client, mode, max_clock_skew=0)
    req = sender.build(text_xml(), timestamp=T0, nonce="n4")
    params = {k: v for k, v in req.params.items() if k not in ("signature", "msg_signature")}
    resp = await client.post("/wechat", params=params, data=req.body)
    assert await answer(resp) == (403, "bad signature" if mode == "plain" else "bad msg_signature")
    assert handler.handled == []


# --- the timestamp window ---------------------------------------------------------------------------------------


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_views.time, "time", lambda: float(T0))


@pytest.mark.parametrize(
    ("offset", "skew", "status"),
    [
        pytest.param(-300, 300, 200, id="exactly-the-skew-old"),
        pytest.param(+300, 300, 200, id="exactly-the-skew-ahead"),
        pytest.param(-301, 300, 403, id="a-second-too-old"),
        pytest.param(+301, 300, 403, id="a-second-too-far-ahead"),
        pytest.param(-1, 1, 200, id="skew-1-inside"),
        pytest.param(-2, 1, 403, id="skew-1-outside"),
        pytest.param(-(10**9), 0, 200, id="skew-0-is-off"),
    ],
)
async def test_the_window_is_inclusive_to_the_second(
    aiohttp_client: Any, pinned_clock: None, offset: int, skew: int, status: int
) -> None:
    client, _, _ = await make(aiohttp_client, max_clock_skew=skew)
    resp = await client.get("/wechat", params=signed(str(T0 + offset), "n5") | {"echostr": "e5"})
    assert await answer(resp) == (
        (200, "e5") if status == 200 else (403, "timestamp outside the allowed window")
    )


# --- the body -------------------------------------------------------------------------------------------------------


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]
        await asyncio.sleep(0.02)  # separate reads on the server


async def test_a_chunked_body_is_counted_across_its_chunks(aiohttp_client: Any) -> None:
    client, handler, sender = await make(aiohttp_client, max_body=4096)
    req = sender.build(text_xml("轮" * 3000))
    assert len(req.body) > 4096
    resp = await client.post("/wechat", params=req.params, data=pieces(req.body, 1000))
    assert await answer(resp) == (413, "body too large")
    assert handler.handled == []


async def test_a_declared_length_over_the_limit_is_refused(aiohttp_client: Any) -> None:
    client, handler, sender = await make(aiohttp_client, max_body=1024)
    req = sender.build(text_xml("轮" * 1000))
    resp = await client.post("/wechat", params=req.params, data=req.body)
    assert await answer(resp) == (413, "body too large")
    assert handler.handled == []


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_a_body_that_arrives_in_pieces_is_read_whole(aiohttp_client: Any, mode: str) -> None:
    client, handler, sender = await make(aiohttp_client, mode, max_clock_skew=0)
    req = sender.build(text_xml("我爸中风后走不了路，想要一辆轮椅", msg_id=77), timestamp=int(time.time()))
    resp = await client.post("/wechat", params=req.params, data=pieces(req.body, 37))
    assert resp.status == 200, await resp.text()
    assert [(d.key, d.text) for d in handler.handled] == [("msg:77", "我爸中风后走不了路，想要一辆轮椅")]


async def test_a_message_for_another_appid_is_refused_with_its_reason(aiohttp_client: Any) -> None:
    client, handler, sender = await make(aiohttp_client, "safe", max_clock_skew=0)
    req = sender.build(text_xml(), appid="wxffffffffffffffff")
    assert await answer(await client.post("/wechat", params=req.params, data=req.body)) == (
        403,
        "message for another AppID",
    )
    assert handler.handled == []
