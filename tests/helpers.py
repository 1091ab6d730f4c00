"""Helpers shared by the tests (never a test module; no test module imports another):

- the services the suite uses and where to find them (one ``TEST_PG_URL``, one ``TEST_REDIS_URL``, Chromium where
  setup installs it, the Rasa environment), read once from the environment;
- listening sockets on port 0 handed to the server (no port race when tests run in parallel);
- the app built by ``bot.app.create_app`` itself (never a copy of it), CSRF tokens, sign-in, wait-until, signed
  WeChat requests;
- the whole system (the WeChat simulator and the bot) on real sockets.

Append new helpers; never import from a test module."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from bot.app import create_app
from bot.db import migrate
from bot.settings import ROOT, Settings
from tests.factories import NOW, PASSWORD, add_staff
from webhooks.testing import message_xml

# ---------------------------------------------------------------------------- the services the suite uses
#: the one PostgreSQL the suite uses (SQLAlchemy form); the admin connection and per-test databases derive from it
TEST_PG_URL = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
#: the one Redis database the suite uses (database 15, so a developer's data in 0 is never touched)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: set by .ci/run: a missing service is a failure, not a skip
CI_STRICT = os.environ.get("CI_STRICT", "") not in ("", "0", "false")
#: how the browser tests start Debian's Chromium (never a downloaded browser), as scripts/setup.sh installs it
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_TOKEN = "test-rasa-token"
SIM_TOKEN, SIM_APPID, SIM_SECRET = "test-token", "wxtest0000simulator", "test-secret"
SIM_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#: an address where nothing listens (the discard port): Rasa "down" without taking a port
NOWHERE = "http://127.0.0.1:9"


def pg_dsn(database: str | None = None) -> str:
    """``TEST_PG_URL`` as asyncpg wants it (no ``+asyncpg``), optionally for another database on that server."""
    url = TEST_PG_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    return url if database is None else url.rsplit("/", 1)[0] + f"/{database}"


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+asyncpg://``) as asyncpg wants it."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def new_resident(sessions: Any, openid: str) -> int:
    """A resident of ``openid`` committed through ``sessions``; their id."""
    from bot.db import transaction
    from bot.models import Resident

    async with transaction(sessions) as session:
        row = Resident(openid=openid, created_at=datetime.now(UTC))
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def keyword_bot(url: str, folder: Path, *, migrate: bool) -> Any:
    """The bot's app on ``url`` with the keyword NLU (the benchmarks' settings), started: its ``web.AppRunner``; the
    webhook's handler is ``runner.app[WEBHOOK_HANDLER]``."""
    from benchmarks.webhook import _keyword_nlu, bot_settings

    settings = bot_settings(
        db_url=url, data_dir=folder, rasa_url="http://127.0.0.1:9", sim_port=9, bot_port=9
    )
    app = create_app(Settings(**settings), run_migrations=migrate, with_scheduler=False)
    app.cleanup_ctx.append(_keyword_nlu)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the test server."""
    return "postgresql+asyncpg://" + pg_dsn(database).split("://", 1)[1]


def _host_port(url: str, default: int) -> tuple[str, int]:
    netloc = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    return host or "127.0.0.1", int(port or default)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def postgres_reachable() -> bool:
    return reachable(*_host_port(TEST_PG_URL, 5432))


def redis_reachable() -> bool:
    return reachable(*_host_port(TEST_REDIS_URL, 6379))


# ---------------------------------------------------------------------------- sockets without a port race
def bound_socket() -> socket.socket:
    """A listening TCP socket on 127.0.0.1, port chosen by the kernel; hand it to ``web.SockSite`` so nobody can
    take the port between choosing and serving."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def free_port() -> int:
    """A port free right now, for a *child process* that must bind it itself (Rasa, ``python -m bot run``).

    In-process servers use :func:`bound_socket` instead. The short window between closing and the child's bind is
    the one race left; the kernel hands out ephemeral ports in sequence, so two workers do not get the same one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(app: web.Application, sock: socket.socket | None = None) -> tuple[web.AppRunner, str]:
    """Run ``app`` on ``sock`` (a new :func:`bound_socket` when omitted); returns the runner and the base URL."""
    sock = sock or bound_socket()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{port_of(sock)}"


async def api_simulator(
    appid: str, secret: str, *, cancel_handlers: bool = False
) -> tuple[web.AppRunner, Any, int]:
    """The WeChat simulator's API side (plain mode, no webhook to push to) on a free port, for processes of the bot
    that call WeChat: its runner (``cleanup()`` when done), its state (``SIM_STATE``: sent messages, faults) and the
    port. ``cancel_handlers``: a killed client's pending requests are cancelled, as if they never reached WeChat."""
    from wechat_sim.server import SIM_STATE, create_sim_app

    sim = create_sim_app(
        token="t",
        appid=appid,
        aes_key=None,
        mode="plain",
        webhook_url="http://127.0.0.1:9/wechat",
        secret=secret,
    )
    runner = web.AppRunner(sim, handler_cancellation=cancel_handlers)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, sim[SIM_STATE], port


