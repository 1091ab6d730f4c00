"""The /wechat edge checks every digit of ``signature`` and ``msg_signature`` (issue 18: a check of only a prefix,
e.g. the first 8 hex digits, passed a suite whose forged signatures were wrong from the first digit on).

Each forged signature here is the right one with a single digit changed (the last, the 9th, the first) or cut
short; the right one is computed independently (``hashlib`` in webhooks.testing, WeChat's published sample for
``msg_signature``), and every forgery must be refused before the handler sees anything.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from webhooks import WebhookConfig, setup_webhook
from webhooks.testing import RecordingHandler, WeChatSender, message_xml, wechat_signature

TOKEN = "t0ken-for-signature-tests"
APPID = "wx0123456789abcdef"

# WeChat's published WXBizMsgCrypt sample (safe mode)
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
SAMPLE_BODY = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
    f"<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"
)


def changed_at(signature: str, position: int) -> str:
    other = "0" if signature[position] != "0" else "1"
    return signature[:position] + other + signature[position + 1 :]


FORGERIES = [
    pytest.param(lambda s: changed_at(s, 39), id="last-digit"),
    pytest.param(lambda s: changed_at(s, 8), id="ninth-digit"),
    pytest.param(lambda s: changed_at(s, 0), id="first-digit"),
    pytest.param(lambda s: s[:8], id="first-8-only"),
    pytest.param(lambda s: s[:39], id="one-short"),
    pytest.param(lambda s: s + "0", id="one-long"),
]


async def webhook_client(aiohttp_client: Any, **config: Any) -> tuple[TestClient[Any, Any], RecordingHandler]:
    handler = RecordingHandler()
    app = web.Application()
    setup_webhook(app, config=WebhookConfig(**config), handler=handler)
    return await aiohttp_client(app), handler


@pytest.mark.parametrize("forge", FORGERIES)
async def test_get_verification_refuses_a_nearly_right_signature(aiohttp_client: Any, forge: Any) -> None:
    client, _ = await webhook_client(aiohttp_client, token=TOKEN, appid=APPID, aes_key=None)
    query = WeChatSender(token=TOKEN, appid=APPID).query()
    right = await client.get("/wechat", params=query | {"echostr": "8432716532"})
    assert (right.status, await right.text()) == (200, "8432716532")
    forged = await client.get(
        "/wechat", params=query | {"signature": forge(query["signature"]), "echostr": "8432716532"}
    )
    assert forged.status == 403
    assert "8432716532" not in await forged.text()


@pytest.mark.parametrize("forge", FORGERIES)
async def test_plain_post_refuses_a_nearly_right_signature(aiohttp_client: Any, forge: Any) -> None:
    client, handler = await webhook_client(aiohttp_client, token=TOKEN, appid=APPID, aes_key=None)
    sender = WeChatSender(token=TOKEN, appid=APPID)
    fields = {"ToUserName": "gh_0123456789ab", "FromUserName": "oUser-1", "CreateTime": int(time.time())}
    request = sender.build(message_xml(fields | {"MsgType": "text", "Content": "你好", "MsgId": 7}))
    assert request.params["signature"] == wechat_signature(
        TOKEN, request.params["timestamp"], request.params["nonce"]
    )
    request.params["signature"] = forge(request.params["signature"])
    response = await client.post("/wechat", params=request.params, data=request.body)
    assert (response.status, await response.text()) == (403, "bad signature")
    assert handler.handled == []


@pytest.mark.parametrize("forge", FORGERIES)
async def test_safe_mode_refuses_a_nearly_right_msg_signature_on_the_published_sample(
    aiohttp_client: Any, forge: Any
) -> None:
    client, handler = await webhook_client(
        aiohttp_client, token=SAMPLE_TOKEN, appid=SAMPLE_APPID, aes_key=SAMPLE_AES_KEY, max_clock_skew=0
    )
    params = {"timestamp": SAMPLE_TIMESTAMP, "nonce": SAMPLE_NONCE, "encrypt_type": "aes"}
    forged = await client.post(
        "/wechat", params=params | {"msg_signature": forge(SAMPLE_MSG_SIGNATURE)}, data=SAMPLE_BODY.encode()
    )
    assert (forged.status, await forged.text()) == (403, "bad msg_signature")
    assert handler.handled == []
    # the published signature itself is accepted (so the refusal above is the signature's, nothing else's)
    right = await client.post(
        "/wechat", params=params | {"msg_signature": SAMPLE_MSG_SIGNATURE}, data=SAMPLE_BODY.encode()
    )
    assert right.status == 200
    assert [d.text for d in handler.handled] == ["abcdteT"]


@pytest.mark.parametrize("forge", FORGERIES)
async def test_safe_mode_refuses_a_nearly_right_url_signature(aiohttp_client: Any, forge: Any) -> None:
    # in aes mode the URL's `signature` is checked when present: a present one must be right in every digit
    client, handler = await webhook_client(
        aiohttp_client, token=SAMPLE_TOKEN, appid=SAMPLE_APPID, aes_key=SAMPLE_AES_KEY, max_clock_skew=0
    )
    signature = wechat_signature(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE)
    params = {
        "timestamp": SAMPLE_TIMESTAMP,
        "nonce": SAMPLE_NONCE,
        "encrypt_type": "aes",
        "msg_signature": SAMPLE_MSG_SIGNATURE,
        "signature": forge(signature),
    }
    response = await client.post("/wechat", params=params, data=SAMPLE_BODY.encode())
    assert (response.status, await response.text()) == (403, "bad signature")
    assert handler.handled == []
