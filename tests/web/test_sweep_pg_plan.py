"""What the reminder sweep's speed on PostgreSQL rests on (benchmarks/README.md, "2026-12-06: the sweep on
PostgreSQL"): the case table keeps room on its pages, so marking a case writes its new version on the same page
without touching the table's indexes; the sweep's statements send only what varies between rows and read back
only a count; staff are read as rows. And the bulk insert's PostgreSQL path writes exactly what the generic path
writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import col, select

from benchmarks.sweep import seed
from bot import db
from bot.deadlines import bulk
from bot.deadlines.staff_messages import outbox_defaults
from bot.deadlines.sweeps import remind_due
from bot.models import Case, Outbox
from bot.states import ActorType, MessageKind

pytestmark = pytest.mark.postgres
NOW = datetime(2025, 6, 10, 2, tzinfo=UTC)


@pytest.fixture
async def pg(pg_template: Any) -> Any:
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable")
    engine = db.make_engine(await pg_template.copy())
    yield db.make_sessions(engine)
    await engine.dispose()


async def _pages(sessions: Any, ids: list[int]) -> dict[int, int]:
    """Case id → the heap page its current version lives on."""
    async with sessions() as s:
        rows = await s.exec(
            sa.text('SELECT id, (ctid::text::point)[0]::int FROM "case" WHERE id = ANY(:ids)').bindparams(
                ids=ids
            )
        )
        return dict(rows.all())


async def test_marking_a_case_keeps_it_on_its_page(pg: Any) -> None:
    due = await seed(pg, cases=400, due_share=0.05, now=NOW)
    async with pg() as s:
        options = (
            await s.exec(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'case'"))
        ).scalar_one()
        ids = list(
            (
                await s.exec(select(col(Case.id)).where(col(Case.stage_deadline) <= NOW + timedelta(hours=4)))
            ).all()
        )
    before = await _pages(pg, ids)
    assert await remind_due(sessions=pg, now=NOW, batch=5000) == due == len(ids)
    after = await _pages(pg, ids)
    # the pages were filled by inserts; with no room left (fillfactor 100) the new versions moved elsewhere and
    # every one of the twelve indexes got a new entry
    moved = [i for i in ids if after[i] != before[i]]
    assert not moved, f"{len(moved)} of {len(ids)} marked cases moved to another page"
    assert options is not None and "fillfactor=90" in options


async def test_the_sweep_sends_what_varies_and_reads_back_a_count(pg: Any) -> None:
    due = await seed(pg, cases=400, due_share=0.05, now=NOW)
    engine = pg.kw["bind"]
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, stmt: str, params: Any, *_: Any) -> None:
        seen.append((" ".join(stmt.split()), params))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        assert await remind_due(sessions=pg, now=NOW, batch=5000) == due
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    staff = [s for s, _ in seen if s.startswith("SELECT") and "FROM staff" in s]
    inserts = [(s, p) for s, p in seen if "INSERT INTO outbox" in s]
    updates = [s for s, _ in seen if s.startswith('UPDATE "case"')]
    assert len(seen) == 5  # policies, due cases, staff, one insert, one update
    assert len(staff) == 1 and "password_hash" not in staff[0]  # rows of what the sweep reads, not entities
    assert len(updates) == 1 and "RETURNING" not in updates[0]  # no ids sent back to synchronise a session
    [(sql, params)] = inserts
    # one parameter per column: the columns every reminder shares (kind, recipient type, status, times, …) as one
    # value each, the six that differ (case, text, template, link, openid, dedupe key) as one text each that the
    # server splits; no array (no per-element binding, no array type to look up on a fresh connection)
    assert not any(isinstance(p, list) for p in params)
    joined = [p for p in params if isinstance(p, str) and p.count("\x1f") == 3 * due - 1]
    assert len(joined) == 6 and len(params) == 13
    assert sql.endswith("SELECT count(*) FROM ins")


def _rows(prefix: str) -> list[dict[str, Any]]:
    template = {"case_no": "MS20250610-000001", "status": "06月10日12:00到期"}  # one object, three rows
    rows = [
        {
            "openid": f"o-{i}",
            "recipient_type": ActorType.STAFF,
            "kind": MessageKind.REMINDER,
            "text": "【即将到期】诉求MS20250610-000001，请及时处理。",
            "case_id": None,
            "template": template,
            "link": "/staff/cases/MS20250610-000001",
            "dedupe_key": f"{prefix}:{i}",
            "next_attempt_at": NOW + timedelta(minutes=5),
        }
        for i in range(3)
    ]
    rows[1]["phone"] = "13800138000"  # a default one row overrides
    rows[2]["template"] = {"status": "已超时", "case_no": "MS20250610-000001"}
    rows[2]["link"] = "/staff/cases/A\x1fB"  # a separator in a value: that column goes as an array
    return rows


_DEFAULTS = outbox_defaults(NOW)  # the sweeps' own defaults


def _one(key: str | None) -> dict[str, Any]:
    return {"openid": "o", "kind": MessageKind.REMINDER, "text": "t", "dedupe_key": key}


async def test_the_unnest_path_writes_what_the_generic_path_writes(pg: Any, monkeypatch: Any) -> None:
    async with db.transaction(pg) as s:
        fast = await bulk.insert_outbox(s, _rows("fast"), _DEFAULTS)
        # two identical rows: every column the same (no array at all), one dedupe key, then none
        same = await bulk.insert_outbox(s, [_one("k")] * 2, _DEFAULTS)
        none = await bulk.insert_outbox(s, [_one(None)] * 2, _DEFAULTS)
    monkeypatch.setattr(bulk, "_columns", lambda *_: None)
    async with db.transaction(pg) as s:
        slow = await bulk.insert_outbox(s, _rows("slow"), _DEFAULTS)
        same_slow = await bulk.insert_outbox(s, [_one("k2")] * 2, _DEFAULTS)
        none_slow = await bulk.insert_outbox(s, [_one(None)] * 2, _DEFAULTS)
    assert (fast, same, none) == (slow, same_slow, none_slow) == (3, 1, 2)
    async with pg() as s:
        raw = (
            await s.exec(sa.text("SELECT *, template::text AS template_text FROM outbox ORDER BY id"))
        ).all()
    by_key = {r.dedupe_key: r._asdict() for r in raw if r.dedupe_key and ":" in r.dedupe_key}
    for i in range(3):
        a, b = by_key[f"fast:{i}"], by_key[f"slow:{i}"]
        for row in (a, b):
            row.pop("id")
            row.pop("dedupe_key")
        assert a == b  # the JSON stored as the same text, the times the same instants
    assert by_key["fast:1"]["phone"] == "13800138000" and by_key["fast:0"]["phone"] is None
    assert by_key["fast:0"]["created_at"] == NOW and by_key["fast:0"]["attempts"] == 0


async def test_the_outbox_rows_read_back_as_written(pg: Any) -> None:
    async with db.transaction(pg) as s:
        await bulk.insert_outbox(s, _rows("r"), _DEFAULTS)
    async with pg() as s:
        rows = list((await s.exec(select(Outbox).order_by(col(Outbox.id)))).all())
    assert [r.dedupe_key for r in rows] == ["r:0", "r:1", "r:2"]
    assert rows[0].template == {"case_no": "MS20250610-000001", "status": "06月10日12:00到期"}
    assert rows[0].next_attempt_at == NOW + timedelta(minutes=5) and rows[0].recipient_type == "staff"


async def test_a_joined_column_comes_back_as_its_values(pg: Any) -> None:
    values = ["a", None, "", "【到期】"]
    text = bulk._joined(values)
    assert text is not None
    async with pg() as s:
        back = (
            await s.exec(sa.text("SELECT string_to_array(:t, chr(31), chr(30))").bindparams(t=text))
        ).scalar_one()
    assert back == values
    assert bulk._joined([1, None, 30]) == "1\x1f\x1e\x1f30"
    assert bulk._joined(["a\x1fb", "c"]) is None and bulk._joined(["\x1e", "c"]) is None
    assert bulk._joined([True, False]) is None and bulk._joined([1.5, 2.5]) is None
