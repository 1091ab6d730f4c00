"""Waking hours (bot/deadlines/waking.py) and short signed links (bot/delivery/links.py), against hand-written
expectations: moments at the edges of the window, a window given in settings, bad windows refused; a short token
that is forged, altered, of another kind, expired or not made of its alphabet opens nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.deadlines.waking import DEFAULT_WAKING, WakingHours, waking_of
from bot.delivery.links import BadLink, sign_short, verify_short

CHINA = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ((2026, 3, 3, 2, 15), (2026, 3, 3, 8, 0)),  # night: this morning
        ((2026, 3, 3, 7, 59), (2026, 3, 3, 8, 0)),
        ((2026, 3, 3, 8, 0), (2026, 3, 3, 8, 0)),  # the edges belong to the window
        ((2026, 3, 3, 21, 0), (2026, 3, 3, 21, 0)),
        ((2026, 3, 3, 21, 1), (2026, 3, 4, 8, 0)),  # evening: the next morning
        ((2026, 3, 3, 23, 59), (2026, 3, 4, 8, 0)),
        ((2026, 12, 31, 22, 0), (2027, 1, 1, 8, 0)),  # across the year
    ],
)
def test_clamp_moves_night_to_the_next_morning(local: tuple[int, ...], expected: tuple[int, ...]) -> None:
    moment = datetime(*local, tzinfo=CHINA).astimezone(UTC)  # type: ignore[misc]
    got = DEFAULT_WAKING.clamp(moment)
    assert got == datetime(*expected, tzinfo=CHINA)  # type: ignore[misc]
    assert got.tzinfo == UTC  # the caller's zone is kept


def test_a_configured_window() -> None:
    class S:
        waking_hours = "9:30 - 20:00"

    window = waking_of(S())
    assert window == WakingHours.parse("09:30-20:00")
    assert window.clamp(datetime(2026, 3, 3, 20, 30, tzinfo=CHINA)) == datetime(
        2026, 3, 4, 9, 30, tzinfo=CHINA
    )
    assert waking_of(None) == DEFAULT_WAKING


@pytest.mark.parametrize(
    "bad", ["", "8-21", "21:00-08:00", "25:00-26:00", "08:00-08:00", "08:60-21:00", "早上"]
)
def test_bad_windows_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        WakingHours.parse(bad)


NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def test_a_short_token_round_trips_and_is_short() -> None:
    token = sign_short("secret", "survey", 123456, ttl=7 * 86400, now=NOW)
    assert len(token) <= 20 and token.isalnum() and token == token.lower()
    assert verify_short("secret", "survey", token, now=NOW + 6 * 86400) == 123456


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # the MAC altered
        lambda t: "2" + t[1:] if t[0] != "2" else "3" + t[1:],  # another subject
        lambda t: t[:-15] + "zzzzz" + t[-10:],  # a later expiry
        lambda t: t.upper(),  # not its alphabet
        lambda t: t + "é",
        lambda t: t[:10],
        lambda t: "",
    ],
)
def test_an_altered_short_token_opens_nothing(change) -> None:  # type: ignore[no-untyped-def]
    token = sign_short("secret", "survey", 42, ttl=7 * 86400, now=NOW)
    with pytest.raises(BadLink):
        verify_short("secret", "survey", change(token), now=NOW)


def test_another_kind_another_secret_or_late_opens_nothing() -> None:
    token = sign_short("secret", "survey", 42, ttl=7 * 86400, now=NOW)
    for kind, secret, now in (
        ("offer", "secret", NOW),
        ("survey", "other", NOW),
        ("survey", "secret", NOW + 7 * 86400 + 3600),
    ):
        with pytest.raises(BadLink):
            verify_short(secret, kind, token, now=now)
