"""The SMS providers, simulated beside WeChat: Tencent Cloud ``SendSms`` (TC3-HMAC-SHA256) at ``/sms/tencent/`` and
Alibaba Cloud ``dysmsapi`` ``SendSms`` (HMAC-SHA1) at ``/sms/aliyun/``, with their documented answers and error
codes, signatures verified, every message recorded, errors injectable, delivery receipts and residents' replies
(上行) pushed to the bot in each provider's callback format, and a page showing a number's text messages.

Controls: ``GET/DELETE /_sim/sms`` (sent), ``POST /_sim/sms/faults`` ``{"provider", "code", "times"}`` (with
``"stage": "receipt"`` the provider accepts the message and its delivery receipt then says undelivered, with that
code),
``POST /_sim/sms/reply`` ``{"provider", "phone", "text"}``, ``POST /_sim/sms/config`` ``{"receipt_url", "reply_url"}``.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from reference.sms_signing import aliyun_signature, tc3_authorization
from wechat_sim.keys import SIM_HTTP, SIM_TASKS, control_json

log = logging.getLogger("wechat_sim.sms")
routes = web.RouteTableDef()
PROVIDERS = ("tencent", "aliyun")
#: codes that answer the whole request (not one number) in Tencent's format
_TENCENT_REQUEST_ERRORS = ("AuthFailure.", "InternalError", "RequestLimitExceeded", "InvalidParameter.")


@dataclass
class Sms:
    provider: str
    phone: str
    template_id: str
    params: list[str]
    sign_name: str
    ref: str
    message_id: str
    at: float


@dataclass
class SmsState:
    tencent_secret_id: str = "AKIDsimulator"
    tencent_secret_key: str = "simulator-tencent-key"
    aliyun_key_id: str = "LTAIsimulator"
    aliyun_key_secret: str = "simulator-aliyun-secret"
    receipt_url: str = ""
    reply_url: str = ""
    sent: list[Sms] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    clock: Any = time.time

    def take_fault(self, provider: str, stage: str = "send") -> str | None:
        for fault in self.faults:
            if fault["provider"] == provider and fault.get("stage", "send") == stage:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self.faults.remove(fault)
                return str(fault["code"])
        return None


SIM_SMS = web.AppKey("sim_sms", SmsState)


def _rid() -> str:
    return secrets.token_hex(16)


def _spawn(app: web.Application, coro: Any) -> None:
    task = asyncio.create_task(coro)
    app[SIM_TASKS].add(task)
    task.add_done_callback(app[SIM_TASKS].discard)


async def _push(app: web.Application, url: str, payload: Any) -> None:
    if not url:
        return
    await asyncio.sleep(0.05)
    try:
        async with app[SIM_HTTP].post(url, json=payload, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            await resp.read()
    except (TimeoutError, aiohttp.ClientError):
        log.info("SMS callback to %s failed", url)


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _tencent_error(code: str, message: str) -> web.Response:
    return web.json_response({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": _rid()}})


@routes.post("/sms/tencent/", name="sms_tencent")
async def tencent_send(request: web.Request) -> web.Response:
    state = request.app[SIM_SMS]
    raw = (await request.read()).decode("utf-8", errors="replace")
    if request.headers.get("X-TC-Action") != "SendSms":
        return _tencent_error("InvalidAction", "the action is not supported")
    try:
        ts = int(request.headers.get("X-TC-Timestamp", ""))
    except ValueError:
        return _tencent_error("AuthFailure.SignatureFailure", "X-TC-Timestamp missing")
    if abs(state.clock() - ts) > 300:
        return _tencent_error("AuthFailure.SignatureExpire", "signature expired")
    expected = tc3_authorization(
        secret_id=state.tencent_secret_id,
        secret_key=state.tencent_secret_key,
        host=request.headers.get("Host", request.host),
        payload=raw,
        timestamp=ts,
        content_type=request.headers.get("Content-Type", ""),
    )
    if request.headers.get("Authorization") != expected:
        return _tencent_error("AuthFailure.SignatureFailure", "the request signature does not match")
    try:
        body = json.loads(raw)
        phones, params = list(body["PhoneNumberSet"]), list(body.get("TemplateParamSet") or [])
        template_id, sign_name = str(body["TemplateId"]), str(body.get("SignName", ""))
    except (ValueError, KeyError, TypeError):
        return _tencent_error("InvalidParameter", "the request body is not valid")
    fault = state.take_fault("tencent")
    if fault and fault.startswith(_TENCENT_REQUEST_ERRORS):
        return _tencent_error(fault, "simulated fault")
    statuses = []
    for number in phones:
        national = str(number).removeprefix("+86")
        serial = f"2433:{secrets.randbelow(10**12):012d}"
        code = fault or (
            "Ok"
            if len(national) == 11 and national.isdigit() and national[0] == "1"
            else "InvalidParameterValue.IncorrectPhoneNumber"
        )
        statuses.append(
            {
                "SerialNo": serial,
                "PhoneNumber": number,
                "Fee": 1 if code == "Ok" else 0,
                "SessionContext": body.get("SessionContext", ""),
                "Code": code,
                "Message": "send success" if code == "Ok" else "simulated failure",
                "IsoCode": "CN",
            }
        )
        if code == "Ok":
            sms = Sms(
                "tencent",
                national,
                template_id,
                [str(p) for p in params],
                sign_name,
                str(body.get("SessionContext", "")),
                serial,
                state.clock(),
            )
            state.sent.append(sms)
            lost = state.take_fault("tencent", "receipt")
            receipt = [
                {
                    "user_receive_time": _stamp(sms.at),
                    "nationcode": "86",
                    "mobile": national,
                    "report_status": "FAIL" if lost else "SUCCESS",
                    "errmsg": lost or "DELIVRD",
                    "description": "用户短信未送达" if lost else "用户短信送达成功",
                    "sid": serial,
                }
            ]
            _spawn(request.app, _push(request.app, state.receipt_url, receipt))
    return web.json_response({"Response": {"SendStatusSet": statuses, "RequestId": _rid()}})


@routes.post("/sms/aliyun/", name="sms_aliyun")
async def aliyun_send(request: web.Request) -> web.Response:
    state = request.app[SIM_SMS]
    form = {k: str(v) for k, v in (await request.post()).items()}
    rid = _rid()
    if form.get("AccessKeyId") != state.aliyun_key_id:
        return web.json_response(
            {
                "Code": "InvalidAccessKeyId.NotFound",
                "Message": "Specified access key is not found.",
                "RequestId": rid,
            }
        )
    if form.get("Signature") != aliyun_signature(form, secret=state.aliyun_key_secret, method="POST"):
        return web.json_response(
            {
                "Code": "SignatureDoesNotMatch",
                "Message": "Specified signature is not matched with our calculation.",
                "RequestId": rid,
            }
        )
    if form.get("Action") != "SendSms":
        return web.json_response(
            {"Code": "InvalidAction.NotFound", "Message": "action not found", "RequestId": rid}
        )
    if fault := state.take_fault("aliyun"):
        return web.json_response({"Code": fault, "Message": "simulated fault", "RequestId": rid})
    phone = form.get("PhoneNumbers", "")
    if not (len(phone) == 11 and phone.isdigit() and phone[0] == "1"):
        return web.json_response(
            {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": rid}
        )
    try:
        params = json.loads(form.get("TemplateParam") or "{}")
    except ValueError:
        return web.json_response(
            {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法", "RequestId": rid}
        )
    biz_id = f"{secrets.randbelow(10**15):015d}^0"
    sms = Sms(
        "aliyun",
        phone,
        form.get("TemplateCode", ""),
        [str(v) for v in params.values()],
        form.get("SignName", ""),
        form.get("OutId", ""),
        biz_id,
        state.clock(),
    )
    state.sent.append(sms)
    lost = state.take_fault("aliyun", "receipt")
    receipt = [
        {
            "phone_number": phone,
            "send_time": _stamp(sms.at),
            "report_time": _stamp(sms.at),
            "success": not lost,
            "err_code": lost or "DELIVERED",
            "err_msg": "用户接收失败" if lost else "用户接收成功",
            "sms_size": "1",
            "biz_id": biz_id,
            "out_id": sms.ref,
        }
    ]
    _spawn(request.app, _push(request.app, state.receipt_url, receipt))
    return web.json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": rid})


# ------------------------------------------------------------------------------------------- controls
@routes.get("/_sim/sms", name="sms_sent")
async def sms_sent(request: web.Request) -> web.Response:
    phone = request.query.get("phone")
    rows = [asdict(s) for s in request.app[SIM_SMS].sent if phone in (None, s.phone)]
    return web.json_response(rows)


@routes.delete("/_sim/sms", name="sms_clear")
async def sms_clear(request: web.Request) -> web.Response:
    request.app[SIM_SMS].sent.clear()
    return web.json_response({"ok": True})


@routes.post("/_sim/sms/faults", name="sms_faults")
async def sms_faults(request: web.Request) -> web.Response:
    body = await control_json(request)
    provider, code = body.get("provider"), body.get("code")
    if provider not in PROVIDERS or not isinstance(code, str) or not code:
        raise web.HTTPBadRequest(text=f"provider must be one of {PROVIDERS}, code a provider error code")
    times = body.get("times", 1)
    if not isinstance(times, int) or times < 1:
        raise web.HTTPBadRequest(text="times must be a positive integer")
    stage = body.get("stage", "send")
    if stage not in ("send", "receipt"):
        raise web.HTTPBadRequest(text="stage must be send or receipt")
    fault = {"provider": provider, "code": code, "times": times, "stage": stage}
    request.app[SIM_SMS].faults.append(fault)
    return web.json_response(fault, status=201)


@routes.post("/_sim/sms/config", name="sms_config")
async def sms_config(request: web.Request) -> web.Response:
    state = request.app[SIM_SMS]
    body = await control_json(request)
    for key in ("receipt_url", "reply_url"):
        if key in body:
            setattr(state, key, str(body[key]))
    return web.json_response({"receipt_url": state.receipt_url, "reply_url": state.reply_url})


def reply_payload(provider: str, phone: str, text: str, at: float) -> Any:
    """A resident's reply (上行) in the provider's callback format."""
    if provider == "tencent":
        return {
            "extend": "",
            "mobile": phone,
            "nationcode": "86",
            "sign": "大莞家",
            "text": text,
            "time": int(at),
        }
    return [
        {
            "phone_number": phone,
            "send_time": _stamp(at),
            "content": text,
            "sign_name": "大莞家",
            "dest_code": "1234",
            "sequence_id": secrets.randbelow(10**9),
        }
    ]


@routes.post("/_sim/sms/reply", name="sms_reply")
async def sms_reply(request: web.Request) -> web.Response:
    """The resident answers a text message: the provider pushes it to the bot's reply URL."""
    state = request.app[SIM_SMS]
    body = await control_json(request)
    provider, phone, text = (
        body.get("provider", "tencent"),
        str(body.get("phone", "")),
        str(body.get("text", "")),
    )
    if provider not in PROVIDERS or not phone or not text:
        raise web.HTTPBadRequest(text="provider, phone and text are required")
    if not state.reply_url:
        raise web.HTTPConflict(text="no reply_url configured")
    payload = reply_payload(provider, phone, text, state.clock())
    state.replies.append({"provider": provider, "phone": phone, "text": text})
    async with request.app[SIM_HTTP].post(state.reply_url, json=payload) as resp:
        answer = await resp.text()
        return web.json_response({"status": resp.status, "answer": answer[:200]})


@routes.get("/sms", name="sms_phone")
async def sms_phone(request: web.Request) -> web.Response:
    """A plain phone's text messages (for residents without WeChat), newest first."""
    phone = request.query.get("phone", "")[:20]
    rows = [s for s in reversed(request.app[SIM_SMS].sent) if s.phone == phone]
    items = "".join(
        f"<li><small>{html.escape(_stamp(s.at))} · {html.escape(s.provider)}</small><br>"
        f"【{html.escape(s.sign_name)}】模板 {html.escape(s.template_id)}：{html.escape(' / '.join(s.params))}</li>"
        for s in rows
    )
    page = (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><meta name='viewport' "
        "content='width=device-width,initial-scale=1'><title>短信</title></head><body style='font:18px/1.6 sans-serif;"
        "max-width:30rem;margin:auto;padding:1rem'><h1>短信 {p}</h1><form method='get'><label>手机号 "
        "<input name='phone' value='{p}' inputmode='numeric'></label> <button>查看</button></form><ul>{i}</ul>"
        "</body></html>"
    ).format(p=html.escape(phone), i=items or "<li>没有短信</li>")
    return web.Response(text=page, content_type="text/html")
