"""The timeline chain reads a case's previous hash once per transaction, not once per flush, and not at all for a
case filed in the same transaction; savepoints rolled back and later transactions still chain correctly. On SQLite
and PostgreSQL; the chains verify at the end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event

from bot.cases.actors import Actor
from bot.cases.chain import verify_chains
from bot.cases.numbering import create_case
from bot.cases.timeline import record_event
from bot.db import transaction
from bot.models import Resident
from tests.factories import NOW, TOWN

STAFF = Actor("staff", 1, "王工作员")


def _chain_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "chain_hash" in s and s.lstrip().upper().startswith("SELECT")]


async def test_filing_and_noting_read_no_chain_head_then_one_per_later_transaction(sessions: Any) -> None:
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, stmt: str, *_: Any) -> None:
        statements.append(stmt)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with transaction(sessions) as db:
            r = Resident(openid="o-chain-heads")
            db.add(r)
            await db.flush()
            case = await create_case(
                db, kind="micro_wish", description="需要轮椅", town=TOWN, resident_id=r.id, now=NOW
            )
            for j in range(3):  # three flushes in the same transaction
                record_event(
                    db, case=case, kind="note", actor=STAFF, at=NOW + timedelta(minutes=j), note=f"{j}"
                )
                await db.flush()
        filed = _chain_reads(statements)
        statements.clear()

        async with transaction(sessions) as db:  # a later transaction: one read, then remembered
            for j in range(3):
                record_event(db, case=case, kind="note", actor=STAFF, at=NOW + timedelta(hours=1, minutes=j))
                await db.flush()
        later = _chain_reads(statements)
        statements.clear()

        async with transaction(sessions) as db:  # a savepoint rolled back forgets what it wrote
            record_event(db, case=case, kind="note", actor=STAFF, at=NOW + timedelta(hours=2), note="保留")
            await db.flush()
            try:
                async with db.begin_nested():
                    record_event(
                        db, case=case, kind="note", actor=STAFF, at=NOW + timedelta(hours=3), note="撤回"
                    )
                    await db.flush()
                    raise RuntimeError("rolled back")
            except RuntimeError:
                pass
            record_event(db, case=case, kind="note", actor=STAFF, at=NOW + timedelta(hours=4), note="之后")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert filed == []  # the case was inserted in this transaction: its chain starts at GENESIS
    assert len(later) == 1, later
    async with sessions() as db:
        report = await verify_chains(db)
    assert report.broken == [] and report.events >= 1 + 3 + 3 + 2
