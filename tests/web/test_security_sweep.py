"""Every route of the real app, over real HTTP on a real (SQLite) database, for every role:

- a hostile sweep: hostile values (non-ASCII digits, huge numbers, overlong strings, control characters, invalid
  dates, HTML/JS, formula prefixes) in query parameters, form fields (with a valid CSRF token, so the parsers
  behind it are reached) and path segments. No answer is a 500, and a refused request (4xx) changes nothing:
  a hash of every table is the same before and after. Every route × role once with a fixed hostile bundle,
  then hypothesis draws more;
- the authorisation matrix: the expected status of every page for every role, written by hand from the
  programme's roles (not read back from the code it checks).

The app runs in a thread with its own event loop, so hypothesis drives it from an ordinary test function."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import NOW, OTHER, PASSWORD, TOWN

ROLES = ("outsider", "community_worker", "town_staff", "town_supervisor", "city_supervisor", "admin")
ROLE_USER = {
    "community_worker": "cw",
    "town_staff": "ts",
    "town_supervisor": "sup",
    "city_supervisor": "city",
    "admin": "adm",
}
#: routes a valid-CSRF sweep must not call (they end the very session the sweep uses)
NO_SWEEP = {"staff_logout"}
#: tables whose rows a refused request is *meant* to write: attempts at secrets are counted
COUNTED_ON_REFUSAL = {"signinattempt", "alembic_version"}

HOSTILE_VALUES = [
    "²",
    "٣",
    "１２",
    "9" * 40,
    "-1",
    "1e9",
    "9999-12-31",
    "2026-02-30",
    "0000-00-00",
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    '=HYPERLINK("http://evil.example","x")',
    "+1+1",
    "@SUM(A1)",
    "\x00",
    "a\r\nSet-Cookie: x=1",
    "\t",
    "x" * 5000,
    "../../etc/passwd",
    "{{7*7}}",
    "MS20260302-0001' OR '1'='1",
    "\u202e\u200b",
]
FIELDS = sorted(
    set(
        "action active address amount answer available beneficiary body capacity_month capacity_open categories "
        "category channel code comment community contact contact_phone delete description display_name due file "
        "flag from home_town id into item items k key kind max_fund mine mode name new next note old op password "
        "phone photo_url photos pick q question remind_before_hours rk role run score sort stage status title to "
        "to_staff town towns_served unclaimed unit username page t state".split()
    )
)


# ---------------------------------------------------------------------------------------------- the live app
@dataclass
class Live:
    db_path: Path
    port: int = 0
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    app: Any = None
    runner: Any = None
    cookies: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    last_state: str = ""

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        from bot.app import create_app
        from bot.settings import Settings

        settings = Settings(
            environment="test",
            database_url=f"sqlite+aiosqlite:///{self.db_path}",
            session_secret="s" * 40,
            link_secret="l" * 40,
            scheduler_enabled=False,
            rasa_url="http://127.0.0.1:9",
            wechat_api_base="http://127.0.0.1:9",
            data_dir=self.db_path.parent,
            base_url="http://bot.test",
        )
        self.app = create_app(settings, clock=lambda: NOW, with_scheduler=False)
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def request(
        self, method: str, path: str, *, role: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Accept": "text/html", "Cookie": f"dgj_session={self.cookies[role]}"}
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text
        finally:
            conn.close()

    def state(self) -> str:
        """A hash of every table's rows (the attempt counter aside)."""
        con = sqlite3.connect(self.db_path)
        try:
            tables = [
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            ]
            digest = hashlib.sha256()
            for table in tables:
                if table in COUNTED_ON_REFUSAL or table.startswith("sqlite_"):
                    continue
                for row in con.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                    digest.update(repr((table, row)).encode())
            return digest.hexdigest()
        finally:
            con.close()


def _session_cookie(headers: dict[str, str]) -> str | None:
    m = re.search(r"dgj_session=([^;]*)", headers.get("set-cookie", ""))
    return m.group(1) if m else None


async def _seed(live: Live) -> None:
    from bot import keys
    from bot.cases.access import create_staff
    from bot.cases.numbering import create_case
    from bot.db import transaction
    from bot.delivery.outbox import enqueue
    from bot.models import Notice, Resident
    from tests.factories import mk_resource

    async with transaction(live.app[keys.SESSIONS]) as db:
        for role, user in ROLE_USER.items():
            staff = await create_staff(
                db,
                username=user,
                password=PASSWORD,
                role=role,
                town=None if role in ("city_supervisor", "admin") else TOWN,
                community="新围社区" if role == "community_worker" else None,
                display_name=user,
            )
            live.ids[f"staff:{role}"] = staff.id
        resident = Resident(openid="o-sweep-resident", phone="13812345678")
        db.add(resident)
        await db.flush()
        own = await create_case(
            db,
            kind="micro_wish",
            description="需要轮椅",
            town=TOWN,
            community="新围社区",
            resident_id=resident.id,
            now=NOW,
        )
        other = await create_case(
            db,
            kind="micro_wish",
            description="需要轮椅",
            town=OTHER,
            community="某社区",
            resident_id=None,
            now=NOW,
        )
        await enqueue(
            db,
            recipient_type="resident",
            openid=resident.openid,
            kind="progress",
            text="进度",
            case_id=own.id,
            now=NOW,
        )
        resource = await mk_resource(db, "R-SWEEP", town=TOWN)
        notice = Notice(title="通知", body="内容", town=TOWN, published_at=NOW)
        db.add(notice)
        await db.flush()
        live.ids.update(own=own.case_no, other=other.case_no, key=resource.key, notice=notice.id)


