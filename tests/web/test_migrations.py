"""The migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import bot.models  # noqa: F401
from bot.db import make_engine


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), SQLModel.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_case_numbers_are_unique_when_created_at_once(db_url: str) -> None:
    import asyncio
    from datetime import UTC, datetime

    from bot.cases.numbering import create_case
    from bot.db import make_sessions, transaction

    engine = make_engine(db_url)
    sessions = make_sessions(engine)
    same_instant = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    async def one(i: int) -> str:
        async with transaction(sessions) as s:
            case = await create_case(
                s,
                kind="micro_wish",
                description=f"需要{i}",
                town="厚街镇",
                resident_id=None,
                now=same_instant,
            )
            return case.case_no

    try:
        numbers = await asyncio.gather(*(one(i) for i in range(12)))
    finally:
        await engine.dispose()
    assert len(set(numbers)) == 12
    assert sorted(numbers)[0] == "MS20261123-0001" and sorted(numbers)[-1] == "MS20261123-0012"
