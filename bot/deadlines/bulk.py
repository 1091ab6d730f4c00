"""Many outbox rows in one statement, skipping the dedupe keys already queued (the sweeps' write).

SQLite: one compiled ``INSERT … ON CONFLICT (dedupe_key) DO NOTHING`` executed for many parameter sets (SQLAlchemy
batches them as "insertmanyvalues"). PostgreSQL: one ``INSERT … SELECT FROM unnest($1::varchar[], …)`` with one
array per column, so the driver sends as many parameters as there are columns instead of columns × rows: the
reminder sweep's 2,928-row insert went from three 1,000-row statements of ~19,000 parameters each (bind
processing and rendering of every value in Python, parsing on the server) to one statement of 10 arrays.
Both skip a row whose ``dedupe_key`` is already queued and return how many rows were inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Outbox


def _table() -> Any:
    return Outbox.__table__  # type: ignore[attr-defined]


async def insert_outbox(session: AsyncSession, params: Sequence[dict[str, Any]]) -> int:
    """Insert ``params`` (one dict per row, every dict with the same keys); rows whose dedupe key exists are
    skipped. Returns the number of rows inserted."""
    if not params:
        return 0
    conn = await session.connection()
    names = list(params[0])
    if conn.dialect.name == "postgresql" and all(
        len(p) == len(names) and p.keys() == params[0].keys() for p in params
    ):
        return await _unnest_insert(conn, names, params)
    table = _table()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    result = await conn.execute(stmt, list(params))
    return len(result.all())


async def _unnest_insert(conn: Any, names: list[str], params: Sequence[dict[str, Any]]) -> int:
    table = _table()
    dialect = conn.dialect
    columns = [table.c[n] for n in names]
    arrays: list[list[Any]] = []
    casts: list[str] = []
    for i, (name, column) in enumerate(zip(names, columns, strict=True), start=1):
        # the value each row would have been bound with (JSON serialised, timestamps made UTC), as one array
        process = column.type.bind_processor(dialect)
        values = [p[name] for p in params]
        if process is not None:
            values = [process(v) for v in values]
        type_sql = column.type.compile(dialect=dialect)
        if type_sql in ("JSON", "JSONB"):
            # the driver's JSON codec takes text; the array goes as text[] and is cast per element
            casts.append(f"CAST(${i}::text[] AS {type_sql}[])")
        else:
            casts.append(f"${i}::{type_sql}[]")
        arrays.append(values)
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({quoted}) "
        f"SELECT * FROM unnest({', '.join(casts)}) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
    )
    result = await conn.exec_driver_sql(sql, tuple(arrays))
    return len(result.all())


def id_in(column: Any, ids: Sequence[int], session: AsyncSession) -> Any:
    """``column IN (ids)``; on PostgreSQL ``column = ANY($1::int[])``: one array parameter instead of one
    parameter per id (the sweep's 976-case update bound, rendered and parsed 976 of them)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.Integer)))
    return column.in_(list(ids))
