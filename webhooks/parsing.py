"""From bytes to a :class:`Delivery`: safe XML reading.

``defusedxml`` (DTDs forbidden) reads every body: in safe mode first to pull out the ``Encrypt`` element that the
signature covers, then the decrypted plain XML, to check its shape (no DOCTYPE, entity or external reference; root
``<xml>``; no duplicated field; required fields present) and to take its fields — the top-level elements' text,
as WeChat sent them (whitespace around a value stripped). That one parse serves both: wechatpy's ``parse_message``
(xmltodict, a pure-Python SAX handler) read the same XML a second time and was half of this module's CPU per
message (benchmarks/cpu.py --profile); none of its message classes was used beyond these fields.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from .types import Delivery

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("ToUserName", "FromUserName", "MsgType", "CreateTime")
_MESSAGE_TYPES = {"text", "voice", "image", "location", "link", "video", "shortvideo"}


class BadMessage(Exception):
    """The body is not a well-formed, safe WeChat message (HTTP 400)."""


def decode_body(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessage("body is not UTF-8") from exc


def read_fields(xml_text: str) -> dict[str, ET.Element]:
    """The top-level elements of a ``<xml>`` document, refusing DTDs, entities and duplicates."""
    try:
        root = DET.fromstring(xml_text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise BadMessage(f"unsafe or malformed XML: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise BadMessage("root element is not <xml>")
    fields: dict[str, ET.Element] = {}
    for child in root:
        if child.tag in fields:
            raise BadMessage(f"duplicated element {child.tag}")
        fields[child.tag] = child
    return fields


def extract_encrypt(xml_text: str) -> str:
    """The ``Encrypt`` element of a compatible/safe-mode body; BadMessage when absent or empty."""
    element = read_fields(xml_text).get("Encrypt")
    value = (element.text or "").strip() if element is not None else ""
    if not value:
        raise BadMessage("missing Encrypt")
    return value


def _text(fields: dict[str, ET.Element], name: str) -> str:
    element = fields.get(name)
    if element is None or len(element):
        raise BadMessage(f"missing or structured {name}")
    value = (element.text or "").strip()
    if not value:
        raise BadMessage(f"empty {name}")
    return value


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _leaf_values(fields: dict[str, ET.Element]) -> dict[str, str | None]:
    """Each top-level field without children: its text, stripped (None when empty). Fields with children (the
    menu events' ScanCodeInfo, SendPicsInfo …) are left out: no message type here reads them."""
    values: dict[str, str | None] = {}
    for name, element in fields.items():
        if not len(element):
            text = (element.text or "").strip()
            values[name] = text or None
    return values


def _drop_none(media: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in media.items() if v is not None}


def to_delivery(plain_xml: str) -> Delivery:
    """Parse verified plain XML into a Delivery; BadMessage when it is unsafe or lacks required fields."""
    fields = read_fields(plain_xml)
    for name in REQUIRED_FIELDS:
        _text(fields, name)
    create_ts = _text(fields, "CreateTime")
    if not create_ts.isdigit() or len(create_ts) > 12:
        raise BadMessage("CreateTime is not a unix timestamp")

    data = _leaf_values(fields)
    openid, account = _text(fields, "FromUserName"), _text(fields, "ToUserName")
    raw_type = str(data.get("MsgType", "")).strip().lower()
    create_time = datetime.fromtimestamp(int(create_ts), tz=UTC)

    event: str | None = None
    text: str | None = None
    media: dict[str, Any] = {}
    if raw_type == "event":
        msg_type = "event"
        # Event and EventKey as sent: parse_message rewrites them for QR-code subscriptions.
        raw_event = _text(fields, "Event")
        key_element = fields.get("EventKey")
        event_key = None if key_element is None else (key_element.text or "").strip()
        event, text, media = _event_fields(raw_event.lower(), event_key, data)
        key = f"evt:{openid}:{create_ts}:{event}"
    else:
        msg_type = raw_type if raw_type in _MESSAGE_TYPES else "unknown"
        text, media = _message_fields(msg_type, data)
        if msg_type == "unknown":
            media["type"] = raw_type
            log.info("webhook: unknown message type %r", raw_type[:40])
        msg_id = str(data.get("MsgId") or data.get("MsgID") or "").strip()
        key = f"msg:{msg_id}" if msg_id else f"msg:{openid}:{create_ts}:{raw_type}"

    return Delivery(
        key=key,
        openid=openid,
        account=account,
        msg_type=msg_type,
        event=event,
        text=text,
        media=_drop_none(media),
        create_time=create_time,
        raw_xml=plain_xml,
    )


def _message_fields(msg_type: str, data: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    if msg_type == "text":
        return _str(data.get("Content")) or "", {}
    if msg_type == "voice":
        media: dict[str, Any] = {"media_id": _str(data.get("MediaId")), "format": _str(data.get("Format"))}
        return _str(data.get("Recognition")) or "", media
    if msg_type == "image":
        return None, {"pic_url": _str(data.get("PicUrl")), "media_id": _str(data.get("MediaId"))}
    if msg_type == "location":
        media = {
            "lat": _float(data.get("Location_X")),
            "lon": _float(data.get("Location_Y")),
            "scale": _float(data.get("Scale")),
            "label": _str(data.get("Label")),
        }
        return None, media
    if msg_type == "link":
        title, url = _str(data.get("Title")) or "", _str(data.get("Url")) or ""
        media = {"title": title, "description": _str(data.get("Description")), "url": url}
        return "\n".join(part for part in (title, url) if part), media
    if msg_type in ("video", "shortvideo"):
        return None, {"media_id": _str(data.get("MediaId")), "thumb_media_id": _str(data.get("ThumbMediaId"))}
    return None, {}


def _event_fields(
    event: str, event_key: str | None, data: dict[str, Any]
) -> tuple[str, str | None, dict[str, Any]]:
    """Normalised event name, text and media. ``subscribe`` stays ``subscribe`` also when it came
    from a parametric QR code (wechatpy calls that ``subscribe_scan``); the scene is in media."""
    media: dict[str, Any] = {"event_key": event_key}
    text: str | None = event_key
    if event == "subscribe":
        raw_key = event_key or ""
        if raw_key.startswith("qrscene_"):
            media["scene"] = raw_key[len("qrscene_") :]
        media["ticket"] = _str(data.get("Ticket"))
        text = raw_key or None
    elif event == "scan":
        media["scene"] = event_key
        media["ticket"] = _str(data.get("Ticket"))
    elif event == "view":
        media["url"] = event_key
        media["menu_id"] = _str(data.get("MenuId"))
    elif event == "location":
        media.update(
            lat=_float(data.get("Latitude")),
            lon=_float(data.get("Longitude")),
            precision=_float(data.get("Precision")),
        )
        text = None
    elif event in ("templatesendjobfinish", "masssendjobfinish"):
        media.update(status=_str(data.get("Status")), msg_id=_str(data.get("MsgID") or data.get("MsgId")))
        text = None
    elif event == "unsubscribe":
        text = None
    return event, text, media
