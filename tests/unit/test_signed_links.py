"""Signed links for residents and volunteers (bot/delivery/links.py): ``kind.subject.expires.mac`` where the MAC is
HMAC-SHA256 over ``kind.subject.expires`` with LINK_SECRET, its first 18 bytes in URL-safe base64 without padding.
The expected MACs are computed here from that definition with ``hmac`` directly; every character of the MAC counts
(the same class of defect as issue 18's signature prefix), and each refusal has its reason."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from bot.delivery.links import BadLink, sign_link, verify_link

SECRET = "l1nk-secret-for-tests"
NOW = 1_764_900_000


def mac_of(payload: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_a_link_is_its_payload_and_the_mac_of_it() -> None:
    token = sign_link(SECRET, "survey", 42, ttl=3600, now=NOW)
    payload = f"survey.42.{NOW + 3600}"
    assert token == f"{payload}.{mac_of(payload)}"
    assert len(mac_of(payload)) == 24  # 18 bytes: 24 base64 characters, no padding
    assert verify_link(SECRET, "survey", token, now=NOW) == "42"


def changed_at(text: str, position: int) -> str:
    other = "A" if text[position] != "A" else "B"
    return text[:position] + other + text[position + 1 :]


@pytest.mark.parametrize("position", range(24))
def test_a_mac_wrong_in_any_one_character_opens_nothing(position: int) -> None:
    payload = f"survey.42.{NOW + 3600}"
    forged = f"{payload}.{changed_at(mac_of(payload), position)}"
    with pytest.raises(BadLink, match="^bad signature$"):
        verify_link(SECRET, "survey", forged, now=NOW)


@pytest.mark.parametrize(
    "mac",
    [
        pytest.param(lambda m: m[:8], id="first-8"),
        pytest.param(lambda m: m[:-1], id="one-short"),
        pytest.param(lambda m: m + "A", id="one-long"),
        pytest.param(lambda m: m + "=", id="padded"),
        pytest.param(lambda m: "", id="empty"),
        pytest.param(lambda m: "签名" * 12, id="not-ascii"),
        pytest.param(lambda m: m.upper() if m.upper() != m else m.lower(), id="other-case"),
    ],
)
def test_a_mac_of_another_shape_opens_nothing(mac: object) -> None:
    payload = f"survey.42.{NOW + 3600}"
    forged = f"{payload}.{mac(mac_of(payload))}"  # type: ignore[operator]
    with pytest.raises(BadLink, match="^bad signature$"):
        verify_link(SECRET, "survey", forged, now=NOW)


@pytest.mark.parametrize(
    "payload",
    [
        f"survey.43.{NOW + 3600}",  # another subject
        f"survey.42.{NOW + 7200}",  # a later expiry
        f"volunteer.42.{NOW + 3600}",  # another kind
    ],
)
def test_an_altered_payload_with_the_old_mac_opens_nothing(payload: str) -> None:
    old_mac = mac_of(f"survey.42.{NOW + 3600}")
    with pytest.raises(BadLink, match="^bad signature$"):
        verify_link(SECRET, "survey", f"{payload}.{old_mac}", now=NOW)


def test_a_link_signed_with_another_secret_opens_nothing() -> None:
    token = sign_link("another-secret", "survey", 42, ttl=3600, now=NOW)
    with pytest.raises(BadLink, match="^bad signature$"):
        verify_link(SECRET, "survey", token, now=NOW)


def test_a_link_for_another_kind_is_refused_as_such() -> None:
    token = sign_link(SECRET, "volunteer", 42, ttl=3600, now=NOW)
    with pytest.raises(BadLink, match="^wrong kind$"):
        verify_link(SECRET, "survey", token, now=NOW)


def test_a_link_is_valid_until_its_expiry_second_and_not_after() -> None:
    token = sign_link(SECRET, "survey", 42, ttl=3600, now=NOW)
    assert verify_link(SECRET, "survey", token, now=NOW + 3600) == "42"
    with pytest.raises(BadLink, match="^expired$"):
        verify_link(SECRET, "survey", token, now=NOW + 3601)


def test_a_signed_expiry_that_is_not_a_number_is_refused() -> None:
    payload = "survey.42.soon"
    with pytest.raises(BadLink, match="^expired$"):
        verify_link(SECRET, "survey", f"{payload}.{mac_of(payload)}", now=NOW)


@pytest.mark.parametrize("token", ["", "survey", "survey.42", "survey.42.123", "…"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(BadLink, match="^malformed$"):
        verify_link(SECRET, "survey", token, now=NOW)
