"""WeChat's side of the official-account webhook protocol, as pure functions.

What WeChat sends to a developer's server: the message XML for every message and event type, the query-string
signature, and in safe mode the AES envelope with its ``msg_signature``; and what WeChat does with the passive
reply (verify, decrypt, read). Written from WeChat's documentation, independently of wechatpy, so that the
tests can check one against the other.

Crypto (WeChat's "消息加解密"): key = base64(EncodingAESKey + "="), 32 bytes; IV = key[:16]; AES-256-CBC over
``random(16) + len(xml) as 4 bytes big-endian + xml + appid``, padded PKCS#7 to a 32-byte block.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import struct
from collections.abc import Mapping
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree

Mode = Literal["plain", "compat", "safe"]
MODES: tuple[str, ...] = ("plain", "compat", "safe")
BLOCK = 32
NONCE_ALPHABET = string.ascii_letters + string.digits


class ProtocolError(ValueError):
    """A reply or envelope that WeChat itself would refuse (bad signature, wrong AppID, broken padding)."""


# --------------------------------------------------------------------------------------------- XML building


def cdata(value: str) -> str:
    """Wrap text in CDATA, splitting any ``]]>`` so that the text survives unchanged."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _field(name: str, value: str | int | float) -> str:
    if isinstance(value, str):
        return f"<{name}>{cdata(value)}</{name}>"
    return f"<{name}>{value}</{name}>"


def build_xml(fields: Mapping[str, str | int | float]) -> str:
    """``<xml>`` with one element per field, strings in CDATA and numbers bare (as WeChat writes them)."""
    return "<xml>" + "".join(_field(k, v) for k, v in fields.items()) + "</xml>"


def _head(to_user: str, from_user: str, create_time: int, msg_type: str) -> dict[str, str | int | float]:
    return {
        "ToUserName": to_user,
        "FromUserName": from_user,
        "CreateTime": int(create_time),
        "MsgType": msg_type,
    }


def text_message(*, to_user: str, from_user: str, content: str, msg_id: int, create_time: int) -> str:
    f = _head(to_user, from_user, create_time, "text")
    f |= {"Content": content, "MsgId": msg_id}
    return build_xml(f)


def voice_message(
    *,
    to_user: str,
    from_user: str,
    recognition: str,
    msg_id: int,
    create_time: int,
    media_id: str = "",
    format: str = "amr",
) -> str:
    """A voice message with WeChat's speech-to-text ``Recognition`` (empty when WeChat could not recognise it)."""
    f = _head(to_user, from_user, create_time, "voice")
    f |= {
        "MediaId": media_id or f"sim-voice-{msg_id}",
        "Format": format,
        "MsgId": msg_id,
        "Recognition": recognition,
    }
    return build_xml(f)


def image_message(
    *, to_user: str, from_user: str, pic_url: str, msg_id: int, create_time: int, media_id: str = ""
) -> str:
    f = _head(to_user, from_user, create_time, "image")
    f |= {"PicUrl": pic_url, "MsgId": msg_id, "MediaId": media_id or f"sim-image-{msg_id}"}
    return build_xml(f)


def location_message(
    *,
    to_user: str,
    from_user: str,
    lat: float,
    lon: float,
    label: str,
    msg_id: int,
    create_time: int,
    scale: int = 15,
) -> str:
    f = _head(to_user, from_user, create_time, "location")
    f |= {"Location_X": lat, "Location_Y": lon, "Scale": scale, "Label": label, "MsgId": msg_id}
    return build_xml(f)


def link_message(
    *, to_user: str, from_user: str, title: str, description: str, url: str, msg_id: int, create_time: int
) -> str:
    f = _head(to_user, from_user, create_time, "link")
    f |= {"Title": title, "Description": description, "Url": url, "MsgId": msg_id}
    return build_xml(f)


def video_message(
    *,
    to_user: str,
    from_user: str,
    msg_id: int,
    create_time: int,
    media_id: str = "",
    thumb_media_id: str = "",
    short: bool = False,
) -> str:
    f = _head(to_user, from_user, create_time, "shortvideo" if short else "video")
    f |= {
        "MediaId": media_id or f"sim-video-{msg_id}",
        "ThumbMediaId": thumb_media_id or f"sim-thumb-{msg_id}",
        "MsgId": msg_id,
    }
    return build_xml(f)


EVENTS: tuple[str, ...] = (
    "subscribe",
    "unsubscribe",
    "CLICK",
    "VIEW",
    "SCAN",
    "LOCATION",
    "TEMPLATESENDJOBFINISH",
)


