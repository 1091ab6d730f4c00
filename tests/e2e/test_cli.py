"""`python -m bot`: the documented subcommands run from the bot's venv, with settings from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_help_lists_every_job() -> None:
    done = run("--help")
    assert done.returncode == 0
    for command in (
        "serve",
        "run",
        "migrate",
        "seed",
        "train",
        "simulator",
        "scheduler",
        "staff",
        "nlu",
        "pool",
    ):
        assert command in done.stdout


@pytest.mark.slow  # starts whole processes of the bot (seconds each): run by make test, left out of make test-fast
def test_migrate_seed_and_create_staff_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}", "ENVIRONMENT": "test"}
    assert run("migrate", env=env).returncode == 0
    seeded = run("seed", "--pool-size", "50", env=env)
    assert seeded.returncode == 0 and "50 resources" in seeded.stdout
    again = run("seed", "--pool-size", "50", env=env)
    assert "0 resources" in again.stdout  # idempotent
    made = run(
        "staff",
        "create",
        "--username",
        "hj9",
        "--password",
        "a-long-password-9",
        "--role",
        "town_staff",
        "--town",
        "厚街",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    bad = run(
        "staff",
        "create",
        "--username",
        "x1",
        "--password",
        "a-long-password-9",
        "--role",
        "town_staff",
        "--town",
        "不存在镇",
        env=env,
    )
    assert bad.returncode != 0


def test_unknown_nlu_subcommand_is_refused() -> None:
    done = run("nlu", "train-everything")
    assert done.returncode == 2 and "nlu eval" in done.stderr


def test_production_refuses_development_secrets() -> None:
    import pytest
    from pydantic import ValidationError

    from bot.settings import Settings

    real = {
        "wechat_token": "tok-3f9a1c",
        "wechat_secret": "sec-7b2e90d4",
        "session_secret": "s" * 40,
        "link_secret": "l" * 40,
        "rasa_token": "r-88d1e0c2",
        "cookie_secure": True,
        "base_url": "https://dgj.example.cn",
    }
    Settings(environment="production", **real)  # accepted (a secret may contain "dev" or anything else)
    Settings(environment="production", **{**real, "wechat_token": "devolution-2026"})
    for name, bad in (
        ("wechat_token", "daguanjia-dev-token"),
        ("wechat_secret", "simulator-secret"),
        ("session_secret", ""),
        ("rasa_token", "changeme"),
    ):
        with pytest.raises(ValidationError, match=name.upper()):
            Settings(environment="production", **{**real, name: bad})
