"""Shared fixtures: real databases (SQLite always, PostgreSQL when reachable), the session-trained Rasa server,
the WeChat simulator and the bot on real ports, talking real HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.settings import ROOT, Settings

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
PG_ADMIN = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RASA_TOKEN = "test-rasa-token"
SIM_TOKEN, SIM_APPID, SIM_SECRET = "test-token", "wxtest0000simulator", "test-secret"
SIM_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


PG_AVAILABLE = _reachable("127.0.0.1", 5432)
REDIS_AVAILABLE = _reachable("127.0.0.1", 6379)


# ---------------------------------------------------------------------------- databases
class PgTemplate:
    """One migrated template database per test session; each test gets a fast copy (CREATE DATABASE … TEMPLATE)."""

    def __init__(self) -> None:
        self.name = f"dgj_tpl_{uuid.uuid4().hex[:8]}"
        self.made: list[str] = []

    async def _admin(self) -> Any:
        import asyncpg

        return await asyncpg.connect(PG_ADMIN)

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
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PgTemplate | None]:
    if not PG_AVAILABLE:
        yield None
        return
    tpl = PgTemplate()
    asyncio.run(tpl.create())
    yield tpl
    asyncio.run(tpl.drop_all())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bot.db import migrate

    path = tmp_path_factory.mktemp("tpl") / "template.sqlite3"
    asyncio.run(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, pg_template: PgTemplate | None
) -> str:
    """A fresh, migrated database per test: SQLite always, PostgreSQL when reachable."""
    if request.param == "sqlite":
        import shutil

        path = tmp_path / "db.sqlite3"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    if pg_template is None:
        pytest.skip("PostgreSQL is not reachable")
    return await pg_template.copy()


@pytest.fixture
async def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    import shutil

    path = tmp_path / "db.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


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

    return train_if_needed(
        project_dir=ROOT / "nlu_data",
        models_dir=ROOT / "nlu_data" / "models",
        rasa_bin=ROOT / ".venv-rasa" / "bin" / "rasa",
    )


@pytest.fixture(scope="session")
def rasa_url(rasa_model: Path) -> Iterator[str]:
    """The real Rasa server with the session-trained model, started once. Its managing coroutine lives on an event
    loop of its own in a thread, so its output keeps being drained while the tests' loops come and go."""
    import threading

    from bot.ops.rasa_service import RasaProcess

    proc = RasaProcess(
        rasa_bin=ROOT / ".venv-rasa" / "bin" / "rasa",
        model=rasa_model,
        port=free_port(),
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


# ---------------------------------------------------------------------------- the system on real ports
class Clock:
    """Real time shifted by an offset the test controls (the app's injectable `now`)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kw: float) -> None:
        self.offset += timedelta(**kw)


@dataclass
class System:
    settings: Settings
    app: web.Application
    sim_app: web.Application
    bot_url: str
    sim_url: str
    http: aiohttp.ClientSession
    clock: Clock = field(default_factory=Clock)

    @property
    def sim(self) -> Any:
        from wechat_sim.server import SIM_STATE

        return self.sim_app[SIM_STATE]

    def user(self, openid: str | None = None, **kw: Any) -> Any:
        from wechat_sim.client import SimulatedUser

        return SimulatedUser(
            self.http,
            webhook_url=f"{self.bot_url}/wechat",
            token=self.settings.wechat_token,
            appid=self.settings.wechat_appid,
            aes_key=self.settings.wechat_encoding_aes_key or None,
            mode=kw.pop("mode", "safe" if self.settings.wechat_encoding_aes_key else "plain"),
            openid=openid or f"o{uuid.uuid4().hex[:20]}",
            sim_url=self.sim_url,
            **kw,
        )

    async def sent_to(self, openid: str) -> list[Any]:
        return [m for m in self.sim.sent if m.openid == openid]


def make_settings(
    db_url: str, data_dir: Path, *, rasa_url: str = "http://127.0.0.1:9", sim_port: int = 9, **over: Any
) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": db_url,
        "data_dir": data_dir,
        "rasa_url": rasa_url,
        "rasa_token": RASA_TOKEN,
        "wechat_token": SIM_TOKEN,
        "wechat_appid": SIM_APPID,
        "wechat_secret": SIM_SECRET,
        "wechat_encoding_aes_key": SIM_AES,
        "wechat_api_base": f"http://127.0.0.1:{sim_port}",
        "scheduler_enabled": False,
        "session_secret": "s" * 40,
        "link_secret": "l" * 40,
    }
    values.update(over)
    return Settings(**values)


async def start_system(settings: Settings, *, sim_port: int, bot_port: int, **app_kw: Any) -> System:
    from bot.app import create_app
    from wechat_sim.server import create_sim_app

    sim_app = create_sim_app(
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        aes_key=settings.wechat_encoding_aes_key or None,
        mode="safe" if settings.wechat_encoding_aes_key else "plain",
        webhook_url=f"http://127.0.0.1:{bot_port}/wechat",
        secret=settings.wechat_secret,
    )
    sim_runner = web.AppRunner(sim_app)
    await sim_runner.setup()
    await web.TCPSite(sim_runner, "127.0.0.1", sim_port).start()
    clock = Clock()
    app = create_app(settings, run_migrations=False, clock=clock, **app_kw)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", bot_port).start()
    http = aiohttp.ClientSession()
    system = System(
        settings, app, sim_app, f"http://127.0.0.1:{bot_port}", f"http://127.0.0.1:{sim_port}", http, clock
    )
    system._runners = [runner, sim_runner]  # type: ignore[attr-defined]
    return system


async def restart_bot(system: System, **app_kw: Any) -> None:
    """Stop the bot process's app and start a fresh one on the same database and port (a restart)."""
    from bot.app import create_app

    runner = system._runners[0]  # type: ignore[attr-defined]
    await runner.cleanup()
    app = create_app(system.settings, run_migrations=False, clock=system.clock, **app_kw)
    runner = web.AppRunner(app)
    await runner.setup()
    port = int(system.bot_url.rsplit(":", 1)[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    system.app = app
    system._runners[0] = runner  # type: ignore[attr-defined]


async def stop_system(system: System) -> None:
    await system.http.close()
    for runner in system._runners:  # type: ignore[attr-defined]
        await runner.cleanup()


@asynccontextmanager
async def running_system(
    db_url: str, data_dir: Path, *, rasa_url: str | None = None, **overrides: Any
) -> AsyncIterator[System]:
    """The simulator and the bot on two free ports over `db_url`; without `rasa_url`, Rasa is unreachable and the
    bot runs on its keyword fallback."""
    sim_port, bot_port = free_port(), free_port()
    settings = make_settings(
        db_url,
        data_dir,
        rasa_url=rasa_url or f"http://127.0.0.1:{free_port()}",
        sim_port=sim_port,
        **{"base_url": f"http://127.0.0.1:{bot_port}", **overrides},
    )
    s = await start_system(settings, sim_port=sim_port, bot_port=bot_port)
    try:
        yield s
    finally:
        await stop_system(s)


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


#: how the browser tests start Debian's Chromium (never a downloaded browser); flags as this machine needs them
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
