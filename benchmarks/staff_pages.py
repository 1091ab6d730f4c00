"""Server time of the staff queue page and case page with 100,000 cases over the 33 towns.

    python -m benchmarks.staff_pages [--cases 100000] [--requests 300] [--sql] [--no-seed]

SQLite (a fresh file) by default; PostgreSQL when DATABASE_URL points there (the tables are emptied first, so
use a scratch database). ``--no-seed`` measures the database DATABASE_URL points at as it is (seeded by an earlier
run, e.g. to compare two versions of the code on the same data). After the timed requests, one request of each
page variant runs with SQLAlchemy's ``before_cursor_execute`` listening: the statements each page sends are counted
(``--sql`` prints them). The last line is JSON: cases, database, the 1-minute load average, queue/case p50/p95 in
milliseconds, the median CPU time per page (the process's, all threads, while the handler ran: on a loaded machine
the wall-clock figures include waiting for a core, this one far less) and the statements per page (the queue's
most among its variants, the case page's)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from bot import keys
from bot.cases.access import hash_password
from bot.cases.lifecycle import OPEN_STATES, STATE_LABEL
from bot.db import make_engine, migrate
from bot.models import Case, Community, Resident, Staff
from bot.settings import Settings
from reference.towns import TOWNS

PASSWORD = "bench-Passw0rd"
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
# the mix of a city's case table by status (a status added later counts like a rare one)
_MIX = {
    "submitted": 8,
    "verified": 6,
    "accepted": 10,
    "rejected": 2,
    "claimed": 10,
    "matching": 6,
    "dispatched": 6,
    "in_progress": 10,
    "completed": 10,
    "closed": 25,
    "cancelled": 4,
    "reopened": 1,
    "merged": 2,
}
STATUSES = [str(s) for s in STATE_LABEL]
WEIGHTS = [_MIX.get(s, 1) for s in STATUSES]
CATEGORIES = {
    "micro_wish": ["助学", "助医", "助老", "助残", "生活物资", "就业帮扶", "心理关爱", "其他"],
    "micro_project": ["道路交通", "照明", "公共设施", "环境卫生", "文体设施", "安全隐患", "其他"],
}
ITEMS = ["轮椅", "助听器", "米面油", "棉被", "旧电脑", "学习用品", "路灯", "扶手", "减速带", "长椅"]


async def seed(url: str, n: int) -> None:
    await migrate(url)
    engine = make_engine(url)
    rng = random.Random(20260601)
    async with engine.begin() as conn:
        for table in (
            "auditlog",
            "outbox",
            "inboundmessage",
            "caseevent",
            "offer",
            "survey",
            "feedback",
            "case",
            "resident",
            "staff",
            "caseseq",
        ):
            await conn.execute(text(f'DELETE FROM "{table}"'))
        staff_rows = []
        pw = hash_password(PASSWORD)
        for t in TOWNS:
            for role, suffix in (("town_staff", "s"), ("town_supervisor", "sup")):
                staff_rows.append(
                    {
                        "username": f"{t.short}-{suffix}",
                        "display_name": f"{t.short}{suffix}",
                        "password_hash": pw,
                        "role": role,
                        "town": t.name,
                        "failed_logins": 0,
                        "active": True,
                        "created_at": NOW,
                    }
                )
        staff_rows.append(
            {
                "username": "city",
                "display_name": "市级",
                "password_hash": pw,
                "role": "city_supervisor",
                "town": None,
                "failed_logins": 0,
                "active": True,
                "created_at": NOW,
            }
        )
        await conn.execute(insert(Staff), staff_rows)
        staff_ids = {
            r.town: r.id
            for r in (await conn.execute(text("SELECT id, town FROM staff WHERE role='town_staff'")))
        }
        # the registry: the migration's seed list, completed with 18 communities for a town it does not cover;
        # each case sits in one community of its town, by id and name, as the app files it
        listed = {r[0] for r in await conn.execute(text("SELECT DISTINCT town FROM community"))}
        missing = [
            {
                "town": t.name,
                "name": f"第{k}社区",
                "kind": "社区",
                "active": True,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for t in TOWNS
            if t.name not in listed
            for k in range(1, 19)
        ]
        if missing:
            await conn.execute(insert(Community), missing)
        registry: dict[str, list[tuple[int, str]]] = {}
        for cid, town, name in await conn.execute(
            text("SELECT id, town, name FROM community WHERE active ORDER BY town, id")
        ):
            registry.setdefault(town, []).append((cid, name))
        n_res = max(1, n // 5)
        for start in range(0, n_res, 5000):
            await conn.execute(
                insert(Resident),
                [
                    {
                        "openid": f"bench-{i}",
                        "phone": f"138{i:08d}",
                        "subscribed": True,
                        "survey_opt_out": False,
                        "cs_sent_since_interaction": 0,
                        "created_at": NOW,
                    }
                    for i in range(start, min(n_res, start + 5000))
                ],
            )
        first_res = (await conn.execute(text("SELECT MIN(id) FROM resident"))).scalar_one()
        chunk = 5000
        for start in range(0, n, chunk):
            rows = []
            for i in range(start, min(n, start + chunk)):
                town = TOWNS[i % len(TOWNS)].name
                communities = registry[town]
                community_id, community = communities[(i // len(TOWNS)) % len(communities)]
                kind = "micro_wish" if rng.random() < 0.7 else "micro_project"
                status = rng.choices(STATUSES, WEIGHTS)[0]
                created = NOW - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
                claimed = (
                    staff_ids[town]
                    if status in ("claimed", "matching", "dispatched", "in_progress")
                    else None
                )
                rows.append(
                    {
                        "case_no": f"MS{created:%Y%m%d}-{i:06d}",
                        "kind": kind,
                        "status": status,
                        "category": rng.choice(CATEGORIES[kind]),
                        "description": f"{rng.choice(ITEMS)}的诉求，编号{i}",
                        "item": rng.choice(ITEMS),
                        "town": town,
                        "community": community,
                        "community_id": community_id,
                        "resident_id": first_res + (i % n_res),
                        "channel": "wechat",
                        "claimed_by_id": claimed,
                        "needs_triage": False,
                        "awaiting_resident": False,
                        "stage_deadline": created + timedelta(days=rng.randint(1, 40))
                        if status in OPEN_STATES
                        else None,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            await conn.execute(insert(Case), rows)
        await conn.execute(
            text(
                "INSERT INTO caseevent (case_id, at, actor_type, kind, from_status, to_status, note, data) "
                "SELECT id, created_at, 'resident', 'transition', NULL, 'submitted', '通过微信公众号提交', '{}' FROM \"case\""
            )
        )
        await conn.execute(
            text(
                "INSERT INTO inboundmessage (delivery_key, openid, resident_id, msg_type, text, media, case_id, reply_mode,"
                " received_at) SELECT 'bench-' || id, 'bench', resident_id, 'text', description, '{}', id, 'passive',"
                ' created_at FROM "case"'
            )
        )
        if engine.dialect.name == "postgresql":
            for table in ("case", "caseevent", "inboundmessage", "staff", "resident"):
                await conn.execute(text(f'ANALYZE "{table}"'))
        else:
            await conn.execute(text("ANALYZE"))
    await engine.dispose()


async def community_filter(conn: AsyncConnection, town: str) -> dict[str, str]:
    """The queue's community filter as the page sends it: the id of the town's community holding most cases (the
    queue filters by id; a name would filter nothing away)."""
    row = (
        await conn.execute(
            text(
                'SELECT community_id FROM "case" WHERE town = :t AND community_id IS NOT NULL '
                "GROUP BY community_id ORDER BY COUNT(*) DESC, community_id LIMIT 1"
            ),
            {"t": town},
        )
    ).first()
    if row is None:
        raise SystemExit(f"no case of {town} has a registry community: the seed is broken")
    return {"community": str(row[0])}


async def filtered_case_nos(http: aiohttp.ClientSession, params: dict[str, str]) -> list[str]:
    """The case numbers the queue lists for ``params`` (its first page)."""
    async with http.get("/staff/cases", params=params) as resp:
        assert resp.status == 200, resp.status
        return re.findall(r'data-case="([^"]+)"', await resp.text())


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def build_app(settings: Settings) -> web.Application:
    """The real app factory; the benchmark only adds a timing middleware."""
    from bot.app import create_app

    return create_app(settings, clock=lambda: NOW, run_migrations=False, with_scheduler=False)


async def measure(url: str, requests: int, *, show_sql: bool = False) -> dict[str, float]:
    settings = Settings(
        environment="test",
        database_url=url,
        session_secret="b" * 40,
        link_secret="c" * 40,
        scheduler_enabled=False,
        rasa_url="http://127.0.0.1:9",
    )
    app = build_app(settings)
    timings: dict[str, list[float]] = {"queue": [], "case": []}
    cpu: dict[str, list[float]] = {"queue": [], "case": []}

    @web.middleware
    async def timing(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        start, cpu = time.perf_counter(), time.process_time()
        response = await handler(request)
        response.headers["Server-Timing"] = (
            f"app;dur={(time.perf_counter() - start) * 1000:.2f}, cpu;dur={(time.process_time() - cpu) * 1000:.2f}"
        )
        return response

    app.middlewares.insert(0, timing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(7)
    try:
        engine = app[keys.ENGINE]
        async with engine.connect() as conn:
            town = TOWNS[23].name  # 虎门镇
            by_community = await community_filter(conn, town)
            case_nos = [
                r[0]
                for r in await conn.execute(
                    text('SELECT case_no FROM "case" WHERE town = :t ORDER BY id LIMIT 2000'), {"t": town}
                )
            ]
        async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get("/staff/login") as resp:
                page = await resp.text()
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            async with http.post(
                "/staff/login",
                data={"username": "虎门-s", "password": PASSWORD, "csrf_token": token},
                allow_redirects=False,
            ) as resp:
                assert resp.status == 302, await resp.text()
            queue_variants = [
                {},
                {"page": "2"},
                {"page": "5"},
                {"status": "all"},
                {"due": "overdue"},
                {"due": "soon"},
                {"unclaimed": "1"},
                {"mine": "1"},
                {"kind": "micro_project"},
                {"category": "助老"},
                {"sort": "due"},
                {"sort": "old"},
                {"q": "轮椅"},
                {"q": case_nos[5]},
                by_community,
            ]
            shown = await filtered_case_nos(http, by_community)
            async with (
                engine.connect() as conn
            ):  # the filter must filter: every listed case is of that community
                outside = (
                    await conn.execute(
                        select(func.count())
                        .select_from(Case)
                        .where(
                            col(Case.case_no).in_(shown),
                            col(Case.community_id) != int(by_community["community"]),
                        )
                    )
                ).scalar_one()
            assert shown and outside == 0, (by_community, len(shown), outside)

            async def hit(path: str, params: dict[str, str], bucket: str) -> None:
                async with http.get(path, params=params) as resp:
                    assert resp.status == 200, (path, resp.status)
                    await resp.read()
                    app, used = resp.headers["Server-Timing"].split(", ")
                    timings[bucket].append(float(app.split("dur=")[1]))
                    cpu[bucket].append(float(used.split("dur=")[1]))

            for _ in range(10):  # warm-up
                await hit("/staff/cases", {}, "queue")
                await hit(f"/staff/cases/{case_nos[0]}", {}, "case")
            timings = {"queue": [], "case": []}
            cpu = {"queue": [], "case": []}
            for i in range(requests):
                await hit("/staff/cases", queue_variants[i % len(queue_variants)], "queue")
                await hit(f"/staff/cases/{rng.choice(case_nos)}", {}, "case")
            counts = await count_statements(
                http, engine.sync_engine, queue_variants, f"/staff/cases/{case_nos[0]}", show=show_sql
            )
    finally:
        await runner.cleanup()
    return {
        "queue_p50_ms": round(statistics.median(timings["queue"]), 2),
        "queue_p95_ms": round(_percentile(timings["queue"], 0.95), 2),
        "case_p50_ms": round(statistics.median(timings["case"]), 2),
        "case_p95_ms": round(_percentile(timings["case"], 0.95), 2),
        # CPU time of the process (every thread: the event loop's and SQLite's) while the handler ran: the
        # requests go one at a time, so this is the page's own work, and it moves far less with the machine's load
        "queue_cpu_p50_ms": round(statistics.median(cpu["queue"]), 2),
        "case_cpu_p50_ms": round(statistics.median(cpu["case"]), 2),
        **counts,
    }


async def count_statements(
    http: aiohttp.ClientSession,
    sync_engine: Any,
    queue_variants: list[dict[str, str]],
    case_path: str,
    *,
    show: bool,
) -> dict[str, float]:
    """The statements (BEGIN, COMMIT and PRAGMA left out) one request of each queue variant and of a case page
    sends, counted after the timed loop so the listener costs the timings nothing."""
    statements: list[str] = []
    started: list[float] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        started.append(time.perf_counter())

    def listen_after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # the statement with the time its execute took (rows are fetched afterwards and not counted in)
        statements.append(f"{(time.perf_counter() - started.pop()) * 1000:6.2f} ms  {statement}")

    def counted() -> list[str]:
        kept = [s for s in statements if s.split(None, 3)[2].upper() not in ("BEGIN", "COMMIT", "PRAGMA")]
        statements.clear()
        return kept

    event.listen(sync_engine, "before_cursor_execute", listen)
    event.listen(sync_engine, "after_cursor_execute", listen_after)
    try:
        per_queue = []
        for params in queue_variants:
            async with http.get("/staff/cases", params=params) as resp:
                await resp.read()
            sql = counted()
            per_queue.append(len(sql))
            if show:
                print(f"-- queue {params}: {len(sql)} statements", file=sys.stderr)
                for s in sql:
                    print("   ", " ".join(s.split())[:220], file=sys.stderr)
        async with http.get(case_path) as resp:
            await resp.read()
        case_sql = counted()
        if show:
            print(f"-- case page: {len(case_sql)} statements", file=sys.stderr)
            for s in case_sql:
                print("   ", " ".join(s.split())[:220], file=sys.stderr)
    finally:
        event.remove(sync_engine, "before_cursor_execute", listen)
        event.remove(sync_engine, "after_cursor_execute", listen_after)
    print(f"statements: queue {per_queue}, case page {len(case_sql)}", file=sys.stderr)
    return {"queue_statements": max(per_queue), "case_statements": len(case_sql)}


async def amain(args: argparse.Namespace) -> dict[str, object]:
    url = os.environ.get("DATABASE_URL", "")
    tmp = None
    if not url:
        tmp = tempfile.mkdtemp(prefix="staff_pages_")
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
    database = "postgresql" if url.startswith("postgresql") else "sqlite"
    if args.no_seed:
        if not os.environ.get("DATABASE_URL"):
            raise SystemExit("--no-seed measures the database DATABASE_URL points at")
    else:
        t0 = time.perf_counter()
        await seed(url, args.cases)
        print(f"seeded {args.cases} cases in {time.perf_counter() - t0:.1f}s on {database}", file=sys.stderr)
    result = await measure(url, args.requests, show_sql=args.sql)
    return {"cases": args.cases, "database": database, "load_avg_1m": round(os.getloadavg()[0], 2), **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--sql", action="store_true", help="print the statements each page sends")
    parser.add_argument("--no-seed", action="store_true", help="measure DATABASE_URL's data as it is")
    args = parser.parse_args(argv)
    result = asyncio.run(amain(args))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
