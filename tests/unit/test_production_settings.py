"""The README's promise "Secrets have no working defaults in production (ENVIRONMENT=production refuses
placeholders)", secret by secret: each of the five, left at its development default, empty, or set to a
placeholder word in any case or with spaces around it, stops the process at start-up with its variable named;
so do plain-HTTP addresses and cookies without Secure. Outside production the same values start."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bot.settings import Settings

SECRETS = ("wechat_token", "wechat_secret", "session_secret", "link_secret", "rasa_token")
REAL: dict[str, Any] = {
    "wechat_token": "tok-3f9a1c77",
    "wechat_secret": "sec-7b2e90d4",
    "session_secret": "k9V2s" * 8,
    "link_secret": "p0Qx7" * 8,
    "rasa_token": "r-88d1e0c2",
    "base_url": "https://dgj.example.cn",
    "cookie_secure": True,
}
# what the development settings ship with (bot/settings.py): none of them may run in production
DEVELOPMENT_DEFAULTS = {
    "wechat_token": "daguanjia-dev-token",
    "wechat_secret": "simulator-secret",
    "rasa_token": "daguanjia-local-rasa",
    "session_secret": "",
    "link_secret": "",
}
PLACEHOLDER_WORDS = [
    "",
    "   ",
    "changeme",
    "CHANGEME",
    "change-me",
    "secret",
    "Secret",
    " token ",
    "xxx",
    "XXX",
]


def production(**changes: Any) -> Settings:
    return Settings(_env_file=None, environment="production", **(REAL | changes))  # type: ignore[call-arg]


def test_a_real_production_configuration_starts() -> None:
    settings = production()
    assert settings.session_secret == REAL["session_secret"]
    assert settings.cookie_secure is True


@pytest.mark.parametrize("name", SECRETS)
def test_a_development_default_secret_is_refused_in_production(name: str) -> None:
    with pytest.raises(ValidationError, match=f"{name.upper()} must be set to a real secret in production"):
        production(**{name: DEVELOPMENT_DEFAULTS[name]})


@pytest.mark.parametrize("word", PLACEHOLDER_WORDS)
@pytest.mark.parametrize("name", SECRETS)
def test_a_placeholder_secret_is_refused_in_production(name: str, word: str) -> None:
    with pytest.raises(ValidationError, match=name.upper()):
        production(**{name: word})


def test_a_secret_left_out_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.delenv(name.upper(), raising=False)
    for name in SECRETS:
        kept = {k: v for k, v in REAL.items() if k != name}
        with pytest.raises(ValidationError, match=name.upper()):
            Settings(_env_file=None, environment="production", **kept)  # type: ignore[call-arg]


@pytest.mark.parametrize("base_url", ["http://dgj.example.cn", "dgj.example.cn", "HTTP://dgj.example.cn", ""])
def test_a_base_url_without_https_is_refused_in_production(base_url: str) -> None:
    with pytest.raises(ValidationError, match="BASE_URL must be an https:// address in production"):
        production(base_url=base_url)


def test_insecure_cookies_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="COOKIE_SECURE must be true in production"):
        production(cookie_secure=False)


@pytest.mark.parametrize("environment", ["development", "test"])
def test_outside_production_the_defaults_start_and_missing_secrets_are_generated(environment: str) -> None:
    settings = Settings(_env_file=None, environment=environment, session_secret="", link_secret="")  # type: ignore[call-arg]
    assert len(settings.session_secret) >= 32 and len(settings.link_secret) >= 32
    assert settings.session_secret != settings.link_secret
    again = Settings(_env_file=None, environment=environment, session_secret="", link_secret="")  # type: ignore[call-arg]
    assert again.session_secret != settings.session_secret  # random per process, never a shared constant