def event_message(
    *,
    to_user: str,
    from_user: str,
    event: str,
    create_time: int,
    key: str | None = None,
    ticket: str | None = None,
    status: str | None = None,
    msg_id: int | None = None,
    lat: float | None = None,
    lon: float | None = None,
    precision: float | None = None,
) -> str:
    """An event push. Events carry no MsgId, except TEMPLATESENDJOBFINISH, which names the template message
    (``msg_id``) whose delivery ``status`` it reports (``success``, ``failed:user block``, ``failed: system
    failed``). ``key``: EventKey (the menu key for CLICK, the URL for VIEW, ``qrscene_…`` for a subscribe by QR
    code, the scene for SCAN); ``lat``/``lon``/``precision``: the LOCATION event's Latitude/Longitude/Precision.
    """
    f = _head(to_user, from_user, create_time, "event")
    f["Event"] = event
    if event == "TEMPLATESENDJOBFINISH":
        if msg_id is not None:
            f["MsgID"] = msg_id
        f["Status"] = status or "success"
        return build_xml(f)
    if event == "LOCATION":
        f |= {"Latitude": lat or 0.0, "Longitude": lon or 0.0, "Precision": precision or 30.0}
        return build_xml(f)
    if key is not None or event in ("CLICK", "VIEW", "SCAN"):
        f["EventKey"] = key or ""
    if ticket is not None:
        f["Ticket"] = ticket
    return build_xml(f)


def parse_xml(xml: str | bytes) -> dict[str, str]:
    """The top-level fields of a WeChat XML document (entity expansion and external entities refused)."""
    root = ElementTree.fromstring(xml, forbid_dtd=True)
    out: dict[str, str] = {}
    for child in root:
        if len(child):  # nested (news Articles, Image/MediaId …): flatten one level with a dotted name
            for sub in child.iter():
                if sub is not child and not len(sub):
                    out.setdefault(f"{child.tag}.{sub.tag}", sub.text or "")
        out[child.tag] = child.text or ""
    return out


# --------------------------------------------------------------------------------------------- signatures


def _sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def sign(token: str, timestamp: str | int, nonce: str) -> str:
    """The query-string ``signature``: sha1 over the sorted concatenation of token, timestamp, nonce."""
    return _sha1_sorted(token, str(timestamp), nonce)


def msg_signature(token: str, timestamp: str | int, nonce: str, encrypt: str) -> str:
    """Safe mode's ``msg_signature``: sha1 over sorted token, timestamp, nonce and the Encrypt field."""
    return _sha1_sorted(token, str(timestamp), nonce, encrypt)


def new_nonce(length: int = 10) -> str:
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------------------------- AES


