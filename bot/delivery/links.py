"""Signed links for residents and volunteers (no account needed): HMAC-SHA256 over kind, subject and expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac


class BadLink(Exception):
    """The link was forged, altered, meant for something else, or has expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:18])


def sign_link(secret: str, kind: str, subject_id: int | str, *, now: float, ttl: int = 30 * 86400) -> str:
    """A token such as `survey.42.1767139200.<mac>` that proves the holder may open `kind` for `subject_id`."""
    expires = int(now + ttl)
    payload = f"{kind}.{subject_id}.{expires}"
    return f"{payload}.{_mac(secret, payload)}"


def verify_link(secret: str, kind: str, token: str, *, now: float) -> str:
    """Returns the subject id, or raises BadLink."""
    try:
        got_kind, subject, expires, mac = token.rsplit(".", 3)
    except ValueError:
        raise BadLink("malformed") from None
    expected = _mac(secret, f"{got_kind}.{subject}.{expires}").encode()
    if not hmac.compare_digest(expected, mac.encode("utf-8", "replace")):  # bytes: non-ASCII input is no 500
        raise BadLink("bad signature")
    if got_kind != kind:
        raise BadLink("wrong kind")
    if not expires.isdigit() or int(expires) < now:
        raise BadLink("expired")
    return subject


# ---------------------------------------------------------------------------- short links (for text messages)
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_EXP_WIDTH = 5  # hours since 1970 in base 36: enough until the year 8800
_MAC_WIDTH = 10  # base 36: about 51 bits


def _to36(n: int, width: int = 0) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return (out or "0").rjust(width, "0")


def _short_mac(secret: str, kind: str, subject: int, expires_h: int) -> str:
    digest = hmac.new(
        secret.encode(), f"short.{kind}.{subject}.{expires_h}".encode(), hashlib.sha256
    ).digest()
    return _to36(int.from_bytes(digest[:8], "big") % 36**_MAC_WIDTH, _MAC_WIDTH)


def sign_short(secret: str, kind: str, subject_id: int, *, now: float, ttl: int = 7 * 86400) -> str:
    """A short token for a text message (lowercase letters and digits only, about 17 characters): the subject,
    the expiry hour and a MAC over kind, subject and expiry. ``/s/<token>`` fits an SMS with room to spare."""
    if subject_id < 0:
        raise ValueError("subject must be >= 0")
    expires_h = -(-int(now + ttl) // 3600)
    return (
        f"{_to36(subject_id)}{_to36(expires_h, _EXP_WIDTH)}{_short_mac(secret, kind, subject_id, expires_h)}"
    )


def verify_short(secret: str, kind: str, token: str, *, now: float) -> int:
    """The subject id of a short token, or BadLink (forged, altered, another kind's, or expired)."""
    if not 1 + _EXP_WIDTH + _MAC_WIDTH <= len(token) <= 30 or any(ch not in _B36 for ch in token):
        raise BadLink("malformed")
    mac, expires, subject = (
        token[-_MAC_WIDTH:],
        token[-_MAC_WIDTH - _EXP_WIDTH : -_MAC_WIDTH],
        token[: -_MAC_WIDTH - _EXP_WIDTH],
    )
    subject_id, expires_h = int(subject, 36), int(expires, 36)
    if not hmac.compare_digest(mac.encode(), _short_mac(secret, kind, subject_id, expires_h).encode()):
        raise BadLink("bad signature")
    if expires_h * 3600 < now:
        raise BadLink("expired")
    return subject_id
