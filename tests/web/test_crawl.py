"""Every link a person is shown leads somewhere: the real app on a real port (SQLite), seeded as the browser tests
seed it (``tests.factories.seed_every_page``), crawled over HTTP per role. Starting at the role's home page, every
same-origin ``<a href>`` is followed breadth-first and every GET form is submitted as it stands (never 退出, never
a POST), up to ``MAX_PAGES`` pages a role, each page shape (ids and case numbers normalised) opened at most
``PER_SHAPE`` times. Checked:

- no 5xx anywhere, and no 403/404/405 for a link a page showed (every offender listed with the page linking it);
- a page is HTML with a ``<title>`` and ``lang="zh-CN"``; a download (xlsx, png, pdf, csv, json) answers 200 with
  its type, and a download of personal data grows the audit log;
- no seeded resident's full phone number in any page or download; the pages an outsider or a donor reaches show no
  seeded resident's phone, beneficiary name or address."""

from __future__ import annotations

import io
import re
import zipfile
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import func
from sqlmodel import select

from bot import keys
from bot.app import create_app
from bot.db import migrate, transaction
from bot.models import AuditLog, CallBack, CallTask, Case, Resident
from bot.settings import Settings
from reference.privacy import mask_phone
from tests.factories import NOW, PAGE_LINK_SECRET, PASSWORD, Site, add_staff, seed_every_page
from tests.helpers import NOWHERE, SIM_APPID, SIM_SECRET, SIM_TOKEN, serve
from wechat_sim.server import create_sim_app

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the tests share the module's server and its loop

MAX_PAGES = 400
PER_SHAPE = 3
#: downloads by content type (the part before ";")
DOWNLOADS = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "image/png": "png",
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/json": "json",
}
#: downloads that carry no personal data (no audit expected): the app's own assets,
#: a donor's own certificate, the API's descriptions; every other download must be audited
NOT_PERSONAL = re.compile(
    r"^/(static/|favicon\.ico|wall/claims/[^/]+/certificate\.png$|api/openapi\.json$|open311/v2/discovery)"
)
#: never followed: signing out ends the role's walk; the simulator is not part of the site
SKIP = re.compile(r"logout|/_sim/")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


