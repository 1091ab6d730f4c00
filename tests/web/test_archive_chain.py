"""The tamper-evident timeline: `python -m bot archive verify` passes on an untouched archive, and after one row is
edited directly in SQL it fails (exit status 1) and names that event; the case-file export carries the chain head."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import text

from bot.cases.actors import Actor
from bot.cases.numbering import create_case
from bot.cases.timeline import record_event
from bot.db import transaction
from bot.models import Case, Resident
from bot.reporting.archive import archive_workbook
from bot.reporting.scope import Scope
from tests.factories import NOW, TOWN


async def _cases_with_events(sessions: Any, n: int = 3) -> list[Case]:
    made = []
    for i in range(n):
        async with transaction(sessions) as db:
            r = Resident(openid=f"o-chain-{i}-{os.urandom(3).hex()}", phone="13812345678")
            db.add(r)
            await db.flush()
            c = await create_case(
                db, kind="micro_wish", description=f"需要轮椅 {i}", town=TOWN, resident_id=r.id, now=NOW
            )
            # two events of one case in one flush, then one more in a later transaction
            for j in range(2):
                record_event(
                    db,
                    case=c,
                    kind="note",
                    actor=Actor("staff", 1, "王工作员"),
                    at=NOW + timedelta(minutes=j),
                    note=f"第{j}次回访",
                    data={"k": j},
                )
            made.append(c)
        async with transaction(sessions) as db:
            c = await db.get(Case, made[-1].id)
            assert c is not None
            record_event(
                db, case=c, kind="note", actor=Actor("system"), at=NOW + timedelta(hours=1), note="提醒"
            )
    return made


async def _verify(db_url: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "archive",
        "verify",
        env={**os.environ, "DATABASE_URL": db_url, "ENVIRONMENT": "development"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


def _independent_chain(rows: list[Any]) -> str:
    """The chain recomputed here from the documented rule, not by calling the code under test."""
    prev = "0" * 64
    for r in rows:
        data = r.data if isinstance(r.data, dict) else json.loads(r.data)
        personal = hashlib.sha256(
            json.dumps(
                {"actor_name": r.actor_name or "", "data": data, "note": r.note or ""},
                ensure_ascii=False,
                sort_keys=True,
            ).encode()
        ).hexdigest()
        at = r.at if isinstance(r.at, str) else r.at.isoformat()
        body = {
            "actor_id": r.actor_id,
            "actor_type": r.actor_type,
            "at": at,
            "case_id": r.case_id,
            "from_status": r.from_status,
            "kind": r.kind,
            "personal": personal,
            "to_status": r.to_status,
        }
        prev = hashlib.sha256(
            f"{prev}|{json.dumps(body, ensure_ascii=False, sort_keys=True)}".encode()
        ).hexdigest()
    return prev


async def test_verify_passes_then_names_the_edited_event(db_url: str, sessions: Any) -> None:
    cases = await _cases_with_events(sessions)
    code, out = await _verify(db_url)
    assert code == 0, out
    assert "完好" in out and "核对 3 件诉求" in out

    # one row of the middle case's timeline edited behind the application's back
    async with transaction(sessions) as db:
        ids = (
            await db.exec(text(f"SELECT id FROM caseevent WHERE case_id = {cases[1].id} ORDER BY id"))
        ).all()
        victim = ids[1][0]
        await db.exec(text(f"UPDATE caseevent SET note = '第0次回访（改）' WHERE id = {victim}"))
    code, out = await _verify(db_url)
    assert code == 1, out
    assert f"事件 {victim}:" in out and cases[1].case_no in out
    assert cases[0].case_no not in out and cases[2].case_no not in out

    # a deleted row breaks the chain at the event after it
    async with transaction(sessions) as db:
        later = (
            await db.exec(text(f"SELECT id FROM caseevent WHERE case_id = {cases[0].id} ORDER BY id"))
        ).all()
        await db.exec(text(f"DELETE FROM caseevent WHERE id = {later[1][0]}"))
    code, out = await _verify(db_url)
    assert code == 1 and f"事件 {later[2][0]}:" in out, out


async def test_the_export_carries_the_chain_head(db_url: str, sessions: Any) -> None:
    cases = await _cases_with_events(sessions, n=2)
    async with transaction(sessions) as db:
        heads = {}
        for c in cases:
            rows = (
                await db.exec(
                    text(
                        "SELECT case_id, at, actor_type, actor_id, actor_name, kind, from_status, to_status, note,"
                        f" data FROM caseevent WHERE case_id = {c.id} ORDER BY id"
                    )
                )
            ).all()
            heads[c.case_no] = rows
        stored = dict((await db.exec(text("SELECT id, chain_hash FROM caseevent"))).all())
        blob, n = await archive_workbook(
            db,
            scope=Scope(town=None, community=None),
            start=NOW - timedelta(days=1),
            end=NOW + timedelta(days=1),
            full_phone=False,
        )
    assert n == 2 and all(stored.values())
    ws = load_workbook(io.BytesIO(blob))["诉求"]
    header = [c.value for c in ws[1]]
    col = header.index("时间线链头")
    got = {row[0].value: row[col].value for row in ws.iter_rows(min_row=2)}
    assert set(got) == set(heads)

    for case_no, rows in heads.items():
        assert len(got[case_no]) == 64
        assert got[case_no] in stored.values()

        def aware(at: Any) -> str:  # SQLite gives back the stored text, PostgreSQL an aware datetime
            at = datetime.fromisoformat(at).replace(tzinfo=UTC) if isinstance(at, str) else at.astimezone(UTC)
            return at.isoformat(timespec="microseconds")

        rows = [SimpleNamespace(**{**r._asdict(), "at": aware(r.at)}) for r in rows]
        assert got[case_no] == _independent_chain(rows)


async def test_the_migration_chains_the_events_already_there(tmp_path: Any) -> None:
    """Rows written before the chain existed get their hashes in migration 0006, in id order per case."""
    import sqlite3

    from alembic import command

    from bot.cases.chain import verify_chains
    from bot.db import alembic_config, make_engine, make_sessions

    path = tmp_path / "old.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0005")
    con = sqlite3.connect(path)

    def insert(table: str, values: dict[str, Any]) -> int:
        # every NOT NULL column without a default gets a plain value; the test gives the ones that matter
        for _, name, kind, notnull, default, pk in con.execute(f'PRAGMA table_info("{table}")'):
            if notnull and default is None and not pk and name not in values:
                kind = kind.upper()
                values[name] = (
                    0
                    if "INT" in kind or "BOOL" in kind
                    else "2026-03-01 02:00:00.000000"
                    if "DATE" in kind or "TIME" in kind
                    else "{}"
                    if "JSON" in kind
                    else f"x{name}"
                )
        cols = ", ".join(f'"{k}"' for k in values)
        cur = con.execute(
            f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(values))})', list(values.values())
        )
        return int(cur.lastrowid or 0)

    cases = [insert("case", {"case_no": f"MS20260301-000{i}", "town": TOWN}) for i in (1, 2)]
    for i, note in enumerate(["提交", "核实", "备注：老人行动不便", "办结"]):
        insert(
            "caseevent",
            {
                "case_id": cases[i % 2],
                "at": f"2026-03-0{i + 1} 02:00:00.000000",
                "actor_type": "staff",
                "kind": "note",
                "note": note,
                "data": json.dumps({"n": i}, ensure_ascii=False),
            },
        )
    con.commit()
    con.close()

    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    engine = make_engine(url)
    try:
        async with make_sessions(engine)() as db:
            report = await verify_chains(db)
            hashes = (await db.exec(text("SELECT chain_hash FROM caseevent"))).all()
    finally:
        await engine.dispose()
    assert (report.cases, report.events, report.broken) == (2, 4, [])
    assert all(h[0] and len(h[0]) == 64 for h in hashes)
