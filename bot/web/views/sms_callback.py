"""The SMS providers' callbacks: delivery receipts and residents' replies (上行), in Tencent Cloud's or Alibaba
Cloud's format, at ``POST /sms/callback/{provider}/{token}`` (the token is ``SMS_CALLBACK_TOKEN``; without it the
route answers 404). A reply digit 1–5 answers the survey that went to that number by SMS; a receipt saying a text
was not delivered parks it and gives the town a call task (``bot.cases.calltasks.receipt_arrived``)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from aiohttp import web

from bot import keys
from bot.cases.calltasks import answer_by_sms, receipt_arrived
from bot.db import transaction
from bot.deadlines.waking import waking_of
from bot.web.views.common import now_of

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
PROVIDERS = ("tencent", "aliyun")
RECEIPT_TRIES = 6
RECEIPT_WAIT = 0.25  # seconds between two lookups of a receipt's unknown message id
_OK = {"tencent": {"result": 0, "errmsg": "OK"}, "aliyun": {"code": 0, "msg": "成功"}}


def _items(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    return [i for i in items[:100] if isinstance(i, dict)]


def _receipt(provider: str, item: dict[str, Any]) -> tuple[str, bool, str] | None:
    """(message id, delivered, code) when the item is a delivery receipt."""
    if provider == "tencent" and "sid" in item and "report_status" in item:
        return str(item["sid"]), str(item["report_status"]) == "SUCCESS", str(item.get("errmsg", ""))[:30]
    if provider == "aliyun" and "biz_id" in item and "success" in item:
        return str(item["biz_id"]), item["success"] is True, str(item.get("err_code", ""))[:30]
    return None


def _reply(provider: str, item: dict[str, Any]) -> tuple[str, str] | None:
    """(phone, text) when the item is a resident's reply."""
    if provider == "tencent" and "mobile" in item and "text" in item:
        return str(item["mobile"])[:32], str(item["text"])[:500]
    if provider == "aliyun" and "phone_number" in item and "content" in item:
        return str(item["phone_number"])[:32], str(item["content"])[:500]
    return None


@routes.post("/sms/callback/{provider}/{token}", name="sms_callback")
async def sms_callback(request: web.Request) -> web.Response:
    expected = request.app[keys.SETTINGS].sms_callback_token
    provider, token = request.match_info["provider"], request.match_info["token"]
    if (
        not expected
        or not hmac.compare_digest(token.encode(), expected.encode())
        or provider not in PROVIDERS
    ):
        raise web.HTTPNotFound(text="没有这个页面")
    if request.content_length is not None and request.content_length > 256 * 1024:
        raise web.HTTPRequestEntityTooLarge(max_size=256 * 1024, actual_size=request.content_length)
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="not JSON") from None
    now = now_of(request)
    waking = waking_of(request.app[keys.SETTINGS])
    counts = {"receipts": 0, "answered": 0, "not_a_score": 0, "no_survey": 0, "unknown": 0}
    receipts: list[tuple[str, bool, str]] = []
    async with transaction(request.app[keys.SESSIONS]) as db:
        for item in _items(body):
            if (receipt := _receipt(provider, item)) is not None:
                receipts.append(receipt)
            elif (reply := _reply(provider, item)) is not None:
                phone, text = reply
                counts[await answer_by_sms(db, phone=phone, text=text, now=now)] += 1
    # a receipt can overtake the write of the message id it names (the provider answered the send, our commit is a
    # moment behind): unknown ids are looked up again a few times, each in a new transaction, before giving up
    for attempt in range(RECEIPT_TRIES):
        if not receipts:
            break
        if attempt:
            await asyncio.sleep(RECEIPT_WAIT)
        unknown: list[tuple[str, bool, str]] = []
        async with transaction(request.app[keys.SESSIONS]) as db:
            for message_id, delivered, code in receipts:
                found = await receipt_arrived(
                    db, message_id=message_id, delivered=delivered, code=code, now=now, waking=waking
                )
                if found:
                    counts["receipts"] += 1
                else:
                    unknown.append((message_id, delivered, code))
        receipts = unknown
    counts["unknown"] = len(receipts)
    log.info("SMS callback from %s: %s", provider, counts)
    return web.json_response(_OK[provider])