def _sign_in(live: Live, role: str) -> None:
    live.cookies[role] = ""
    status, headers, body = live.request("GET", "/staff/login", role=role)
    cookie = _session_cookie(headers)
    token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
    live.cookies[role] = cookie or ""
    if role != "outsider":
        status, headers, _ = live.request(
            "POST",
            "/staff/login",
            role=role,
            form={"username": ROLE_USER[role], "password": PASSWORD, "csrf_token": token},
        )
        assert status == 302, role
        live.cookies[role] = _session_cookie(headers) or ""
        status, headers, body = live.request("GET", "/staff/account", role=role)
        assert status == 200, role
        token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
        live.cookies[role] = _session_cookie(headers) or live.cookies[role]
    live.tokens[role] = token


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    state = Live(db_path=tmp_path_factory.mktemp("sweep") / "sweep.sqlite3")
    thread = threading.Thread(target=state.loop.run_forever, daemon=True)
    thread.start()
    state.run(state.start())
    state.run(_seed(state))
    for role in ROLES:
        _sign_in(state, role)
    state.last_state = state.state()
    yield state
    state.run(state.runner.cleanup())
    state.loop.call_soon_threadsafe(state.loop.stop)
    thread.join(10)


@dataclass(frozen=True)
class Route:
    method: str
    name: str
    template: str

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)(?::[^}]*)?\}", self.template)

    def path(self, values: dict[str, str]) -> str:
        def fill(m: re.Match[str]) -> str:
            return quote(values.get(m.group(1), "x"), safe="")

        return re.sub(r"\{(\w+)(?::[^}]*)?\}", fill, self.template)


def routes_of(app: web.Application) -> list[Route]:
    found = []
    for r in app.router.routes():
        if r.method in ("HEAD", "*") or r.resource is None or r.name == "static":
            continue
        info = r.resource.get_info()
        template = info.get("path") or info.get("formatter")
        if template:
            found.append(Route(r.method, r.name or "", template))
    return sorted(set(found), key=lambda r: (r.template, r.method))


def _valid_fill(live: Live) -> dict[str, str]:
    return {
        "case_no": live.ids["own"],
        "outbox_id": "1",
        "staff_id": str(live.ids["staff:town_staff"]),
        "notice_id": str(live.ids["notice"]),
        "key": live.ids["key"],
        "fmt": "json",
    }


def _check(
    live: Live, route: Route, role: str, path: str, query: dict[str, str], form: dict[str, str]
) -> str | None:
    """None when the answer is fine, else what went wrong. The database hash is taken after every answer: a
    refused one (4xx) must leave it as the last accepted request left it."""
    if query:
        path += "?" + urlencode(query)
    body = {**form, "csrf_token": live.tokens[role]} if route.method != "GET" else None
    status, _, text = live.request(route.method, path, role=role, form=body)
    where = f"{route.method} {route.name} as {role}: {path[:120]!r} → {status}"
    after = live.state()
    before, live.last_state = live.last_state, after
    if status >= 500 and status not in (502, 503) or "Traceback" in text:
        return where
    if status >= 400 and after != before:
        return where + " (a refused request changed the database)"
    return None


# ---------------------------------------------------------------------------------------------- the sweep
BUNDLE = ("²", "9" * 40, "\x00<script>=1+1", "x" * 3000, "2026-02-30", "=HYPERLINK(1)")


@pytest.mark.slow  # every route x every role: run by make test, left out of make test-fast
def test_every_route_every_role_with_a_hostile_bundle(live: Live) -> None:
    """Every route × role once: the same hostile value in every path segment, query parameter and form field
    (the value changes with the role, so each route meets several); routes with path parameters once more
    with valid segments, so the parsers behind the lookup are reached."""
    routes = [r for r in routes_of(live.app) if r.name not in NO_SWEEP]
    assert len(routes) > 60  # every view module is mounted
    valid = _valid_fill(live)
    problems = []
    for route in routes:
        for n, role in enumerate(ROLES):
            value = BUNDLE[(n + len(route.template)) % len(BUNDLE)]
            fields = dict.fromkeys(FIELDS, value)
            query = fields if route.method == "GET" else {}
            problems.append(
                _check(live, route, role, route.path(dict.fromkeys(route.params, value)), query, fields)
            )
            if route.params and role != "outsider":
                problems.append(_check(live, route, role, route.path(valid), query, fields))
    problems = sorted({p for p in problems if p})
    assert problems == [], "\n".join(problems)