async def terminate(proc: asyncio.subprocess.Process, grace: float = 30.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL after ``grace`` seconds; nothing if it has ended."""
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()


# ---------------------------------------------------------------------------- waiting
async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def settle(app: web.Application) -> None:
    """Wait for the app's background tasks (``bot.app.spawn``: e.g. the send a retry starts at once)."""
    from bot import keys

    while tasks := set(app.get(keys.TASKS, ())):
        await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------- signed WeChat requests
def wechat_signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """WeChat's callback signature, written here from WeChat's documentation (SHA-1 of the sorted parts), not
    taken from the code under test."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, *extra))).encode()).hexdigest()


def signed_query(token: str, *, timestamp: int | None = None, nonce: str | None = None, **extra: str) -> dict:
    """The query string WeChat sends with a plain-mode callback."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or uuid.uuid4().hex[:10]
    return {"timestamp": ts, "nonce": nonce, "signature": wechat_signature(token, ts, nonce), **extra}


def wechat_sender(
    token: str = SIM_TOKEN, appid: str = SIM_APPID, aes_key: str | None = None, mode: str = "plain"
):
    """WeChat's side of the webhook (``webhooks.testing.WeChatSender``: encrypts and signs with wechatpy, an
    implementation independent of the edge's own crypto)."""
    from webhooks.testing import (
        WeChatSender,  # test-only module of the webhook edge, not needed by most tests
    )

    return WeChatSender(token=token, appid=appid, aes_key=aes_key, mode=mode)  # type: ignore[arg-type]


_next_msgid = [int(time.time() * 1000)]


@dataclass(frozen=True)
class Said:
    key: str  # the delivery key, ``msg:<MsgId>``
    reply: str  # the passive reply's text, or "" for ``success``
    seconds: float  # until the answer


async def say_text(
    http: aiohttp.ClientSession,
    base: str,
    openid: str,
    words: str,
    *,
    msgid: int | None = None,
    account: str = "gh_test00001",
) -> Said:
    """A resident's text message to the app at ``base`` (plain mode, signed like WeChat), with a new MsgId unless
    ``msgid`` repeats an earlier one (a WeChat retry); the HTTP status must be 200."""
    sender = wechat_sender(SIM_TOKEN, mode="plain")
    if msgid is None:
        _next_msgid[0] += 1
        msgid = _next_msgid[0]
    xml = message_xml(
        {
            "ToUserName": account,
            "FromUserName": openid,
            "CreateTime": int(time.time()),
            "MsgType": "text",
            "Content": words,
            "MsgId": msgid,
        }
    )
    req = sender.build(xml)
    started = time.monotonic()
    async with http.post(f"{base}/wechat", params=req.params, data=req.body) as resp:
        assert resp.status == 200
        body = await resp.text()
    fields = sender.open_reply(body)
    return Said(f"msg:{msgid}", fields["Content"] if fields else "", time.monotonic() - started)


# ---------------------------------------------------------------------------- the app, CSRF, sign-in
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


async def sign_in(client: Any, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
    """Post the login form (with its CSRF token); returns the response (302 on success) for the test to judge."""
    token = await csrf(client, "/staff/login")
    return await client.post(
        "/staff/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
    )


def test_settings(db_url: str, *, data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings of a test app on ``db_url``: no scheduler, Rasa unreachable, fixed secrets."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": db_url,
        "session_secret": "s" * 40,
        "link_secret": "l" * 40,
        "scheduler_enabled": False,
        "rasa_url": NOWHERE,
        "base_url": "http://bot.test",
    }
    if data_dir is not None:
        values["data_dir"] = data_dir
    values.update(overrides)
    return Settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def build_app(
    db_url: str, *, clock: Callable[[], datetime] = lambda: NOW, api_base: str = "", **overrides: Any
) -> web.Application:
    """The whole app as ``bot.app.create_app`` builds it, on an already migrated ``db_url``, clock fixed."""
    # WeChat's API at a closed port unless a test brings its fake; links to the site under the old test base URL
    values: dict[str, Any] = {"wechat_api_base": api_base or NOWHERE, "base_url": "http://127.0.0.1:1"}
    settings = test_settings(db_url, **{**values, **overrides})
    return create_app(settings, clock=clock, run_migrations=False, with_scheduler=False)


# ---------------------------------------------------------------------------- migrated SQLite files
_SQLITE_TEMPLATE: list[Path] = []


async def sqlite_template() -> Path:
    """This process's one migrated SQLite file (Alembic runs once per pytest worker, not once per test)."""
    if not _SQLITE_TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="dgj_sqlite_tpl_"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.sqlite3"
        await migrate(f"sqlite+aiosqlite:///{path}")
        if not _SQLITE_TEMPLATE:  # another task of this process may have finished first
            _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


async def migrated_sqlite(path: Path) -> str:
    """A migrated SQLite database at ``path`` (a copy of :func:`sqlite_template`); returns its URL. The copy is the
    same schema and seed rows a migration writes, in a millisecond instead of Alembic's ~0.4 s of CPU."""
    shutil.copy(await sqlite_template(), path)
    return f"sqlite+aiosqlite:///{path}"


async def app_client(db_url: str, tmp_path: Any, aiohttp_client: Any, *, now: Any, **overrides: Any) -> Any:
    """A test client of the real app factory on a migrated database, with the clock fixed at ``now``."""
    await migrate(db_url)  # normally a no-op: the db_url/sqlite_url fixtures hand out migrated databases
    settings = test_settings(db_url, data_dir=tmp_path, **overrides)
    app = create_app(settings, clock=lambda: now, run_migrations=False, with_scheduler=False)
    return await aiohttp_client(app)


async def staff_client(tmp_path: Path, aiohttp_client: Any, db_name: str = "staff.sqlite3") -> Any:
    """A test client of the whole app on a new migrated SQLite file ``tmp_path / db_name``."""
    url = await migrated_sqlite(tmp_path / db_name)
    return await aiohttp_client(build_app(url))


async def stats_app(tmp_path: Path, now: datetime) -> web.Application:
    """The whole app on a new migrated SQLite file ``tmp_path / "stats.sqlite3"``, the clock fixed at ``now``."""
    url = await migrated_sqlite(tmp_path / "stats.sqlite3")
    return build_app(url, clock=lambda: now)


async def signed_in_admin(client: Any, sessions: Any) -> Any:
    """Create the admin account ``adm`` and sign ``client`` in with it."""
    await add_staff(sessions, "adm", "admin", town=None)
    assert (await sign_in(client, "adm")).status == 302
    return client


# ---------------------------------------------------------------------------- the system on real sockets
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
    runners: list[web.AppRunner] = field(default_factory=list)

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
    db_url: str, data_dir: Path, *, rasa_url: str = NOWHERE, sim_port: int = 9, **over: Any
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


async def start_system(
    settings: Settings, *, sim_sock: socket.socket, bot_sock: socket.socket, **app_kw: Any
) -> System:
    """The simulator on ``sim_sock`` and the bot (``create_app``) on ``bot_sock``, both already bound."""
    from wechat_sim.server import create_sim_app

    sim_app = create_sim_app(
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        aes_key=settings.wechat_encoding_aes_key or None,
        mode="safe" if settings.wechat_encoding_aes_key else "plain",
        webhook_url=f"http://127.0.0.1:{port_of(bot_sock)}/wechat",
        secret=settings.wechat_secret,
    )
    sim_runner, sim_url = await serve(sim_app, sim_sock)
    clock = Clock()
    app = create_app(settings, run_migrations=False, clock=clock, **app_kw)
    runner, bot_url = await serve(app, bot_sock)
    http = aiohttp.ClientSession()
    return System(settings, app, sim_app, bot_url, sim_url, http, clock, [runner, sim_runner])


async def restart_bot(system: System, **app_kw: Any) -> None:
    """Stop the bot's app and start a fresh one on the same database and port (a restart)."""
    await system.runners[0].cleanup()
    app = create_app(system.settings, run_migrations=False, clock=system.clock, **app_kw)
    runner = web.AppRunner(app)
    await runner.setup()
    port = int(system.bot_url.rsplit(":", 1)[1])
    # the port was ours a moment ago; rebinding it is what a restarted process does (SO_REUSEADDR)
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    system.app = app
    system.runners[0] = runner


async def stop_system(system: System) -> None:
    await system.http.close()
    for runner in system.runners:
        await runner.cleanup()


@asynccontextmanager
async def running_system(
    db_url: str, data_dir: Path, *, rasa_url: str | None = None, **overrides: Any
) -> AsyncIterator[System]:
    """The simulator and the bot on two sockets of their own over `db_url`; without `rasa_url`, Rasa is
    unreachable and the bot runs on its keyword fallback."""
    sim_sock, bot_sock = bound_socket(), bound_socket()
    settings = make_settings(
        db_url,
        data_dir,
        rasa_url=rasa_url or NOWHERE,
        sim_port=port_of(sim_sock),
        **{"base_url": f"http://127.0.0.1:{port_of(bot_sock)}", **overrides},
    )
    s = await start_system(settings, sim_sock=sim_sock, bot_sock=bot_sock)
    try:
        yield s
    finally:
        await stop_system(s)


# ---------------------------------------------------------------------------- Chromium: accessibility and layout
#: axe-core from its npm package (package.json; `npm ci` in scripts/setup.sh), injected by Playwright
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"


def require_axe() -> Path:
    """axe-core's script; a skip only where npm itself is missing, a failure where setup was not run."""
    import shutil  # only the browser tests need it

    import pytest  # helpers is imported by conftest too; pytest is always there when this runs

    if not AXE_JS.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, so axe-core cannot be (run scripts/setup.sh)")
        raise AssertionError(f"{AXE_JS} is missing: run scripts/setup.sh (npm ci installs axe-core)")
    return AXE_JS


async def signed_in_state(browser: Any, base: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    """The cookies of a session signed in through the real login form in Chromium."""
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(f"{base}/staff/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda u: "/staff/login" not in u)
    state: dict[str, Any] = await ctx.storage_state()
    await ctx.close()
    return state


# ---------------------------------------------------------------------------- a database that goes away
class TcpSwitch:
    """A TCP forwarder on a real port in front of a server (PostgreSQL): ``down()`` cuts every open connection and
    refuses new ones (accepted, then closed at once), ``stall()`` keeps every connection open and accepts new ones
    but forwards nothing either way (a server that hangs), ``up()`` forwards again. Point the app's URL at
    ``port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.is_up = True
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> TcpSwitch:
        sock = bound_socket()
        self.port = port_of(sock)
        self._server = await asyncio.start_server(self._client, sock=sock)
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            writer.close()
            return
        await self._flowing.wait()  # stalled: the connection is accepted and then left waiting
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def down(self) -> None:
        self.is_up = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def stall(self) -> None:
        self._flowing.clear()

    def up(self) -> None:
        self.is_up = True
        self._flowing.set()

    async def close(self) -> None:
        self.down()
        self._flowing.set()  # stalled pipes wake up, find their connections cut and end
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def switched_pg_url(url: str, port: int) -> str:
    """``url`` (a database on the test server) reached through a :class:`TcpSwitch` on ``port``."""
    head, tail = url.split("://", 1)
    creds, rest = tail.split("@", 1) if "@" in tail else ("", tail)
    database = rest.split("/", 1)[1]
    return f"{head}://{creds + '@' if creds else ''}127.0.0.1:{port}/{database}"


def pg_host_port() -> tuple[str, int]:
    return _host_port(TEST_PG_URL, 5432)


# ---------------------------------------------------------------------------- a Rasa stand-in
class RasaStandIn:
    """A server that answers like Rasa's HTTP API (`/status`, `/model/parse`), or stalls (until `released`, at most
    30 s), answers 500, garbage or a wrong shape on request (`mode`), and counts what it was asked."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.fingerprint = "model-1"
        self.parsed: Counter[str] = Counter()
        self.released = asyncio.Event()  # set at teardown: a stalled parse ends then, not 30 s later
        self.gates: dict[
            str, asyncio.Event
        ] = {}  # a text whose gate is closed stalls until it opens (≤ 30 s)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/status", self.status)
        app.router.add_post("/model/parse", self.parse)
        return app

    async def status(self, request: web.Request) -> web.Response:
        assert request.query.get("token") == RASA_TOKEN
        return web.json_response({"model_file": f"{self.fingerprint}.tar.gz", "model_id": self.fingerprint})

    async def parse(self, request: web.Request) -> web.Response:
        said = (await request.json())["text"]
        self.parsed[said] += 1
        if said in self.gates:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gates[said].wait(), 30)
        if self.mode == "stall":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), 30)
        if self.mode == "500":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "garbage":
            return web.Response(text="<html>oops", content_type="application/json")
        if self.mode == "wrong_shape":
            return web.json_response(
                {"intent": {"name": "greet", "confidence": "very"}, "entities": [{"start": "a", "end": 2}]}
            )
        return web.json_response(
            {
                "text": said,
                "intent": {"name": "greet", "confidence": 0.97},
                "entities": [],
                "intent_ranking": [{"name": "greet", "confidence": 0.97}],
            }
        )


