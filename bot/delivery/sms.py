"""SMS for residents without WeChat (or whom WeChat cannot reach): one interface, two providers.

``SmsProvider.send(phone=…, template=…, params=…, ref=…)`` sends one templated message and says what happened in
provider-neutral terms (sent, retry later, unreachable number, failed). The templates are ours (``TEMPLATES``);
each deployment maps them to the provider's approved template ids and signature in settings.

- :class:`TencentSms`: Tencent Cloud SMS ``SendSms`` (API 3.0, version 2021-01-11, TC3-HMAC-SHA256).
- :class:`AliyunSms`: Alibaba Cloud ``dysmsapi`` ``SendSms`` (RPC, version 2017-05-25, HMAC-SHA1).

Both talk to ``SMS_API_BASE`` when set (the simulator, ``wechat_sim``), else to the provider's public endpoint.
A per-number limit (``SMS_PER_NUMBER_PER_HOUR``) is applied before the provider's own.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import aiohttp
from yarl import URL

from reference.sms_signing import aliyun_signature, tc3_authorization

Outcome = Literal["sent", "retry", "unreachable", "failed"]

#: our templates: name -> (variables, the approved wording with {n} placeholders, as filed with the provider)
TEMPLATES: dict[str, tuple[tuple[str, ...], str]] = {
    "progress": (("case_no", "status"), "您的诉求{1}有新进展：{2}。详情请拨12345或回复本短信。"),
    "survey": (("case_no",), "您的诉求{1}已办结，请回复1-5为办理打分（5为很满意），谢谢！"),
    "survey_link": (
        ("case_no", "link"),
        "您的诉求{1}已办结，请回复1-5打分（5很满意，1很不满意），或打开 {2} 评价。",
    ),
    "survey_reminder": (("case_no",), "提醒：您的诉求{1}还差一个评价，回复1-5即可（5很满意，1很不满意）。"),
    "survey_reminder_link": (
        ("case_no", "link"),
        "提醒：您的诉求{1}还差一个评价，回复1-5即可，或打开 {2} 评价。",
    ),
    "code": (("code",), "您的查询验证码为{1}，5分钟内有效。如非本人操作请忽略。"),
    "question": (("case_no", "question"), "关于诉求{1}，工作人员想问：{2}。请直接回复本短信。"),
}


@dataclass(frozen=True)
class SmsResult:
    outcome: Outcome
    code: str
    message_id: str | None = None
    detail: str = ""


class SmsProvider(Protocol):
    name: str

    async def send(self, *, phone: str, template: str, params: list[str], ref: str) -> SmsResult: ...


def render(template: str, params: list[str]) -> str:
    """The text the resident receives (what the approved template says with these values)."""
    variables, text = TEMPLATES[template]
    if len(params) != len(variables):
        raise ValueError(f"template {template} takes {len(variables)} values")
    for i, value in enumerate(params, start=1):
        text = text.replace(f"{{{i}}}", value)
    return text


#: variables that are links: never cut (a cut link is a broken one); the templates that carry them are filed with
#: the provider as link templates, and ``/s/<token>`` keeps them short (``bot.delivery.links.sign_short``)
LINK_VARIABLES = frozenset({"link"})


def _clip(params: list[str], names: tuple[str, ...] = ()) -> list[str]:
    # providers refuse variables over their limits (Tencent: 6 for codes, 35 otherwise since 2023; Aliyun: 35)
    return [
        p.replace("\n", " ") if name in LINK_VARIABLES else p.replace("\n", " ")[:35]
        for p, name in zip(params, (*names, *[""] * len(params)), strict=False)
    ]


def segments(text: str, sign_name: str) -> int:
    """How many parts a text message is sent in: 70 characters (signature included) fit one, longer ones go in
    parts of 67."""
    length = len(text) + len(sign_name) + 2  # 【签名】
    return 1 if length <= 70 else -(-length // 67)


# Tencent's codes (https://cloud.tencent.com/document/api/382/52075): what each means for us
_TENCENT_RETRY = (
    "LimitExceeded.",
    "InternalError.",
    "RequestLimitExceeded",
    "FailedOperation.InsufficientBalance",
)
_TENCENT_UNREACHABLE = (
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.PhoneNumberInBlacklist",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
)
# Aliyun's codes (https://help.aliyun.com/document_detail/101346.html)
_ALIYUN_RETRY = ("isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isv.DAY_LIMIT_CONTROL", "Throttling")
_ALIYUN_UNREACHABLE = (
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.MOBILE_COUNT_OVER_LIMIT",
)


def _classify(code: str, ok: str, retry: tuple[str, ...], unreachable: tuple[str, ...]) -> Outcome:
    if code == ok:
        return "sent"
    if code.startswith(retry) or code in retry:
        return "retry"
    if code in unreachable:
        return "unreachable"
    return "failed"


class TencentSms:
    name = "tencent"

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        secret_id: str,
        secret_key: str,
        app_id: str,
        sign_name: str,
        template_ids: dict[str, str],
        base_url: str = "https://sms.tencentcloudapi.com",
        region: str = "ap-guangzhou",
        clock: Any = None,
    ) -> None:
        self.session, self.secret_id, self.secret_key = session, secret_id, secret_key
        self.app_id, self.sign_name, self.template_ids = app_id, sign_name, template_ids
        self.base_url, self.region = base_url.rstrip("/"), region
        self.clock = clock or (lambda: datetime.now(UTC))

    async def send(self, *, phone: str, template: str, params: list[str], ref: str) -> SmsResult:
        payload = json.dumps(
            {
                "PhoneNumberSet": [f"+86{phone}"],
                "SmsSdkAppId": self.app_id,
                "SignName": self.sign_name,
                "TemplateId": self.template_ids.get(template, template),
                "TemplateParamSet": _clip(params, TEMPLATES.get(template, ((), ""))[0]),
                "SessionContext": ref,
            },
            ensure_ascii=False,
        )
        host = URL(self.base_url).host or "sms.tencentcloudapi.com"
        ts = int(self.clock().timestamp())
        headers = {
            "Authorization": tc3_authorization(
                secret_id=self.secret_id, secret_key=self.secret_key, host=host, payload=payload, timestamp=ts
            ),
            "Content-Type": "application/json",
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(ts),
            "X-TC-Region": self.region,
        }
        try:
            async with self.session.post(
                self.base_url + "/",
                data=payload.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                body = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return SmsResult("retry", "network", detail=str(exc)[:200])
        response = body.get("Response", {}) if isinstance(body, dict) else {}
        if "Error" in response:
            code = str(response["Error"].get("Code", "unknown"))
            return SmsResult(_classify(code, "Ok", _TENCENT_RETRY, _TENCENT_UNREACHABLE), code)
        status = (response.get("SendStatusSet") or [{}])[0]
        code = str(status.get("Code", "unknown"))
        outcome = _classify(code, "Ok", _TENCENT_RETRY, _TENCENT_UNREACHABLE)
        return SmsResult(
            outcome, code, message_id=status.get("SerialNo"), detail=str(status.get("Message", ""))
        )


class AliyunSms:
    name = "aliyun"

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_ids: dict[str, str],
        base_url: str = "https://dysmsapi.aliyuncs.com",
        clock: Any = None,
    ) -> None:
        self.session, self.key_id, self.key_secret = session, access_key_id, access_key_secret
        self.sign_name, self.template_ids, self.base_url = sign_name, template_ids, base_url.rstrip("/")
        self.clock = clock or (lambda: datetime.now(UTC))

    async def send(self, *, phone: str, template: str, params: list[str], ref: str) -> SmsResult:
        names = TEMPLATES[template][0]
        form = {
            "AccessKeyId": self.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": ref[:64],
            "PhoneNumbers": phone,
            "RegionId": "cn-hangzhou",
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": secrets.token_hex(16),
            "SignatureVersion": "1.0",
            "TemplateCode": self.template_ids.get(template, template),
            "TemplateParam": json.dumps(
                dict(zip(names, _clip(params, names), strict=True)), ensure_ascii=False
            ),
            "Timestamp": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        form["Signature"] = aliyun_signature(form, secret=self.key_secret, method="POST")
        try:
            async with self.session.post(
                self.base_url + "/", data=form, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                body = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return SmsResult("retry", "network", detail=str(exc)[:200])
        code = str(body.get("Code", "unknown")) if isinstance(body, dict) else "unknown"
        outcome = _classify(code, "OK", _ALIYUN_RETRY, _ALIYUN_UNREACHABLE)
        return SmsResult(outcome, code, message_id=body.get("BizId"), detail=str(body.get("Message", "")))


def make_provider(settings: Any, *, session: aiohttp.ClientSession, clock: Any = None) -> SmsProvider | None:
    """The configured provider (None when SMS is off)."""
    if settings.sms_provider == "tencent":
        return TencentSms(
            session=session,
            secret_id=settings.sms_key_id,
            secret_key=settings.sms_key_secret,
            app_id=settings.sms_app_id,
            sign_name=settings.sms_sign_name,
            template_ids=settings.sms_templates,
            base_url=settings.sms_base,
            clock=clock,
        )
    if settings.sms_provider == "aliyun":
        return AliyunSms(
            session=session,
            access_key_id=settings.sms_key_id,
            access_key_secret=settings.sms_key_secret,
            sign_name=settings.sms_sign_name,
            template_ids=settings.sms_templates,
            base_url=settings.sms_base,
            clock=clock,
        )
    return None
