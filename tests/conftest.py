"""Shared fixtures: real databases (SQLite always, PostgreSQL when reachable), the session-trained Rasa server,
the WeChat simulator and the bot on real ports, talking real HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import ROOT
from tests import helpers
from tests.helpers import (
    CHROMIUM,
    CI_STRICT,
    RASA_BIN,
    RASA_TOKEN,
    TEST_PG_URL,
    TEST_REDIS_URL,
    System,
    build_app,
    free_port,
    pg_dsn,
    pg_url,
    postgres_reachable,
    redis_reachable,
    running_system,
)

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


# ---------------------------------------------------------------------------- services: skip, or fail under CI
def _missing(what: str) -> None:
    """A service the test needs is not there: a skip on a developer's machine, a failure under CI (CI_STRICT=1,
    set by .ci/run), so CI cannot go quietly green."""
    if CI_STRICT:
        pytest.fail(f"CI_STRICT: {what}", pytrace=False)
    pytest.skip(what)


def require_postgres() -> None:
    if not postgres_reachable():
        _missing(f"PostgreSQL is not reachable at TEST_PG_URL={TEST_PG_URL}")


def require_redis() -> None:
    if not redis_reachable():
        _missing(f"Redis is not reachable at TEST_REDIS_URL={TEST_REDIS_URL}")


def require_rasa() -> None:
    if not RASA_BIN.exists():
        _missing(f"the Rasa environment is not installed ({RASA_BIN}; run scripts/setup.sh)")


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        _missing(f"Chromium is not installed at {CHROMIUM} (scripts/setup.sh --browser)")


REQUIRE = {
    "postgres": require_postgres,
    "redis": require_redis,
    "rasa": require_rasa,
    "browser": require_chromium,
}
#: fixtures that start the real Rasa: a test using one is a `rasa` test, marked or not
RASA_FIXTURES = {"rasa_model", "rasa_url", "system", "chat"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by what a test needs, so `-m "not rasa and not browser"` (make test-fast) leaves out exactly those."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & RASA_FIXTURES:
            item.add_marker(pytest.mark.rasa)
        if "tests/browser/" in item.nodeid or "/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)
        for folder in ("unit", "web", "e2e", "browser"):
            if f"/tests/{folder}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, folder))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every skip for a missing service goes through the one function for that service."""
    for name, require in REQUIRE.items():
        if item.get_closest_marker(name) is not None:
            require()


# ---------------------------------------------------------------------------- databases
class PgTemplate:
    """One migrated template database per test session; each test gets a fast copy (CREATE DATABASE … TEMPLATE)."""

    def __init__(self) -> None:
        self.name = f"dgj_tpl_{uuid.uuid4().hex[:8]}"
        self.made: list[str] = []

    async def _admin(self) -> Any:
        import asyncpg

        return await asyncpg.connect(pg_dsn())

    async def create(self) -> None:
        from bot.db import migrate

        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        await migrate(self.url(self.name))

    async def copy(self) -> str:
        name = f"dgj_t_{uuid.uuid4().hex[:10]}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        finally:
            await conn.close()
        self.made.append(name)
        return self.url(name)

    async def drop_all(self) -> None:
        conn = await self._admin()
        try:
            for name in [*self.made, self.name]:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    @staticmethod
    def url(name: str) -> str:
        return pg_url(name)


def _run_alone(coro: Any) -> Any:
    """Run a coroutine to the end on its own loop in a thread: ``db_url`` asks for the template from inside the
    test's running loop (``getfixturevalue``), where ``asyncio.run`` is refused."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PgTemplate | None]:
    if not postgres_reachable():
        yield None
        return
    tpl = PgTemplate()
    _run_alone(tpl.create())
    yield tpl
    _run_alone(tpl.drop_all())


@pytest.fixture
async def pg(pg_template: PgTemplate | None) -> str:
    """The URL of a fresh migrated PostgreSQL database of its own (the test skips without PostgreSQL)."""
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable")
    url: str = await pg_template.copy()
    return url


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    """The worker's one migrated SQLite file (``helpers.sqlite_template``, shared with ``helpers.migrated_sqlite``)."""
    return asyncio.run(helpers.sqlite_template())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated database per test: SQLite always, PostgreSQL when reachable. The PostgreSQL template is
    asked for only by the PostgreSQL half, so a run without it (``-m "not postgres"``) never migrates one."""
    if request.param == "sqlite":
        return await helpers.migrated_sqlite(tmp_path / "db.sqlite3")
    pg_template: PgTemplate | None = request.getfixturevalue("pg_template")
    if pg_template is None:
        require_postgres()
    assert pg_template is not None
    return await pg_template.copy()


@pytest.fixture
async def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return await helpers.migrated_sqlite(tmp_path / "db.sqlite3")


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Any]:
    from bot.db import make_engine, make_sessions

    engine = make_engine(db_url)
    yield make_sessions(engine)
    await engine.dispose()


# ---------------------------------------------------------------------------- Rasa, trained once per session
@pytest.fixture(scope="session")
def rasa_model() -> Path:
    from bot.ops.rasa_service import train_if_needed

    require_rasa()
    return train_if_needed(
        project_dir=ROOT / "nlu_data",
        models_dir=ROOT / "nlu_data" / "models",
        rasa_bin=RASA_BIN,
    )


@pytest.fixture(scope="session")
def rasa_url(rasa_model: Path) -> Iterator[str]:
    """The real Rasa server with the session-trained model, started once. Its managing coroutine lives on an event
    loop of its own in a thread, so its output keeps being drained while the tests' loops come and go."""
    import threading

    from bot.ops.rasa_service import RasaProcess

    proc = RasaProcess(
        rasa_bin=RASA_BIN,
        model=rasa_model,
        port=free_port(),  # a child process binds it (see helpers.free_port)
        token=RASA_TOKEN,
        startup_timeout=240,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="rasa-loop", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(proc.start(), loop).result()
    yield proc.url
    asyncio.run_coroutine_threadsafe(proc.stop(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


# ---------------------------------------------------------------------------- the app and the system
@pytest.fixture
async def web_client(sqlite_url: str, aiohttp_client: Any) -> Any:
    """A test client of the whole app, built by ``bot.app.create_app`` (through ``helpers.build_app``), on a fresh
    migrated SQLite database, the clock fixed at ``factories.NOW``."""
    return await aiohttp_client(build_app(sqlite_url))


@pytest.fixture
def web_sessions(web_client: Any) -> Any:
    """The session factory of ``web_client``'s app."""
    from bot import keys

    return web_client.app[keys.SESSIONS]


@pytest.fixture
async def system(db_url: str, tmp_path: Path, rasa_url: str) -> AsyncIterator[System]:
    """Simulator + bot (real Rasa) on real ports over a fresh database (SQLite and PostgreSQL)."""
    async with running_system(db_url, tmp_path, rasa_url=rasa_url) as s:
        yield s


@pytest.fixture
async def chat(sqlite_url: str, tmp_path: Path, rasa_url: str) -> AsyncIterator[System]:
    """The system with the real Rasa on SQLite only (dialogue tests; the database matrix runs elsewhere)."""
    async with running_system(sqlite_url, tmp_path, rasa_url=rasa_url) as s:
        yield s


@pytest.fixture
async def keyword_system(sqlite_url: str, tmp_path: Path) -> AsyncIterator[System]:
    """The same, with Rasa unreachable: the bot runs on its keyword fallback."""
    async with running_system(sqlite_url, tmp_path) as s:
        yield s