# ---------------------------------------------------------------------------- residents, the app, the audit (journal)
class Phone:
    """Residents' messages over HTTP to the running app, in plain mode, with distinct MsgIds."""

    def __init__(self, base: str, *, account: str = "gh_test00001") -> None:
        self.base = base
        self.account = account
        self.sent: list[tuple[str, str, str]] = []  # (delivery key, openid, text)

    async def say(
        self, http: aiohttp.ClientSession, openid: str, text: str, *, msgid: int | None = None
    ) -> str:
        said = await say_text(http, self.base, openid, text, msgid=msgid, account=self.account)
        if msgid is None:  # a new message, not WeChat sending an earlier one again
            self.sent.append((said.key, openid, text))
        return said.reply


async def start_plain(url: str, data_dir: Path) -> tuple[Any, str, Any]:
    """The app on a real port in plain mode (no EncodingAESKey), no migrations, no scheduler."""
    settings = make_settings(url, data_dir, wechat_encoding_aes_key="")
    app = create_app(settings, run_migrations=False, with_scheduler=False)
    runner, base = await serve(app)
    return runner, base, app


async def audit_deliveries(db: str, phone: Phone) -> list[Any]:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        rows = await conn.fetch(
            "SELECT id, delivery_key, openid, text, reply_mode FROM inboundmessage ORDER BY id"
        )
        outbox = await conn.fetch("SELECT dedupe_key FROM outbox WHERE dedupe_key LIKE 'reply:%'")
    finally:
        await conn.close()
    keys = [r["delivery_key"] for r in rows]
    sent = [k for k, _, _ in phone.sent]
    lost = set(sent) - set(keys)
    duplicated = {k for k in keys if keys.count(k) > 1}
    assert not lost, f"lost deliveries: {sorted(lost)}"
    assert not duplicated, f"duplicated deliveries: {sorted(duplicated)}"
    assert len(rows) == len(sent)
    assert all(r["reply_mode"] != "pending" for r in rows), [r["reply_mode"] for r in rows]
    return [rows, [o["dedupe_key"] for o in outbox]]


def text_delivery(key: str, openid: str, text: str, *, account: str = "gh_test") -> Any:
    """The verified delivery of a text message the phone sent under ``key``, as the webhook hands it on."""
    from webhooks import Delivery

    return Delivery(
        key=key,
        openid=openid,
        account=account,
        msg_type="text",
        event=None,
        text=text,
        media={},
        create_time=datetime.now(UTC),
        raw_xml="",
    )
