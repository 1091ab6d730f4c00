"""Fixtures for the Chromium tests in this folder: one real app on a real port per module (SQLite, migrated),
seeded by ``tests.factories.seed_every_page`` with a case in every state a page family shows, and one browser per
module. ``site.pages`` lists every page a person can open (public, resident, survey, volunteer, staff by role,
error pages), so the accessibility checks cover every route family and role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bot.app import create_app
from bot.db import migrate
from bot.settings import Settings
from tests.factories import NOW, PAGE_LINK_SECRET, Site, seed_every_page
from tests.helpers import CHROMIUM, CHROMIUM_ARGS


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("a11y")
    url = f"sqlite+aiosqlite:///{tmp / 'site.sqlite3'}"
    await migrate(url)
    settings = Settings(
        environment="test",
        database_url=url,
        session_secret="s" * 40,
        link_secret=PAGE_LINK_SECRET,
        scheduler_enabled=False,
        rasa_url="http://127.0.0.1:9",
        data_dir=tmp,
    )
    app = create_app(settings, clock=lambda: NOW, run_migrations=False, with_scheduler=False)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    s = Site(app=app, base=f"http://127.0.0.1:{port}")
    await seed_every_page(s)
    yield s
    await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright  # only where Chromium runs

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()
