"""Request signing of the two SMS providers, as their documentation specifies (pure functions; the bot's adapters
sign with them and the simulator verifies with them).

- Tencent Cloud API 3.0, ``TC3-HMAC-SHA256`` (SendSms, version 2021-01-11).
- Alibaba Cloud RPC style, ``HMAC-SHA1`` signature version 1.0 (dysmsapi SendSms, version 2017-05-25).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    host: str,
    payload: str,
    timestamp: int,
    service: str = "sms",
    content_type: str = "application/json",
) -> str:
    """The ``Authorization`` header of a Tencent Cloud API 3.0 POST with a JSON body (signed headers: content-type
    and host, as Tencent's own SDK signs them)."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{content_type}\nhost:{host}\n"
    signed_headers = "content-type;host"
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(payload.encode()).hexdigest()]
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    secret_date = _hmac256(("TC3" + secret_key).encode(), date)
    secret_signing = _hmac256(_hmac256(secret_date, service), "tc3_request")
    signature = hmac.new(secret_signing, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"


def aliyun_percent_encode(value: str) -> str:
    return quote(value, safe="~").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def aliyun_signature(params: dict[str, str], *, secret: str, method: str = "POST") -> str:
    """``Signature`` of an Alibaba Cloud RPC request over every other parameter."""
    canonical = "&".join(
        f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    to_sign = f"{method}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()
