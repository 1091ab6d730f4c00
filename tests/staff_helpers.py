"""Fixture bodies the staff-page test modules share: a client on a fresh migrated SQLite file, built by the same
``build_app`` as tests/test_staff_views.py, and a signed-in admin (account ``adm``)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from bot.db import migrate
from tests.web.test_staff_views import _login, _mk_staff, build_app


async def staff_client(tmp_path, aiohttp_client, db_name: str) -> TestClient:
    """A test client of the staff, admin and resident routes on a new database ``tmp_path / db_name``."""
    url = f"sqlite+aiosqlite:///{tmp_path / db_name}"
    await migrate(url)
    client: TestClient = await aiohttp_client(build_app(url))
    return client


async def signed_in_admin(client: TestClient, sessions) -> TestClient:
    """Create the admin account ``adm`` and sign ``client`` in with it."""
    await _mk_staff(sessions, "adm", "admin", town=None)
    assert (await _login(client, "adm")).status == 302
    return client
