"""Signed links for residents and volunteers (no account needed): HMAC-SHA256 over kind, subject and expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


class BadLink(Exception):
    """The link was forged, altered, meant for something else, or has expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:18])


def sign_link(
    secret: str, kind: str, subject_id: int | str, *, ttl: int = 30 * 86400, now: float | None = None
) -> str:
    """A token such as `survey.42.1767139200.<mac>` that proves the holder may open `kind` for `subject_id`."""
    expires = int((now if now is not None else time.time()) + ttl)
    payload = f"{kind}.{subject_id}.{expires}"
    return f"{payload}.{_mac(secret, payload)}"


def verify_link(secret: str, kind: str, token: str, *, now: float | None = None) -> str:
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
    if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
        raise BadLink("expired")
    return subject