def aes_key_bytes(aes_key: str) -> bytes:
    if len(aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    key = base64.b64decode(aes_key + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def encrypt_payload(plain: str, *, aes_key: str, appid: str, random_prefix: bytes | None = None) -> str:
    """The base64 ``Encrypt`` text for a plaintext XML, as WeChat computes it."""
    key = aes_key_bytes(aes_key)
    body = plain.encode()
    prefix = random_prefix if random_prefix is not None else secrets.token_bytes(16)
    if len(prefix) != 16:
        raise ValueError("the random prefix is 16 bytes")
    data = prefix + struct.pack(">I", len(body)) + body + appid.encode()
    pad = BLOCK - len(data) % BLOCK
    data += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def decrypt_payload(encrypted: str, *, aes_key: str, appid: str) -> str:
    """The plaintext XML inside an ``Encrypt`` text; refuses bad padding and a payload for another AppID."""
    key = aes_key_bytes(aes_key)
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (ValueError, TypeError) as exc:
        raise ProtocolError("Encrypt is not base64") from exc
    if not raw or len(raw) % 16:
        raise ProtocolError("ciphertext length is not a multiple of the AES block")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    data = dec.update(raw) + dec.finalize()
    pad = data[-1]
    if not 1 <= pad <= BLOCK or data[-pad:] != bytes([pad]) * pad:
        raise ProtocolError("bad padding")
    data = data[16:-pad]
    if len(data) < 4:
        raise ProtocolError("payload too short")
    (length,) = struct.unpack(">I", data[:4])
    if length > len(data) - 4:
        raise ProtocolError("declared length exceeds the payload")
    xml, from_appid = data[4 : 4 + length], data[4 + length :]
    if from_appid.decode(errors="replace") != appid:
        raise ProtocolError("payload is for another AppID")
    return xml.decode()


def encrypt(
    xml: str,
    *,
    token: str,
    aes_key: str,
    appid: str,
    timestamp: str | int,
    nonce: str,
    to_user: str | None = None,
) -> tuple[str, str]:
    """WeChat's safe-mode envelope ``<xml><ToUserName/><Encrypt/></xml>`` and its ``msg_signature``.

    ``to_user`` defaults to the ToUserName of ``xml`` (the official account's original id)."""
    if to_user is None:
        to_user = parse_xml(xml).get("ToUserName", "")
    encrypted = encrypt_payload(xml, aes_key=aes_key, appid=appid)
    envelope = build_xml({"ToUserName": to_user, "Encrypt": encrypted})
    return envelope, msg_signature(token, timestamp, nonce, encrypted)


def decrypt_reply(reply_xml: str | bytes, *, token: str, aes_key: str, appid: str) -> str:
    """The plaintext of an encrypted passive reply (``Encrypt``, ``MsgSignature``, ``TimeStamp``, ``Nonce``),
    after checking its MsgSignature as WeChat does. A reply without ``Encrypt`` is returned as it is (compat
    mode accepts plaintext replies)."""
    text = reply_xml.decode() if isinstance(reply_xml, bytes) else reply_xml
    fields = parse_xml(text)
    if "Encrypt" not in fields:
        return text
    for name in ("MsgSignature", "TimeStamp", "Nonce"):
        if not fields.get(name):
            raise ProtocolError(f"encrypted reply lacks {name}")
    expected = msg_signature(token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    if not secrets.compare_digest(expected, fields["MsgSignature"]):
        raise ProtocolError("reply MsgSignature does not verify")
    return decrypt_payload(fields["Encrypt"], aes_key=aes_key, appid=appid)


def encrypt_reply(xml: str, *, token: str, aes_key: str, appid: str, timestamp: str | int, nonce: str) -> str:
    """A developer's encrypted passive reply (for echo webhooks in tests; the bot has its own)."""
    encrypted = encrypt_payload(xml, aes_key=aes_key, appid=appid)
    return build_xml(
        {
            "Encrypt": encrypted,
            "MsgSignature": msg_signature(token, timestamp, nonce, encrypted),
            "TimeStamp": int(timestamp),
            "Nonce": nonce,
        }
    )


# --------------------------------------------------------------------------------------------- requests


def build_request(
    xml: str,
    *,
    mode: str,
    token: str,
    timestamp: str | int,
    nonce: str,
    openid: str | None = None,
    appid: str = "",
    aes_key: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of WeChat's POST to the webhook.

    - ``plain``: ``signature, timestamp, nonce, openid``; body the message XML.
    - ``compat`` (兼容模式): also ``encrypt_type=aes, msg_signature``; body the plaintext fields plus ``Encrypt``.
    - ``safe`` (安全模式): the same parameters; body only ``ToUserName`` and ``Encrypt``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    ts = str(timestamp)
    fields = parse_xml(xml)
    params = {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce}
    params["openid"] = openid if openid is not None else fields.get("FromUserName", "")
    if mode == "plain":
        return params, xml.encode()
    if not aes_key:
        raise ValueError(f"mode {mode!r} needs an EncodingAESKey")
    envelope, msig = encrypt(xml, token=token, aes_key=aes_key, appid=appid, timestamp=ts, nonce=nonce)
    params |= {"encrypt_type": "aes", "msg_signature": msig}
    if mode == "safe":
        return params, envelope.encode()
    encrypted = parse_xml(envelope)["Encrypt"]
    return params, (xml[: -len("</xml>")] + _field("Encrypt", encrypted) + "</xml>").encode()


def verification_request(*, token: str, echostr: str, timestamp: str | int, nonce: str) -> dict[str, str]:
    """The GET WeChat sends when the developer saves the server URL: the webhook must echo ``echostr``."""
    ts = str(timestamp)
    return {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": echostr}


def reply_text(fields: Mapping[str, str]) -> str | None:
    """What the resident sees of a passive reply: the text Content, or a news reply's titles and descriptions."""
    msg_type = fields.get("MsgType", "")
    if msg_type == "text":
        return fields.get("Content", "")
    if msg_type == "news":
        parts = [v for k, v in fields.items() if k.endswith((".Title", ".Description")) and v]
        return "\n".join(parts) or None
    return None
