"""The /wechat edge speaks WeChat's protocol: verification, the three modes, every message type,
WeChat's published sample, the timestamp window, replays and retries, the reply budget.

Requests are built with wechatpy's WeChatCrypto (webhooks.testing.WeChatSender), not with the edge's own
crypto, against a small app that mounts only the webhook and a recording handler.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.helpers import TEST_REDIS_URL
from webhooks import (
    Delivery,
    MemoryNonceStore,
    RedisNonceStore,
    WebhookConfig,
    setup_webhook,
)
from webhooks.testing import RecordingHandler, WeChatSender, message_xml, wechat_signature

TOKEN = "t0ken-for-tests"
APPID = "wx0123456789abcdef"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
ACCOUNT = "gh_0123456789ab"
OPENID = "oUser-123456789"
MODES = ["plain", "compatible", "safe"]

ClientFactory = Callable[..., Awaitable[tuple[TestClient[Any, Any], RecordingHandler, WeChatSender]]]


@pytest.fixture
def make_client(aiohttp_client: Any) -> ClientFactory:
    async def make(
        mode: str = "plain",
        handler: RecordingHandler | None = None,
        nonces: Any = None,
        **config: Any,
    ) -> tuple[TestClient[Any, Any], RecordingHandler, WeChatSender]:
        handler = handler or RecordingHandler()
        aes_key = None if mode == "plain" else AES_KEY
        cfg = WebhookConfig(token=TOKEN, appid=APPID, aes_key=aes_key, **config)
        app = web.Application()
        setup_webhook(app, config=cfg, handler=handler, nonces=nonces)
        client = await aiohttp_client(app)
        return client, handler, WeChatSender(token=TOKEN, appid=APPID, aes_key=aes_key, mode=mode)  # type: ignore[arg-type]

    return make


async def post(client: TestClient[Any, Any], request: Any) -> tuple[int, str]:
    resp = await client.post("/wechat", params=request.params, data=request.body)
    return resp.status, await resp.text()


def base(msg_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "ToUserName": ACCOUNT,
        "FromUserName": OPENID,
        "CreateTime": int(time.time()),
        "MsgType": msg_type,
    } | fields


# --- GET verification -----------------------------------------------------------------------------


async def test_get_with_valid_signature_echoes_echostr(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client()
    resp = await client.get("/wechat", params=sender.query() | {"echostr": "8432716532"})
    assert resp.status == 200
    assert await resp.text() == "8432716532"
    assert resp.content_type == "text/plain"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda q: q | {"signature": "0" * 40}, id="wrong-signature"),
        pytest.param(lambda q: {k: v for k, v in q.items() if k != "signature"}, id="no-signature"),
        pytest.param(lambda q: q | {"nonce": q["nonce"] + "1"}, id="nonce-changed"),
        pytest.param(lambda q: {k: v for k, v in q.items() if k != "timestamp"}, id="no-timestamp"),
    ],
)
async def test_get_with_bad_signature_is_forbidden(make_client: ClientFactory, tamper: Any) -> None:
    client, handler, sender = await make_client()
    resp = await client.get("/wechat", params=tamper(sender.query()) | {"echostr": "8432716532"})
    assert resp.status == 403
    assert "8432716532" not in await resp.text()


async def test_get_with_stale_timestamp_is_forbidden(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client()
    resp = await client.get(
        "/wechat", params=sender.query(timestamp=int(time.time()) - 3600) | {"echostr": "x1"}
    )
    assert resp.status == 403


# --- every message type in every mode -----------------------------------------------------------

NOW = int(time.time())

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "text",
        base("text", Content="我爸中风后走不了路，想要一辆轮椅", MsgId=6054768590064713728),
        {
            "key": "msg:6054768590064713728",
            "msg_type": "text",
            "event": None,
            "text": "我爸中风后走不了路，想要一辆轮椅",
            "media": {},
        },
    ),
    (
        "voice-with-recognition",
        base("voice", MediaId="m-voice-1", Format="amr", Recognition="查询进度", MsgId=1001),
        {
            "key": "msg:1001",
            "msg_type": "voice",
            "text": "查询进度",
            "media": {"media_id": "m-voice-1", "format": "amr"},
        },
    ),
    (
        "voice-without-recognition",
        base("voice", MediaId="m-voice-2", Format="amr", Recognition="", MsgId=1002),
        {
            "key": "msg:1002",
            "msg_type": "voice",
            "text": "",
            "media": {"media_id": "m-voice-2", "format": "amr"},
        },
    ),
    (
        "image",
        base("image", PicUrl="http://mmbiz.qpic.cn/p.jpg", MediaId="m-img", MsgId=1003),
        {
            "key": "msg:1003",
            "msg_type": "image",
            "text": None,
            "media": {"pic_url": "http://mmbiz.qpic.cn/p.jpg", "media_id": "m-img"},
        },
    ),
    (
        "location",
        base("location", Location_X=22.938, Location_Y=113.672, Scale=15, Label="厚街镇康乐南路", MsgId=1004),
        {
            "key": "msg:1004",
            "msg_type": "location",
            "text": None,
            "media": {"lat": 22.938, "lon": 113.672, "scale": 15.0, "label": "厚街镇康乐南路"},
        },
    ),
    (
        "link",
        base("link", Title="轮椅申请指南", Description="说明", Url="https://example.org/guide", MsgId=1005),
        {
            "key": "msg:1005",
            "msg_type": "link",
            "text": "轮椅申请指南\nhttps://example.org/guide",
            "media": {"title": "轮椅申请指南", "description": "说明", "url": "https://example.org/guide"},
        },
    ),
    (
        "video",
        base("video", MediaId="m-vid", ThumbMediaId="m-thumb", MsgId=1006),
        {
            "key": "msg:1006",
            "msg_type": "video",
            "text": None,
            "media": {"media_id": "m-vid", "thumb_media_id": "m-thumb"},
        },
    ),
    (
        "shortvideo",
        base("shortvideo", MediaId="m-sv", ThumbMediaId="m-sv-thumb", MsgId=1007),
        {
            "key": "msg:1007",
            "msg_type": "shortvideo",
            "text": None,
            "media": {"media_id": "m-sv", "thumb_media_id": "m-sv-thumb"},
        },
    ),
    (
        "unknown-type",
        base("miniprogrampage", Title="小程序", AppId="wxapp", MsgId=1008),
        {"key": "msg:1008", "msg_type": "unknown", "text": None, "media": {"type": "miniprogrampage"}},
    ),
    (
        "subscribe",
        base("event", Event="subscribe", EventKey=""),
        {
            "key": f"evt:{OPENID}:{NOW}:subscribe",
            "msg_type": "event",
            "event": "subscribe",
            "text": None,
            "media": {"event_key": ""},
        },
    ),
    (
        "subscribe-by-qr-code",
        base("event", Event="subscribe", EventKey="qrscene_town-houjie", Ticket="TICKET1"),
        {
            "key": f"evt:{OPENID}:{NOW}:subscribe",
            "event": "subscribe",
            "text": "qrscene_town-houjie",
            "media": {"event_key": "qrscene_town-houjie", "scene": "town-houjie", "ticket": "TICKET1"},
        },
    ),
    (
        "unsubscribe",
        base("event", Event="unsubscribe"),
        {"key": f"evt:{OPENID}:{NOW}:unsubscribe", "event": "unsubscribe", "text": None, "media": {}},
    ),
    (
        "click",
        base("event", Event="CLICK", EventKey="MENU_PROGRESS"),
        {
            "key": f"evt:{OPENID}:{NOW}:click",
            "event": "click",
            "text": "MENU_PROGRESS",
            "media": {"event_key": "MENU_PROGRESS"},
        },
    ),
    (
        "view",
        base("event", Event="VIEW", EventKey="https://example.org/cases", MenuId="7"),
        {
            "event": "view",
            "text": "https://example.org/cases",
            "media": {
                "event_key": "https://example.org/cases",
                "url": "https://example.org/cases",
                "menu_id": "7",
            },
        },
    ),
    (
        "scan",
        base("event", Event="SCAN", EventKey="town-changping", Ticket="TICKET2"),
        {
            "event": "scan",
            "text": "town-changping",
            "media": {"event_key": "town-changping", "scene": "town-changping", "ticket": "TICKET2"},
        },
    ),
    (
        "location-event",
        base("event", Event="LOCATION", Latitude=23.0205, Longitude=113.7518, Precision=65.0),
        {"event": "location", "text": None, "media": {"lat": 23.0205, "lon": 113.7518, "precision": 65.0}},
    ),
    (
        "templatesendjobfinish",
        base("event", Event="TEMPLATESENDJOBFINISH", MsgID=200163836, Status="success"),
        {
            "key": f"evt:{OPENID}:{NOW}:templatesendjobfinish",
            "event": "templatesendjobfinish",
            "text": None,
            "media": {"status": "success", "msg_id": "200163836"},
        },
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fields", "expected"), [pytest.param(f, e, id=n) for n, f, e in CASES])
async def test_message_becomes_delivery_and_gets_passive_reply(
    make_client: ClientFactory, mode: str, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    client, handler, sender = await make_client(mode)
    fields = fields | {"CreateTime": NOW}
    xml = message_xml(fields)
    status, body = await post(client, sender.build(xml))
    assert status == 200, body

    assert len(handler.handled) == 1
    delivery = handler.handled[0]
    assert delivery.openid == OPENID
    assert delivery.account == ACCOUNT
    assert delivery.create_time == datetime.fromtimestamp(NOW, tz=UTC)
    assert delivery.raw_xml == xml
    for name, value in expected.items():
        assert getattr(delivery, name) == value, name

    reply = sender.open_reply(body)
    assert reply is not None
    assert reply["ToUserName"] == OPENID
    assert reply["FromUserName"] == ACCOUNT
    assert reply["MsgType"] == "text"
    assert reply["Content"] == f"收到 {delivery.msg_type}"
    if mode != "plain":
        assert "<Encrypt>" in body and "收到" not in body


@pytest.mark.parametrize("mode", MODES)
async def test_handler_returning_none_gets_success(make_client: ClientFactory, mode: str) -> None:
    client, handler, sender = await make_client(mode, RecordingHandler(reply=lambda d: None))
    status, body = await post(client, sender.build(message_xml(base("event", Event="TEMPLATESENDJOBFINISH"))))
    assert (status, body) == (200, "success")
    assert handler.handled[0].event == "templatesendjobfinish"


# --- WeChat's published sample ---------------------------------------------------------------------

SAMPLE_TOKEN = "spamtest"
SAMPLE_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2Ld"
    "JF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5V"
    "Tjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCS"
    "UdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9Ghg"
    "lF2PE="
)
SAMPLE_PLAIN_FIELDS = (
    "<ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
    "<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId>"
)


async def sample_client(aiohttp_client: Any, **config: Any) -> tuple[TestClient[Any, Any], RecordingHandler]:
    handler = RecordingHandler(reply=lambda d: None)
    app = web.Application()
    cfg = WebhookConfig(token=SAMPLE_TOKEN, appid=SAMPLE_APPID, aes_key=SAMPLE_AES_KEY, **config)
    setup_webhook(app, config=cfg, handler=handler)
    return await aiohttp_client(app), handler


def sample_params(**extra: str) -> dict[str, str]:
    return {
        "signature": wechat_signature(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE),
        "timestamp": SAMPLE_TIMESTAMP,
        "nonce": SAMPLE_NONCE,
        "encrypt_type": "aes",
        "msg_signature": SAMPLE_MSG_SIGNATURE,
    } | extra


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            f"<xml>{SAMPLE_PLAIN_FIELDS}<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>",
            id="compatible",
        ),
        pytest.param(
            "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
            f"<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>",
            id="safe",
        ),
    ],
)
async def test_wechat_published_sample_decrypts_and_verifies(aiohttp_client: Any, body: str) -> None:
    client, handler = await sample_client(aiohttp_client, max_clock_skew=0)
    resp = await client.post("/wechat", params=sample_params(), data=body.encode())
    assert (resp.status, await resp.text()) == (200, "success")
    (delivery,) = handler.handled
    assert delivery.key == "msg:6054768590064713728"
    assert delivery.openid == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert delivery.account == "gh_10f6c3c3ac5a"
    assert delivery.msg_type == "text"
    assert delivery.text == "abcdteT"
    assert delivery.create_time == datetime(2014, 9, 3, 9, 14, 28, tzinfo=UTC)


async def test_published_sample_is_stale_with_the_default_window(aiohttp_client: Any) -> None:
    client, handler = await sample_client(aiohttp_client)
    body = f"<xml>{SAMPLE_PLAIN_FIELDS}<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"
    resp = await client.post("/wechat", params=sample_params(), data=body.encode())
    assert resp.status == 403
    assert handler.handled == []


async def test_published_sample_with_a_changed_byte_fails_msg_signature(aiohttp_client: Any) -> None:
    client, handler = await sample_client(aiohttp_client, max_clock_skew=0)
    tampered = SAMPLE_ENCRYPT.replace("hyzAe4", "hyzAe5")
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{tampered}]]></Encrypt></xml>"
    resp = await client.post("/wechat", params=sample_params(), data=body.encode())
    assert resp.status == 403
    assert handler.handled == []


# --- timestamp window --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "skew", "status"),
    [
        pytest.param(-301, 300, 403, id="stale"),
        pytest.param(+301, 300, 403, id="future"),
        pytest.param(-290, 300, 200, id="just-inside"),
        pytest.param(+290, 300, 200, id="future-inside"),
        pytest.param(-10 * 365 * 86400, 0, 200, id="check-off"),
    ],
)
async def test_timestamp_window(make_client: ClientFactory, offset: int, skew: int, status: int) -> None:
    client, handler, sender = await make_client("safe", max_clock_skew=skew)
    req = sender.build(
        message_xml(base("text", Content="你好", MsgId=42)), timestamp=int(time.time()) + offset
    )
    got, _ = await post(client, req)
    assert got == status
    assert len(handler.handled) == (1 if status == 200 else 0)


# --- signatures, AppID, Encrypt --------------------------------------------------------------------


async def test_plain_post_with_bad_signature_is_forbidden(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("plain")
    req = sender.build(message_xml(base("text", Content="你好", MsgId=1)))
    req.params["signature"] = wechat_signature("another-token", req.params["timestamp"], req.params["nonce"])
    assert (await post(client, req))[0] == 403
    del req.params["signature"]
    assert (await post(client, req))[0] == 403
    assert handler.handled == []


@pytest.mark.parametrize("mode", ["compatible", "safe"])
async def test_bad_msg_signature_is_forbidden(make_client: ClientFactory, mode: str) -> None:
    client, handler, sender = await make_client(mode)
    req = sender.build(message_xml(base("text", Content="你好", MsgId=2)))
    req.params["msg_signature"] = "f" * 40
    assert (await post(client, req))[0] == 403
    req.params.pop("msg_signature")
    assert (await post(client, req))[0] == 403
    assert handler.handled == []


@pytest.mark.parametrize("mode", ["compatible", "safe"])
async def test_payload_for_another_appid_is_forbidden(make_client: ClientFactory, mode: str) -> None:
    client, handler, sender = await make_client(mode)
    req = sender.build(message_xml(base("text", Content="你好", MsgId=3)), appid="wxffffffffffffffff")
    status, body = await post(client, req)
    assert status == 403
    assert "AppID" in body
    assert handler.handled == []


async def test_safe_mode_without_encrypt_is_bad_request(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("safe")
    req = sender.build(message_xml(base("text", Content="你好", MsgId=4)))
    req.body = message_xml(base("text", Content="你好", MsgId=4)).encode()
    assert (await post(client, req))[0] == 400
    assert handler.handled == []


async def test_plaintext_post_refused_when_aes_key_configured(make_client: ClientFactory) -> None:
    """With an EncodingAESKey configured, an unsigned plaintext body is a downgrade, not a message."""
    client, handler, sender = await make_client("safe")
    plain = WeChatSender(token=TOKEN, appid=APPID)
    assert (await post(client, plain.build(message_xml(base("text", Content="你好", MsgId=5)))))[0] == 403
    assert handler.handled == []


async def test_encrypted_post_without_configured_key_is_bad_request(make_client: ClientFactory) -> None:
    client, handler, _ = await make_client("plain")
    safe = WeChatSender(token=TOKEN, appid=APPID, aes_key=AES_KEY, mode="safe")
    assert (await post(client, safe.build(message_xml(base("text", Content="你好", MsgId=6)))))[0] == 400
    assert handler.handled == []


# --- replays and retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_true_retry_is_accepted_with_the_same_answer(make_client: ClientFactory, mode: str) -> None:
    client, handler, sender = await make_client(mode)
    req = sender.build(message_xml(base("text", Content="查询进度", MsgId=777)))
    first = await post(client, req)
    again = await post(client, req)
    assert first[0] == again[0] == 200
    assert sender.open_reply(first[1]) is not None
    assert sender.open_reply(again[1])["Content"] == sender.open_reply(first[1])["Content"]  # type: ignore[index]
    assert [d.key for d in handler.handled] == ["msg:777", "msg:777"]  # the handler dedupes by key


@pytest.mark.parametrize("mode", MODES)
async def test_replayed_nonce_with_another_body_is_refused(make_client: ClientFactory, mode: str) -> None:
    client, handler, sender = await make_client(mode)
    ts, nonce = str(int(time.time())), "5551212"
    first = sender.build(message_xml(base("text", Content="你好", MsgId=900)), timestamp=ts, nonce=nonce)
    other = sender.build(message_xml(base("text", Content="转账给我", MsgId=901)), timestamp=ts, nonce=nonce)
    assert (await post(client, first))[0] == 200
    assert (await post(client, other))[0] == 403
    assert (await post(client, other))[0] == 403  # refusing does not turn the replay into a "known" body
    assert [d.key for d in handler.handled] == ["msg:900"]


async def test_nonce_of_a_refused_request_is_not_burnt(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("plain")
    ts, nonce = str(int(time.time())), "8675309"
    broken = sender.build("<xml><FromUserName>", timestamp=ts, nonce=nonce)
    good = sender.build(message_xml(base("text", Content="你好", MsgId=902)), timestamp=ts, nonce=nonce)
    assert (await post(client, broken))[0] == 400
    assert (await post(client, good))[0] == 200
    assert [d.key for d in handler.handled] == ["msg:902"]


# --- the reply budget ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_slow_handler_gets_success_in_budget_and_reply_goes_late(
    make_client: ClientFactory, mode: str
) -> None:
    handler = RecordingHandler(reply=lambda d: "您的诉求已登记，编号 MS20261123-0007", delay=1.0)
    client, handler, sender = await make_client(mode, handler, reply_budget=0.2)
    started = time.monotonic()
    status, body = await post(client, sender.build(message_xml(base("text", Content="轮椅", MsgId=31))))
    elapsed = time.monotonic() - started
    assert (status, body) == (200, "success")
    assert elapsed < 0.9  # answered before the handler finished
    assert handler.late == []
    await asyncio.wait_for(handler.late_arrived.wait(), timeout=3)
    ((delivery, reply),) = handler.late
    assert delivery.key == "msg:31"
    assert reply == "您的诉求已登记，编号 MS20261123-0007"


async def test_fast_handler_reply_is_passive_and_not_late(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("safe", RecordingHandler(delay=0.05), reply_budget=1.0)
    status, body = await post(client, sender.build(message_xml(base("text", Content="轮椅", MsgId=32))))
    assert sender.open_reply(body)["Content"] == "收到 text"  # type: ignore[index]
    await asyncio.sleep(0.1)
    assert handler.late == []


async def test_concurrent_retry_joins_running_attempt(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("safe", RecordingHandler(delay=0.3), reply_budget=1.0)
    req = sender.build(message_xml(base("text", Content="轮椅", MsgId=33)))
    results = await asyncio.gather(post(client, req), post(client, req), post(client, req))
    assert len(handler.handled) == 1
    assert [sender.open_reply(body)["Content"] for _, body in results] == ["收到 text"] * 3  # type: ignore[index]
    assert handler.late == []


async def test_slow_retry_storm_delivers_late_exactly_once(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("plain", RecordingHandler(delay=1.0), reply_budget=0.1)
    req = sender.build(message_xml(base("text", Content="轮椅", MsgId=34)))
    results = await asyncio.gather(*(post(client, req) for _ in range(3)))
    assert results == [(200, "success")] * 3
    await asyncio.wait_for(handler.late_arrived.wait(), timeout=3)
    await asyncio.sleep(0.1)
    assert len(handler.handled) == 1
    assert len(handler.late) == 1


async def test_failing_handler_answers_success_and_keeps_serving(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("plain", RecordingHandler(fail=True))
    assert await post(client, sender.build(message_xml(base("text", Content="a", MsgId=35)))) == (
        200,
        "success",
    )
    handler.fail = False
    status, body = await post(client, sender.build(message_xml(base("text", Content="b", MsgId=36))))
    assert sender.open_reply(body)["Content"] == "收到 text"  # type: ignore[index]
    assert handler.late == []


async def test_shutdown_waits_for_running_handler_and_delivers_late(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client("plain", RecordingHandler(delay=0.4), reply_budget=0.1)
    assert await post(client, sender.build(message_xml(base("text", Content="轮椅", MsgId=37)))) == (
        200,
        "success",
    )
    assert handler.late == []
    await client.close()  # runs the cleanup context
    assert [(d.key, r) for d, r in handler.late] == [("msg:37", "收到 text")]


async def test_shutdown_cancels_tasks_past_the_grace_period(make_client: ClientFactory) -> None:
    client, handler, sender = await make_client(
        "plain", RecordingHandler(delay=30), reply_budget=0.1, shutdown_grace=0.2
    )
    assert await post(client, sender.build(message_xml(base("text", Content="轮椅", MsgId=38)))) == (
        200,
        "success",
    )
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 5
    assert handler.late == []


# --- nonce stores --------------------------------------------------------------------------------------


async def test_memory_nonce_store_expires_and_stays_bounded() -> None:
    now = [1000.0]
    store = MemoryNonceStore(max_entries=3, clock=lambda: now[0])
    assert await store.claim("n1", "1", "fp-a", ttl=60) is None
    assert await store.claim("n1", "1", "fp-b", ttl=60) == "fp-a"
    assert await store.seen("n1", "1", ttl=60) is True
    assert await store.seen("n1", "2", ttl=60) is False
    now[0] += 61
    assert await store.claim("n1", "1", "fp-b", ttl=60) is None
    for i in range(10):
        await store.claim(f"x{i}", "1", "fp", ttl=60)
    assert len(store) == 3


@pytest.fixture
async def redis_client() -> Any:
    import redis.asyncio as redis_asyncio

    # reachability is checked by tests/conftest.py require_redis (the test's `redis` marker)
    client = redis_asyncio.Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_redis_nonce_store_shares_nonces_between_workers(
    redis_client: Any, make_client: ClientFactory
) -> None:
    prefix = f"test:wechat:nonce:{time.time_ns()}:"
    try:
        store = RedisNonceStore(redis_client, prefix=prefix)
        assert await store.claim("n1", "1", "fp-a", ttl=30) is None
        assert await store.claim("n1", "1", "fp-b", ttl=30) == "fp-a"
        assert 0 < await redis_client.ttl(f"{prefix}1:n1") <= 30
        assert await store.seen("n2", "1", ttl=30) is False
        assert await store.seen("n2", "1", ttl=30) is True

        # Two workers sharing Redis: a replay with another body at the second worker is refused.
        worker_a, _, sender = await make_client("safe", nonces=RedisNonceStore(redis_client, prefix=prefix))
        worker_b, handler_b, _ = await make_client(
            "safe", nonces=RedisNonceStore(redis_client, prefix=prefix)
        )
        ts, nonce = str(int(time.time())), "424242"
        first = sender.build(message_xml(base("text", Content="你好", MsgId=50)), timestamp=ts, nonce=nonce)
        assert (await post(worker_a, first))[0] == 200
        assert (await post(worker_b, first))[0] == 200  # retry landing on another worker
        other = sender.build(message_xml(base("text", Content="伪造", MsgId=51)), timestamp=ts, nonce=nonce)
        assert (await post(worker_b, other))[0] == 403
        assert [d.key for d in handler_b.handled] == ["msg:50"]
    finally:
        keys = [k async for k in redis_client.scan_iter(match=prefix + "*")]
        if keys:
            await redis_client.delete(*keys)


def test_delivery_is_frozen() -> None:
    delivery = Delivery(
        key="msg:1",
        openid=OPENID,
        account=ACCOUNT,
        msg_type="text",
        event=None,
        text="x",
        media={},
        create_time=datetime.now(UTC),
        raw_xml="<xml/>",
    )
    with pytest.raises(AttributeError):
        delivery.text = "y"  # type: ignore[misc]
    assert replace(delivery, text="y").text == "y"


# --- interop with the WeChat simulator's protocol module -----------------------------------------------


@pytest.mark.parametrize(
    ("sim_mode", "mode"), [("plain", "plain"), ("compat", "compatible"), ("safe", "safe")]
)
async def test_simulator_requests_are_accepted_and_replies_open(
    make_client: ClientFactory, sim_mode: str, mode: str
) -> None:
    from wechat_sim import protocol

    client, handler, _ = await make_client(mode, RecordingHandler(reply=lambda d: "已收到]]>您的消息"))
    now = int(time.time())
    xml = protocol.text_message(
        to_user=ACCOUNT, from_user=OPENID, content="查询进度", msg_id=8801, create_time=now
    )
    params, body = protocol.build_request(
        xml,
        mode=sim_mode,
        token=TOKEN,
        timestamp=now,
        nonce=protocol.new_nonce(),
        appid=APPID,
        aes_key=None if mode == "plain" else AES_KEY,
    )
    resp = await client.post("/wechat", params=params, data=body)
    assert resp.status == 200
    reply = await resp.text()
    if mode != "plain":
        reply = protocol.decrypt_reply(reply, token=TOKEN, aes_key=AES_KEY, appid=APPID)
    assert protocol.reply_text(protocol.parse_xml(reply)) == "已收到]]>您的消息"
    assert [(d.key, d.text) for d in handler.handled] == [("msg:8801", "查询进度")]
