"""Helpers shared by web tests: CSRF tokens and staff sign-in over real HTTP.

Append new helpers; never import from a test module."""

from __future__ import annotations

import re
from typing import Any


async def csrf(client: Any, path: str) -> str:
    """The CSRF token of the form on the page at ``path``."""
    body = await (await client.get(path)).text()
    m = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert m, body[:300]
    return m.group(1)


async def login(client: Any, username: str, password: str) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    token = await csrf(client, "/staff/login")
    resp = await client.post(
        "/staff/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 302, await resp.text()
    return token


async def app_client(db_url: str, tmp_path: Any, aiohttp_client: Any, *, now: Any, **overrides: Any) -> Any:
    """A test client of the real app factory on a migrated database, with the clock fixed at ``now``."""
    from bot.app import create_app
    from bot.db import migrate
    from bot.settings import Settings

    await migrate(db_url)
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": db_url,
        "session_secret": "s" * 40,
        "link_secret": "l" * 40,
        "scheduler_enabled": False,
        "rasa_url": "http://127.0.0.1:9",
        "data_dir": tmp_path,
        "base_url": "http://bot.test",
    }
    values.update(overrides)
    app = create_app(Settings(**values), clock=lambda: now, run_migrations=False, with_scheduler=False)
    return await aiohttp_client(app)