hostile = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.dates().map(lambda d: d.isoformat()),
)


@pytest.mark.slow  # 150 hypothesis examples: run by make test, left out of make test-fast
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(data=st.data())
def test_hypothesis_hostile_values(live: Live, data: st.DataObject) -> None:
    routes = [r for r in routes_of(live.app) if r.name not in NO_SWEEP]
    route = data.draw(st.sampled_from(routes))
    role = data.draw(st.sampled_from(ROLES))
    valid = _valid_fill(live)
    segments = {p: data.draw(st.one_of(st.just(valid.get(p, "x")), hostile)) for p in route.params}
    fields = data.draw(st.dictionaries(st.sampled_from(FIELDS), hostile, max_size=6))
    problem = _check(live, route, role, route.path(segments), fields if route.method == "GET" else {}, fields)
    assert problem is None, problem


# ---------------------------------------------------------------------------------------------- the matrix
#               outsider  cw   ts   sup  city adm      (302 = to the login page)
ALL_IN = (302, 200, 200, 200, 200, 200)
ADMIN_ONLY = (302, 403, 403, 403, 403, 200)
POOL = (302, 403, 200, 200, 200, 200)
SUPERVISORS = (302, 403, 403, 200, 200, 200)
OPEN = (200, 200, 200, 200, 200, 200)
MATRIX: dict[str, tuple[int, ...]] = {
    "/staff/cases": ALL_IN,
    "/staff/cases/{own}": ALL_IN,
    "/staff/cases/{other}": (302, 404, 404, 404, 200, 200),  # another town's case: "not found"
    "/staff/cases/new": ALL_IN,
    "/staff/outbox": ALL_IN,
    "/staff/account": ALL_IN,
    "/staff/callbacks": ALL_IN,
    "/staff/calls": ALL_IN,
    "/staff/admin/staff": ADMIN_ONLY,
    "/staff/admin/categories": ADMIN_ONLY,
    "/staff/admin/deadlines": ALL_IN,  # every staff member reads the deadlines they work to
    "/staff/pool": POOL,
    "/staff/pool/import": POOL,
    "/staff/batch": POOL,
    "/staff/pool/{key}": POOL,
    "/staff/pool/export.csv": (302, 403, 302, 302, 302, 302),  # a GET exports nothing: back to the list
    "/staff/stats": ALL_IN,
    "/staff/notices": SUPERVISORS,
    "/staff/notices/{notice}/edit": SUPERVISORS,
    "/staff/audit": SUPERVISORS,
    "/my/cases": (403,) * 6,  # residents' pages need a signed link, whoever asks
    "/v/tasks": (403,) * 6,  # volunteers' pages too
    "/survey/not-a-token": (403,) * 6,
    "/public": OPEN,
    "/public/notices": OPEN,
    "/healthz": OPEN,
}
#                        method, path, form → expected per role
POST_MATRIX: list[tuple[str, dict[str, str], tuple[int, ...]]] = [
    (
        "/staff/admin/categories",
        {"op": "add", "kind": "micro_wish", "name": ""},
        (403, 403, 403, 403, 403, 302),
    ),
    ("/staff/notices", {"title": "", "body": ""}, (403, 403, 403, 400, 400, 400)),
    ("/staff/archive.xlsx", {"from": "2026-01-01", "to": "2026-03-01"}, (403, 403, 403, 200, 200, 200)),
    ("/staff/cases/{other}/act", {"action": "claim"}, (403, 404, 404, 404, 302, 302)),
    ("/staff/cases/{other}/phone", {}, (403, 404, 404, 404, 302, 302)),
    ("/staff/pool/import", {}, (403, 403, 400, 400, 400, 400)),
]


def _fill(live: Live, path: str) -> str:
    return path.format(
        own=live.ids["own"], other=live.ids["other"], key=live.ids["key"], notice=live.ids["notice"]
    )


@pytest.mark.parametrize("path", list(MATRIX))
def test_authorisation_matrix_pages(live: Live, path: str) -> None:
    got = tuple(live.request("GET", _fill(live, path), role=role)[0] for role in ROLES)
    assert got == MATRIX[path], dict(zip(ROLES, got, strict=True))


@pytest.mark.parametrize("path,form,expected", POST_MATRIX, ids=[p for p, _, _ in POST_MATRIX])
def test_authorisation_matrix_actions(
    live: Live, path: str, form: dict[str, str], expected: tuple[int, ...]
) -> None:
    got = []
    for role in ROLES:
        status, _, _ = live.request(
            "POST", _fill(live, path), role=role, form={**form, "csrf_token": live.tokens[role]}
        )
        got.append(status)
    assert tuple(got) == expected, dict(zip(ROLES, got, strict=True))
