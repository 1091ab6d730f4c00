"""The staff queue and case page read less (one probe for the optional panels, counts instead of rows, reference
lists from a per-process cache): each shortcut against the long way it replaces, on the real databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlmodel import col

from bot import refcache
from bot.cases.access import QueueFilter, cases_query, categories, list_queue, shown_categories, staff_names
from bot.cases.callqueue import CALLBACK, CALLTASK, open_call_counts, open_calls
from bot.cases.casepage import _extras_columns, case_extras, page_case
from bot.cases.queries import flag_counts, queue_badges
from bot.db import InlineEngine, make_engine, make_sessions, transaction
from bot.deadlines.sla import policy_for, save_policy
from bot.media.tables import StoredMedia
from bot.models import (
    CallBack,
    CallTask,
    Case,
    Category,
    FundEntry,
    InboundMessage,
    Outbox,
    PolicyReferral,
    Supervision,
)
from tests.factories import NOW, TOWN, add_case, add_rows, add_staff


async def test_call_counts_are_the_call_queue_counted(sessions: Any) -> None:
    a = await add_case(sessions)
    b = await add_case(sessions, town="虎门镇")
    await add_rows(
        sessions,
        CallTask(case_id=a.id, town=TOWN, due_at=NOW - timedelta(hours=1)),  # late
        CallTask(case_id=a.id, town=TOWN, due_at=NOW + timedelta(hours=1)),
        CallTask(case_id=a.id, town=TOWN, due_at=NOW - timedelta(hours=1), done_at=NOW),  # done: not counted
        CallBack(case_id=a.id, town=TOWN, phone="13800000000", due_at=NOW - timedelta(minutes=1)),  # late
        CallBack(town=None, phone="13800000001", due_at=NOW + timedelta(hours=2)),  # town not known yet
        CallTask(case_id=b.id, town="虎门镇", due_at=NOW - timedelta(hours=3)),
    )
    async with sessions() as db:
        for town in (TOWN, "虎门镇", "麻涌镇", None):
            calls = await open_calls(db, town=town)
            counts = await open_call_counts(db, town=town, now=NOW)
            assert (counts.open, counts.late, counts.callbacks, counts.calltasks) == (
                len(calls),
                sum(c.late(NOW) for c in calls),
                sum(c.source == CALLBACK for c in calls),
                sum(c.source == CALLTASK for c in calls),
            ), town
        assert (await open_call_counts(db, town=TOWN, now=NOW)).open == 3  # the figures are not all zero
    staff = await add_staff(sessions, "s1", "town_staff")
    async with sessions() as db:  # the queue's badges: the same counts, sent with the flags in one statement
        flags, counts = await queue_badges(db, staff=staff, now=NOW)
        assert counts == await open_call_counts(db, town=TOWN, now=NOW) and flags == {}


async def test_flag_counts_stay_in_the_jurisdiction(sessions: Any) -> None:
    cases = [await add_case(sessions) for _ in range(3)] + [await add_case(sessions, town="虎门镇")]
    async with transaction(sessions) as db:
        for c, flag in zip(cases, ("phone_needed", "phone_needed", None, "phone_needed"), strict=True):
            await db.exec(update(Case).where(col(Case.id) == c.id).values(flag=flag))
    staff = await add_staff(sessions, "s1", "town_staff")
    city = await add_staff(sessions, "c1", "city_supervisor", town=None)
    async with sessions() as db:
        assert await flag_counts(db, staff=staff) == {"phone_needed": 2}
        assert await flag_counts(db, staff=city) == {"phone_needed": 3}
        for who in (staff, city):
            assert (await queue_badges(db, staff=who, now=NOW))[0] == await flag_counts(db, staff=who)


async def test_the_queue_reads_its_owners_names_with_its_cases(sessions: Any) -> None:
    """The queue's page of cases carries each owner's name (the display name, the username when it is empty;
    none when unclaimed) in the same statement: the same names the long way (``staff_names``) gives."""
    named = await add_staff(sessions, "s1", "town_staff")
    bare = await add_staff(sessions, "s2", "town_staff")
    async with transaction(sessions) as db:
        await db.exec(update(type(bare)).where(col(type(bare).id) == bare.id).values(display_name=""))
    for owner in (named.id, bare.id, None, named.id):
        await add_case(sessions, status="claimed" if owner else "verified", owner=owner)
    statements: list[str] = []
    async with sessions() as db:
        engine = db.sync_session.get_bind()
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    async with sessions() as db:
        page = await list_queue(db, staff=named, filters=QueueFilter(), now=NOW)
        sent = [s for s in statements if s.split(None, 1)[0].upper() not in ("BEGIN", "PRAGMA")]
        assert len(sent) == 1, sent
        longway = await staff_names(db, ids={named.id or 0, bare.id or 0})
    assert len(page.rows) == 4
    for row in page.rows:
        assert row.owner == (longway[row.case.claimed_by_id] if row.case.claimed_by_id else None)
    assert sorted(r.owner or "" for r in page.rows) == ["", "s1", "s1", "s2"]


async def test_the_probe_says_which_panels_have_rows(sessions: Any) -> None:
    staff = await add_staff(sessions, "s1", "town_staff")
    bare = await add_case(sessions, owner=staff.id)
    full = await add_case(sessions)
    async with sessions() as db:
        extras = await case_extras(db, case=bare)
    assert extras.resident_phone == "13812345678" and extras.owner == "s1"
    assert not (
        extras.deliveries
        or extras.supervisions
        or extras.referrals
        or extras.spending
        or extras.media
        or extras.offers
    )
    (msg,) = await add_rows(
        sessions, InboundMessage(delivery_key="k-1", openid="o", msg_type="image", case_id=full.id)
    )
    await add_rows(
        sessions,
        Outbox(openid="o", kind="status", text="已受理", case_id=full.id),
        Supervision(case_id=full.id, town=TOWN, request="请加快", due_at=NOW),
        PolicyReferral(case_id=full.id, policy_name="临时救助", department="民政", applied_for="轮椅"),
        FundEntry(
            town=TOWN, source="town", kind="spending", amount_fen=100, balance_after_fen=0, case_id=full.id
        ),
        StoredMedia(inbound_id=msg.id),  # linked through the chat message only
    )
    other = await add_staff(sessions, "h1", "town_staff", town="虎门镇")
    async with sessions() as db:
        extras = await case_extras(db, case=full)
        for c in (bare, full):  # the page reads the case and the probe in one statement: the same answers
            found = await page_case(db, cases_query(staff).where(Case.case_no == c.case_no))
            assert found is not None and found[0].id == c.id and found[1] == await case_extras(db, case=c)
        assert (
            await page_case(db, cases_query(other).where(Case.case_no == full.case_no)) is None
        )  # not theirs
    assert extras.owner is None
    assert extras.deliveries and extras.supervisions and extras.referrals and extras.spending and extras.media
    assert not extras.offers  # a case with offers: tests/web/test_pool_panel_invitations.py through the page


async def test_the_probe_reads_by_index_only(sqlite_url: str) -> None:
    """Every part of the case page's probe is a lookup by key or index on SQLite, none a scan of a table (a
    subquery that lost its correlation would read the whole case table once per page)."""
    from sqlalchemy.dialects import sqlite

    from bot.db import make_engine, migrate

    await migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    stmt = select(col(Case.id), *_extras_columns()).where(col(Case.case_no) == "MS20260302-0001")
    sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    try:
        async with engine.connect() as conn:
            plan = [r[3] for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    finally:
        await engine.dispose()
    assert plan and not [p for p in plan if p.startswith("SCAN")], plan
    assert sum(p.startswith("SEARCH") for p in plan) >= 8, plan


async def test_reference_lists_are_cached_and_dropped_on_commit(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    async with sessions() as db:
        engine = db.sync_session.get_bind()
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    clock = [1000.0]
    monkeypatch.setattr(refcache.time, "monotonic", lambda: clock[0])

    async def shown() -> list[str]:
        async with sessions() as db:
            return [c.name for c in await shown_categories(db, kind="micro_wish")]

    async def stored() -> list[str]:
        async with sessions() as db:
            return [c.name for c in await categories(db, kind="micro_wish")]

    await add_rows(
        sessions,
        Category(kind="micro_wish", name="助老", sort=2),
        Category(kind="micro_wish", name="助学", sort=1),
        Category(kind="micro_project", name="照明", sort=1),
    )
    first = await shown()
    assert first == await stored() == ["助学", "助老"]  # the same list, in the same order, as the table gives
    statements.clear()
    assert await shown() == first and not [s for s in statements if "category" in s]  # from memory
    async with transaction(sessions) as db:  # an ORM write: dropped when it commits
        db.add(Category(kind="micro_wish", name="新类别", sort=999))
    assert (await shown())[-1] == "新类别"
    try:
        async with transaction(sessions) as db:  # rolled back: nothing changed, the cache stays
            db.add(Category(kind="micro_wish", name="未保存", sort=1000))
            await db.flush()
            raise RuntimeError
    except RuntimeError:
        pass
    statements.clear()
    assert "未保存" not in await shown() and not [s for s in statements if "category" in s]
    async with transaction(sessions) as db:  # plain SQL: unseen by the events, shown once the entry expires
        await db.exec(text("UPDATE category SET name = '改名' WHERE name = '新类别'"))
    assert (await shown())[-1] == "新类别"
    clock[0] += refcache.TTL + 1
    assert (await shown())[-1] == "改名" and await shown() == await stored()


async def test_the_case_page_shows_the_probed_panels(web_client: Any, web_sessions: Any) -> None:
    """Through the app: a case with rows in the optional panels shows them; the bare one still renders."""
    from tests.helpers import sign_in

    await add_staff(web_sessions, "s1", "town_staff")
    full = await add_case(web_sessions)
    bare = await add_case(web_sessions)
    await add_rows(
        web_sessions,
        Supervision(case_id=full.id, town=TOWN, request="请尽快上门核实", due_at=NOW),
        PolicyReferral(
            case_id=full.id, policy_name="临时救助", department="镇民政办", applied_for="购买轮椅"
        ),
    )
    assert (await sign_in(web_client, "s1")).status == 302
    page = await (await web_client.get(f"/staff/cases/{full.case_no}")).text()
    assert "请尽快上门核实" in page and "购买轮椅" in page
    resp = await web_client.get(f"/staff/cases/{bare.case_no}")
    assert resp.status == 200 and "请尽快上门核实" not in await resp.text()


def test_the_case_pages_media_probe_names_the_media_table_and_its_columns() -> None:
    """bot.cases names the media table by hand (it may not import bot.media): the name and columns must match."""
    from bot.cases.casepage import STORED_MEDIA
    from bot.media.tables import StoredMedia

    real = StoredMedia.__table__  # type: ignore[attr-defined]
    assert STORED_MEDIA.name == real.name
    assert {c.name for c in STORED_MEDIA.c} <= {c.name for c in real.c}


async def test_the_queue_and_case_page_read_the_staff_member_in_their_own_session(
    db_url: str, tmp_path: Any, aiohttp_client: Any
) -> None:
    """A queue or case page takes one connection from the pool: the signed-in staff member is read in the page's
    session, not in one of its own. A page that is refused (signed out, deactivated, another town's case) gives
    its connection back all the same."""
    from bot import keys
    from tests.helpers import app_client, sign_in

    client = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    staff = await add_staff(sessions, "s1", "town_staff")
    case = await add_case(sessions)
    other = await add_case(sessions, town="虎门镇")
    assert (await sign_in(client, "s1")).status == 302
    pool = client.app[keys.ENGINE].sync_engine.pool
    checkouts: list[int] = []
    event.listen(pool, "checkout", lambda *_: checkouts.append(1))
    pages = ("/staff/cases", "/staff/cases?flag=phone_needed", f"/staff/cases/{case.case_no}")
    for path in pages:  # the reference lists (categories, communities) are cached by the first request
        assert (await client.get(path)).status == 200
    for path in pages:
        checkouts.clear()
        resp = await client.get(path)
        assert resp.status == 200 and TOWN in await resp.text(), path
        assert len(checkouts) == 1, path
        assert pool.checkedout() == 0, path
    assert (await client.get(f"/staff/cases/{other.case_no}")).status == 404
    assert pool.checkedout() == 0
    async with transaction(sessions) as db:
        await db.exec(update(type(staff)).where(col(type(staff).id) == staff.id).values(active=False))
    resp = await client.get("/staff/cases", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login")
    assert pool.checkedout() == 0
    client.session.cookie_jar.clear()
    resp = await client.get(f"/staff/cases/{case.case_no}", allow_redirects=False)
    assert resp.status == 302 and pool.checkedout() == 0


async def test_a_deadline_policy_edited_by_staff_reaches_the_webhooks_engine(sqlite_url: str) -> None:
    """The webhook files cases through an engine of its own (SQLite: bot.db.InlineEngine) and reads the deadline
    policy through the cache; an admin's edit, committed through the staff pages' engine, drops it there too."""
    staff_engine = make_engine(sqlite_url)
    chat_engine = InlineEngine(sqlite_url)
    staff = make_sessions(staff_engine)
    chat = make_sessions(chat_engine, like=staff)
    try:
        async with transaction(chat) as db:
            before = await policy_for(db, "micro_wish", "submitted")
        assert before is not None
        statements: list[str] = []
        event.listen(chat_engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        async with transaction(chat) as db:
            assert await policy_for(db, "micro_wish", "submitted") == before
        assert not [s for s in statements if "slapolicy" in s]  # from memory
        async with transaction(staff) as db:
            await save_policy(
                db,
                kind="micro_wish",
                stage="submitted",
                amount=before.amount + 3,
                unit=before.unit,
                remind_before_hours=before.remind_before_hours,
            )
        async with transaction(chat) as db:
            after = await policy_for(db, "micro_wish", "submitted")
        assert after is not None and after.amount == before.amount + 3
    finally:
        await chat_engine.dispose()
        await staff_engine.dispose()
