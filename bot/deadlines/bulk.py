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


async def insert_outbox(
    session: AsyncSession, rows: Sequence[dict[str, Any]], defaults: dict[str, Any] | None = None
) -> int:
    """Insert ``rows`` (one dict per row; a key a row lacks takes its value from ``defaults``); rows whose dedupe
    key exists are skipped. Returns the number of rows inserted."""
    if not rows:
        return 0
    defaults = defaults or {}
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        columns = _columns(rows, defaults)
        if columns is not None:
            return await _unnest_insert(conn, *columns, count=len(rows))
    table = _table()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    result = await conn.execute(stmt, [{**defaults, **r} for r in rows])
    return len(result.all())


async def insert_outbox_columns(
    session: AsyncSession, columns: dict[str, list[Any]], same: dict[str, Any]
) -> int:
    """``insert_outbox`` for rows given by column: ``columns`` (name → one value per row, all lists as long) and
    ``same`` (name → the value of every row). The same rows, without a dict per row on PostgreSQL."""
    count = len(next(iter(columns.values())))
    if not count:
        return 0
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        shared = {n: v for n, v in same.items() if n not in columns}
        return await _unnest_insert(conn, dict(columns), shared, count=count)
    names = list(columns)
    return await insert_outbox(
        session,
        [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)],
        same,
    )


def _columns(
    rows: Sequence[dict[str, Any]], defaults: dict[str, Any]
) -> tuple[dict[str, list[Any]], dict[str, Any]] | None:
    """The rows by column: (name → one value per row, name → the default every row takes). None when a key
    outside ``defaults`` is missing from some row (the rows go in by the generic path then)."""
    given = set().union(*rows)
    same = {n: v for n, v in defaults.items() if n not in given}
    varying = {n: [r.get(n, defaults[n]) for r in rows] for n in defaults if n in given}
    try:
        for name in given - defaults.keys():
            varying[name] = [r[name] for r in rows]
    except KeyError:
        return None
    return varying, same


def _constant(values: list[Any]) -> bool:
    """Every row carries the same value: the same object, or an equal str/int/bool (equal dicts may serialise
    differently, so they count only when they are the same object)."""
    if len(set(map(id, values))) == 1:
        return True
    first = values[0]
    kind = type(first)
    return (
        kind in (str, int, bool) and set(map(type, values)) == {kind} and values.count(first) == len(values)
    )


def _processed(values: list[Any], process: Any) -> list[Any]:
    """The bound form of each value; a value object shared by several rows (one case's template, sent to each of
    its recipients) is processed once."""
    done: dict[int, Any] = {}
    out = []
    for v in values:
        key = id(v)
        if key not in done:
            done[key] = process(v)
        out.append(done[key])
    return out


_SEP, _NULL = "\x1f", "\x1e"  # ASCII unit and record separators: chr(31), chr(30) in the SQL


def _joined(values: list[Any]) -> str | None:
    """A column of str (or of int) values, None allowed, as one text: the values joined by ``_SEP``, a None written
    as ``_NULL``; ``string_to_array(text, chr(31), chr(30))`` gives the values back. None when the column holds
    other types, or a value contains a separator (the column then goes as an array). One text is bound without
    the per-element work of an array, and needs no array type looked up on a fresh connection."""
    kinds = set(map(type, values))
    nulls = values.count(None)
    if nulls:
        kinds.discard(type(None))
    if kinds == {str}:
        items = values if not nulls else [_NULL if v is None else v for v in values]
    elif kinds == {int}:
        items = [_NULL if v is None else str(v) for v in values]
    else:
        return None
    text = _SEP.join(items)
    if text.count(_SEP) != len(values) - 1 or text.count(_NULL) != nulls:
        return None
    return text


async def _unnest_insert(
    conn: Any, varying: dict[str, list[Any]], same: dict[str, Any], *, count: int
) -> int:
    """``INSERT … SELECT`` from one array per column whose value differs between rows; a column with one value for
    every row goes as one scalar parameter. The server counts the inserted rows (no ids are sent back)."""
    table = _table()
    dialect = conn.dialect
    for name, values in list(varying.items()):
        if _constant(values):
            same[name] = values[0]
            del varying[name]
    args: list[Any] = []
    selected: list[str] = []  # per column: its scalar parameter, or its column of the unnest
    unnested: list[str] = []
    for name, value in same.items():
        column = table.c[name]
        process = column.type.bind_processor(dialect)
        type_sql = column.type.compile(dialect=dialect)
        args.append(process(value) if process is not None else value)
        # the driver's JSON codec takes text: JSON goes as text and is cast
        selected.append(
            f"CAST(${len(args)}::text AS {type_sql})" if "JSON" in type_sql else f"${len(args)}::{type_sql}"
        )
    for name, values in varying.items():
        # the value each row would have been bound with (JSON serialised, timestamps made UTC)
        column = table.c[name]
        process = column.type.bind_processor(dialect)
        type_sql = column.type.compile(dialect=dialect)
        bound = _processed(values, process) if process is not None else values
        joined = _joined(bound)
        if joined is not None:  # one text, split by the server
            args.append(joined)
            unnested.append(f"CAST(string_to_array(${len(args)}::text, chr(31), chr(30)) AS {type_sql}[])")
        else:  # one array (JSON as text[], cast per element)
            args.append(bound)
            unnested.append(
                f"CAST(${len(args)}::text[] AS {type_sql}[])"
                if "JSON" in type_sql
                else f"${len(args)}::{type_sql}[]"
            )
        selected.append(f"u.c{len(unnested)}")
    if unnested:
        source = f" FROM unnest({', '.join(unnested)}) AS u({', '.join(f'c{i}' for i in range(1, len(unnested) + 1))})"
    else:  # every row the same (a dedupe key given twice): still one row each, as the generic path would insert
        args.append(count)
        source = f" FROM generate_series(1, ${len(args)}::int)"
    prep = dialect.identifier_preparer
    sql = (
        f"WITH ins AS (INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(n) for n in [*same, *varying])}) "
        f"SELECT {', '.join(selected)}{source} "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1) SELECT count(*) FROM ins"
    )
    result = await conn.exec_driver_sql(sql, tuple(args))
    return int(result.scalar_one())


def id_in(column: Any, ids: Sequence[int], session: AsyncSession) -> Any:
    """``column IN (ids)``; on PostgreSQL ``column = ANY(string_to_array($1, ',')::int[])``: one text parameter
    instead of one parameter per id (the sweep's 976-case update bound, rendered and parsed 976 of them)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        text = ",".join(str(int(i)) for i in ids)
        split = sa.func.string_to_array(sa.bindparam("ids", text, type_=sa.Text), ",")
        return column == sa.any_(sa.cast(split, postgresql.ARRAY(sa.Integer)))
    return column.in_(list(ids))