class _Links(HTMLParser):
    """The page's links, and its GET forms submitted as they stand (the values a person finds filled in)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.title = False
        self.lang: str | None = None
        self._form: tuple[str, list[tuple[str, str]]] | None = None
        self._select: tuple[str, list[str], list[str]] | None = None  # name, options, selected

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        elif tag == "title":
            self.title = True
        elif tag == "html":
            self.lang = a.get("lang")
        elif tag == "form":
            get = a.get("method", "get").lower() == "get"
            self._form = (a.get("action", ""), []) if get else None
        elif self._form is None or not a.get("name") or "disabled" in a:
            return
        elif tag == "input" and a.get("type", "text") not in ("submit", "button", "file", "image", "reset"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self._form[1].append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._form[1].append((a["name"], ""))
        elif tag == "select":
            self._select = (a["name"], [], [])
        if tag == "option" and self._select is not None:
            self._select[1].append(a.get("value", ""))
            if "selected" in a:
                self._select[2].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None and self._form is not None:
            name, options, chosen = self._select
            if chosen or options:
                self._form[1].append((name, (chosen or options)[0]))
            self._select = None
        elif tag == "form" and self._form is not None:
            action, fields = self._form
            self.hrefs.append(action.split("?")[0] + "?" + urlencode(fields) if fields else action)
            self._form = None


def shape(path_query: str) -> str:
    """The page's shape: numbers, case numbers and long tokens in the path and query replaced by placeholders."""
    parts = urlsplit(path_query)

    def norm(s: str) -> str:
        s = re.sub(r"[A-Z]{2}-[0-9A-Z-]+", "{no}", s)
        s = re.sub(r"[A-Za-z0-9_.\-]{20,}", "{token}", s)
        return re.sub(r"\d+", "{id}", s)

    query = sorted(
        (k, "{v}" if k in ("sort", "dir") else norm(v))
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return norm(parts.path) + ("?" + urlencode(query) if query else "")


@dataclass
class Walk:
    role: str
    problems: list[str] = field(default_factory=list)
    visited: dict[str, int] = field(default_factory=dict)  # path+query -> status
    downloads: list[tuple[str, str]] = field(default_factory=list)  # (path, kind)
    masked: set[str] = field(default_factory=set)  # seeded numbers seen masked: the phone check saw phones


async def _audit_count(site: Site) -> int:
    async with transaction(site.app[keys.SESSIONS]) as db:
        return int((await db.exec(select(func.count()).select_from(AuditLog))).one())


async def crawl(
    site: Site, http: aiohttp.ClientSession, role: str, starts: list[str], secrets: dict[str, set[str]]
) -> Walk:
    """Breadth-first over same-origin links from ``starts``; ``secrets`` maps what must not show (phones:
    everyone; names and addresses: public roles) to the strings that betray it."""
    walk = Walk(role)
    origin = urlsplit(site.base)
    queue: deque[tuple[str, str]] = deque((s, "(start)") for s in starts)
    seen: set[str] = set(starts)
    shapes: dict[str, int] = {}
    while queue and len(walk.visited) < MAX_PAGES:
        target, linked_from = queue.popleft()
        audits = await _audit_count(site)
        async with http.get(site.base + target, allow_redirects=True) as resp:
            body = await resp.read()
            status = resp.status
            ctype = resp.content_type
            final = urlsplit(str(resp.url))
        walk.visited[target] = status
        where = f"{role}: {target} (linked from {linked_from})"
        if final.path == "/staff/login" and not target.startswith("/staff/login"):
            walk.problems.append(f"{where} sends a signed-in person back to the login page")
        if status >= 500:
            walk.problems.append(f"{where} answers {status}")
            continue
        if status in (403, 404, 405) and linked_from != "(start)":
            walk.problems.append(f"{where} answers {status}")
            continue
        if status != 200:
            walk.problems.append(f"{where} answers {status}")
            continue
        if ctype in DOWNLOADS:
            kind = DOWNLOADS[ctype]
            walk.downloads.append((target, kind))
            text = _download_text(body, kind)
            if not NOT_PERSONAL.match(final.path) and await _audit_count(site) <= audits:
                walk.problems.append(f"{where}: a {kind} download left no line in the audit log")
            _check_secrets(walk, where, text, secrets)
            continue
        if ctype != "text/html":
            if not target.startswith("/static/"):
                walk.problems.append(f"{where}: unexpected content type {ctype}")
            continue
        html = body.decode("utf-8", "replace")
        parser = _Links()
        parser.feed(html)
        if not parser.title:
            walk.problems.append(f"{where}: no <title>")
        if parser.lang != "zh-CN":
            walk.problems.append(f"{where}: html lang is {parser.lang!r}")
        _check_secrets(walk, where, html, secrets)
        page = final.path + (f"?{final.query}" if final.query else "")
        for href in parser.hrefs:
            url = urlsplit(urldefrag(urljoin(str(resp.url), href))[0])
            if url.scheme not in ("http", "https") or url.netloc != origin.netloc:
                continue
            nxt = url.path + (f"?{url.query}" if url.query else "")
            if nxt in seen or SKIP.search(nxt) or url.path.startswith("/static/"):
                continue
            seen.add(nxt)
            key = shape(nxt)
            if shapes.get(key, 0) >= PER_SHAPE:
                continue
            shapes[key] = shapes.get(key, 0) + 1
            queue.append((nxt, page))
    return walk


def _download_text(body: bytes, kind: str) -> str:
    if kind == "xlsx":
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
    if kind in ("csv", "json"):
        return body.decode("utf-8-sig", "replace")
    return ""  # images and PDF: drawn, not text


def _check_secrets(walk: Walk, where: str, text: str, secrets: dict[str, set[str]]) -> None:
    walk.masked |= {m for m in (mask_phone(p) for p in secrets["a full phone number"]) if m in text}
    for what, values in secrets.items():
        shown = sorted(v for v in values if v in text)
        if shown:
            walk.problems.append(f"{where}: shows {what} {shown}")


# ---------------------------------------------------------------------------------------------- the site
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("crawl")
    # WeChat is the simulator over HTTP: the community posters ask it for their QR codes
    sim = create_sim_app(
        token=SIM_TOKEN, appid=SIM_APPID, aes_key=None, mode="plain", webhook_url=NOWHERE, secret=SIM_SECRET
    )
    sim_runner, sim_url = await serve(sim)
    url = f"sqlite+aiosqlite:///{tmp / 'site.sqlite3'}"
    await migrate(url)
    settings = Settings(
        environment="test",
        database_url=url,
        session_secret="s" * 40,
        link_secret=PAGE_LINK_SECRET,
        scheduler_enabled=False,
        rasa_url="http://127.0.0.1:9",
        wechat_api_base=sim_url,
        wechat_token=SIM_TOKEN,
        wechat_appid=SIM_APPID,
        wechat_secret=SIM_SECRET,
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
    sessions = app[keys.SESSIONS]
    await add_staff(sessions, "crawl-cw", "community_worker")
    await add_staff(sessions, "crawl-city", "city_supervisor", town=None)
    yield s
    await runner.cleanup()
    await sim_runner.cleanup()


async def _oracle(site: Site) -> tuple[set[str], set[str]]:
    """The seeded residents' full phone numbers, and their beneficiaries' names and addresses."""
    async with transaction(site.app[keys.SESSIONS]) as db:
        phones = {p for p in (await db.exec(select(Resident.phone))).all() if p}
        phones |= {p for p in (await db.exec(select(Case.contact_phone))).all() if p}
        phones |= {p for p in (await db.exec(select(CallTask.phone))).all() if p}
        phones |= {p for p in (await db.exec(select(CallBack.phone))).all() if p}
        rows = (await db.exec(select(Case.beneficiary, Case.address))).all()
    words = {w for row in rows for w in row if w}
    return {p for p in phones if MOBILE.fullmatch(p)}, words


#: role -> (username or None for an outsider, start pages)
ROLES: dict[str, tuple[str | None, list[str]]] = {
    "outsider": (None, ["/", "/public", "/wall", "/donate"]),
    "donor": (None, []),  # the donor's own page link, from the seed
    "community_worker": ("crawl-cw", ["/staff/cases"]),
    "town_staff": ("hj-staff", ["/staff/cases"]),
    "town_supervisor": ("hj-lead", ["/staff/cases"]),
    "city_supervisor": ("crawl-city", ["/staff/cases"]),
    "admin": ("city-admin", ["/staff/cases"]),
}


@pytest.mark.parametrize("role", list(ROLES))
async def test_every_link_shown_leads_somewhere(site: Site, role: str) -> None:
    username, starts = ROLES[role]
    if role == "donor":
        starts = [
            f"/wall/claims/{site.wall_claim}",
            f"/wall/claims/{site.wall_done}",
            f"/wall/groups/{site.wall_group}",
        ]
    phones, words = await _oracle(site)
    assert len(phones) >= 3 and {"陈奶奶", "新围村三巷8号"} <= words  # the oracle holds what the seed wrote
    secrets = {"a full phone number": phones}
    if username is None:
        secrets["a resident's name or address"] = words
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        if username is not None:
            async with http.get(site.base + "/staff/login") as resp:
                m = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
            assert m
            form = {"username": username, "password": PASSWORD, "csrf_token": m.group(1)}
            async with http.post(site.base + "/staff/login", data=form, allow_redirects=False) as resp:
                assert resp.status == 302, f"{username} cannot sign in"
        walk = await crawl(site, http, role, starts, secrets)
    print(f"{role}: {len(walk.visited)} pages, {len(walk.downloads)} downloads")
    # the walk went somewhere: a staff role sees well more than its menu, a public role the public pages
    assert len(walk.visited) >= (20 if username else 3), walk.visited
    assert not walk.problems, "\n".join(walk.problems)
    if role in ("town_staff", "admin"):  # their pages show the seeded residents' numbers, masked
        assert walk.masked, f"{role}: no seeded phone number seen, masked or not"
