"""Statements on the driver's own API, and PostgreSQL's round trips: what the webhook's units of work run past
SQLAlchemy's session where the session cost more CPU than the statement.

- ``on_driver``: module-level statements marked to run on the standard library's sqlite3 cursor (SQLite, inside the
  webhook's inline unit of work) or asyncpg's own ``fetch`` / ``execute`` (PostgreSQL, inside a transaction
  ``begin_locked`` began), compiled once, their values processed as SQLAlchemy would, the session flushed first.
- ``begin_locked``: BEGIN and a resident's advisory lock in one round trip.
- ``at_commit`` / ``update_at_commit`` / ``insert_at_commit`` / ``updates_with_commit``: a transaction's last
  writes sent with its COMMIT, in the same round trip.
- ``inserts_on_driver``: new rows of a class inserted on asyncpg by a unit of work on a held connection, past the
  ORM's flush (a filed case and its first timeline event)."""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ SQLite: the inline unit of work's statements
def run_on_sqlite(
    sync: Any, connection: Any, dbapi: Any, prepared: _OnDriver, params: Mapping[str, Any]
) -> Any:
    """``prepared`` on the transaction's sqlite3 connection, after the session's autoflush (as its ``execute``
    would)."""
    if not sync._is_clean():
        sync._autoflush()
    fetched, rowcount = _on_cursor(
        connection, dbapi, prepared.sql, prepared.arguments(params), bool(prepared.results)
    )
    return DriverResult(prepared, prepared.rows(fetched), rowcount)


def run_plain(connection: Any, sql: str) -> None:
    """``sql`` (no parameters, no rows: BEGIN) on ``connection``'s sqlite3 connection."""
    _on_cursor(connection, connection.connection.dbapi_connection, sql, (), fetch=False)


def _on_cursor(connection: Any, dbapi: Any, sql: str, args: Any, fetch: bool) -> tuple[list[Any], int]:
    """``sql`` on a cursor of ``dbapi``: its rows when ``fetch``, and the rows it touched. The engine's
    ``before_cursor_execute`` listeners see it (they count and trace); errors are SQLAlchemy's."""
    cursor = dbapi.cursor()
    try:
        _dispatch_before(connection, cursor, sql, args)
        cursor.execute(sql, args)
        return (cursor.fetchall() if fetch else []), cursor.rowcount
    except sqlite3.Error as exc:
        connection._handle_dbapi_exception(exc, sql, args, cursor, None)
        raise  # _handle_dbapi_exception always raises
    finally:
        cursor.close()


#: ``session.info`` key of an inline unit of work's transaction, its Connection and its sqlite3 connection
INLINE_RAW = "inline_raw"


# ------------------------------------------------------------------ PostgreSQL: fewer round trips per message
class Begun:
    """A transaction begun by ``begin_locked``: BEGIN and the advisory lock went to the server in one round trip
    (asyncpg's simple query protocol). It stands where SQLAlchemy's asyncpg adapter keeps asyncpg's transaction
    (``commit``, ``rollback``); the statements left for the commit (``at_commit``) go in the COMMIT's round trip."""

    __slots__ = ("adapted", "connection", "driver", "pending")

    def __init__(self, adapted: Any, driver: Any, connection: Any) -> None:
        self.adapted = adapted
        self.driver = driver
        self.connection = connection  # SQLAlchemy's (sync) Connection: its error handling
        self.pending: list[str] = []

    async def begin(self, key: str) -> None:
        """BEGIN and ``pg_advisory_xact_lock(hashtext(key))`` in one round trip. This transaction stands in the
        adapter from the start, so whatever fails is rolled back through it; errors are SQLAlchemy's."""
        sql = f"BEGIN; SELECT pg_advisory_xact_lock(hashtext({pg_literal(key)}))"
        self.adapted._transaction = self
        try:
            await self.driver.execute(sql)
        except Exception as exc:
            # translated as SQLAlchemy does its own (a lost connection is invalidated, the error mapped)
            await greenlet_spawn(raise_translated, self.connection, self.adapted, exc, sql)

    async def commit(self) -> None:
        sql = "; ".join([*self.pending, "COMMIT"])
        self.pending.clear()
        try:
            await self.driver.execute(sql)
        except BaseException:
            # a statement before the COMMIT failed: the server's transaction is still open (aborted); end it
            if not self.driver.is_closed() and self.driver.is_in_transaction():
                try:
                    await self.driver.execute("ROLLBACK")
                except Exception:  # noqa: BLE001 - the first failure is the one to report
                    pass
            raise

    async def rollback(self) -> None:
        self.pending.clear()
        await self.driver.execute("ROLLBACK")


#: ``session.info`` key of the transaction ``begin_locked`` (or a lane, bot/lanes.py) began
BEGUN = "pg_begun"


async def begin_locked(session: AsyncSession, key: str) -> bool:
    """PostgreSQL: begin the session's transaction with ``pg_advisory_xact_lock(hashtext(key))`` in the same round
    trip as BEGIN (the adapter would send BEGIN alone before the first statement). The lock is its own statement, so
    what the transaction reads next is read after it is granted (one statement reads one snapshot, taken when it
    starts: a lock and a read in one statement would read what was there before the lock's holder committed).
    False, nothing done, when the connection cannot (a transaction under way, another isolation level, a server
    without ``standard_conforming_strings``): the caller takes the lock with an ordinary statement."""
    conn = await session.connection()
    sync_conn: Any = conn.sync_connection
    fairy = sync_conn.connection
    adapted: Any = fairy.dbapi_connection
    driver: Any = fairy.driver_connection
    if getattr(adapted, "_transaction", True) is not None or not lockable(adapted, driver):
        return False
    begun = Begun(adapted, driver, sync_conn)
    session.info[BEGUN] = begun
    await begun.begin(key)
    return True


def lockable(adapted: Any, driver: Any) -> bool:
    """Whether a connection with no transaction under way can begin one with ``Begun.begin``: the driver's default
    isolation, read-write, not deferrable, and ``standard_conforming_strings`` (the lock's key is a literal)."""
    return (
        adapted.isolation_level is None
        and not adapted.readonly
        and not adapted.deferrable
        and driver.get_settings().standard_conforming_strings == "on"
    )


def raise_translated(connection: Any, adapted: Any, exc: Exception, sql: str) -> None:
    try:
        adapted._handle_exception(exc)
    except Exception as dbapi_exc:  # noqa: BLE001 - re-raised by SQLAlchemy's own handler
        connection._handle_dbapi_exception(dbapi_exc, sql, None, None, None)
    raise exc


class _OnDriver:
    """A statement compiled once for a dialect: its SQL, its parameters in order with their bind processors, its
    columns' result processors and keys (what SQLAlchemy would apply). Refused (``ValueError``) for what SQLAlchemy
    would complete at execution: a parameter expanded then (an ``IN`` list), a column default computed in Python."""

    __slots__ = ("compiled", "metadata", "params", "results", "sql", "tables")

    def __init__(self, statement: Any, dialect: Any, column_keys: Sequence[str] | None = None) -> None:
        self.compiled = compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.post_compile_params
            or compiled.literal_execute_params
        ):
            raise ValueError("a statement SQLAlchemy completes at execution cannot run on the driver")
        self.sql = str(compiled)
        binds = compiled._bind_processors
        self.params = [(name, binds.get(name)) for name in compiled.positiontup or ()]
        self.results = [
            column.type._cached_result_processor(dialect, None) for column in compiled._result_columns
        ]
        self.metadata = SimpleResultMetaData([column.keyname for column in compiled._result_columns])
        #: the tables it reads or writes (a row changed in the session but not flushed matters only to these)
        self.tables = frozenset(find_tables(statement, check_columns=True, include_crud=True))

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        # a missing parameter is refused here, as by SQLAlchemy
        values = self.compiled.construct_params(params)
        return [process(values[name]) if process else values[name] for name, process in self.params]

    def rows(self, fetched: Any) -> list[tuple[Any, ...]]:
        results = self.results
        if not any(results):
            return [tuple(row) for row in fetched]
        return [
            tuple(process(value) if process else value for process, value in zip(results, row, strict=True))
            for row in fetched
        ]


class DriverResult(IteratorResult):
    """The rows of a statement run on the driver's own API, as a SQLAlchemy ``Result`` (``first``, ``one``,
    ``scalar_one``, ``all``, ``scalars`` …), with the driver's ``rowcount``."""

    def __init__(self, prepared: _OnDriver, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        super().__init__(prepared.metadata, iter(rows))
        self.rowcount = rowcount


#: id → statement: module-level statements the webhook's units of work run on the driver's own API (``on_driver``)
_DRIVEN: dict[int, Any] = {}
#: (dialect name, id of the statement, the parameters' names for a write) → its compiled form; None: refused
_ON_DRIVER: dict[tuple[str, int, tuple[str, ...] | None], _OnDriver | None] = {}

Driven = TypeVar("Driven")


def on_driver(statement: Driven) -> Driven:
    """Mark ``statement`` — a module-level constant, its values bound parameters, built once — to run on the
    driver's own API when a session of the webhook's units of work executes it (``session.exec``): on SQLite inside
    ``_inline_transaction`` (the standard library's cursor), on PostgreSQL inside a transaction ``begin_locked``
    began (asyncpg's ``fetch``). What SQLAlchemy's session and engine add to one statement — an ORM execution, its
    cache key, an execution context, events, result objects — cost several times what SQLite takes to run it
    (benchmarks/README.md). The statement is compiled once per dialect (and per set of parameter names for a write:
    an ``INSERT`` names only the columns given); the ORM session is flushed first, as its autoflush would, and the
    engine's ``before_cursor_execute`` listeners still see it. A statement with ORM entities among its columns, an
    ORM-enabled ``UPDATE``/``DELETE`` (it would synchronise the session's objects) or one SQLAlchemy completes at
    execution (an expanding ``IN``, a Python-side default) keeps SQLAlchemy's path."""
    _DRIVEN[id(statement)] = statement
    return statement


def driven(session: Any, statement: Any, params: Any, kw: Mapping[str, Any]) -> _OnDriver | None:
    """``statement``'s compiled form for ``session``'s dialect when it is marked ``on_driver`` and can run there."""
    if kw or id(statement) not in _DRIVEN or not (params is None or isinstance(params, dict)):
        return None
    is_dml = getattr(statement, "is_dml", False)
    key = (session.bind.dialect.name, id(statement), tuple(params or ()) if is_dml else None)
    try:
        return _ON_DRIVER[key]
    except KeyError:
        pass
    prepared: _OnDriver | None = None
    if is_dml:  # an ORM-enabled write (it would synchronise the session's objects)
        entities = statement._propagate_attrs.get("plugin_subject") is not None
    else:  # a mapped class among the columns (its rows are ORM objects)
        entities = any(isinstance(d.get("type"), type) for d in getattr(statement, "column_descriptions", ()))
    if not entities:
        try:
            prepared = _OnDriver(statement, session.bind.dialect, list(params or ()) if is_dml else None)
        except ValueError:
            log.warning("a statement marked on_driver keeps SQLAlchemy's path: %s", str(statement)[:80])
    _ON_DRIVER[key] = prepared
    return prepared


def _dispatch_before(connection: Any, cursor: Any, sql: str, args: Any) -> None:
    """The engine's ``before_cursor_execute`` listeners, as SQLAlchemy calls them (they count and trace)."""
    if connection._has_events or connection.engine._has_events:
        for listener in connection.dispatch.before_cursor_execute:
            listener(connection, cursor, sql, args, None, False)


async def first_on_driver(
    session: AsyncSession, statement: Any, params: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The first row of ``statement`` (a module-level constant: compiled once) run on asyncpg's own API within a
    transaction ``begin_locked`` began, its values processed as SQLAlchemy would process them; None when there is
    no row. Raises ``LookupError`` when the session's transaction was not begun that way (execute the statement on
    the session). Errors are SQLAlchemy's, as from the session (a duplicate key is an ``IntegrityError``; a lost
    connection is invalidated)."""
    begun = _begun_here(session)
    if begun is None or session.bind is None:
        raise LookupError("not a transaction begun by begin_locked")
    key = ("postgresql", id(statement), None)
    prepared = _ON_DRIVER.get(key)
    if prepared is None:
        _DRIVEN[id(statement)] = statement  # kept: its id stays its own
        prepared = _ON_DRIVER[key] = _OnDriver(statement, session.bind.dialect)
    rows = (await run_pg(begun, prepared, params))[0]
    return rows[0] if rows else None


async def run_pg(
    begun: Begun, prepared: _OnDriver, params: Mapping[str, Any]
) -> tuple[list[tuple[Any, ...]], int]:
    """``prepared`` on asyncpg's own API: its rows (``fetch``) or, for a write that returns none, the rows it
    touched (``execute``'s status line, ``UPDATE 3``)."""
    args = prepared.arguments(params)  # a missing parameter is refused before the server, as on SQLite
    try:
        if prepared.results:
            fetched = await begun.driver.fetch(prepared.sql, *args)
            return prepared.rows(fetched), len(fetched)
        status = await begun.driver.execute(prepared.sql, *args)
    except Exception as exc:
        await greenlet_spawn(raise_translated, begun.connection, begun.adapted, exc, prepared.sql)
        raise  # raise_translated always raises
    count = status.rsplit(" ", 1)[-1] if status else ""
    return [], int(count) if count.isdigit() else -1


class DriverSession(AsyncSession):
    """PostgreSQL's session: in a transaction ``begin_locked`` began, a statement marked ``on_driver`` runs on
    asyncpg's own API (no greenlet, no ORM execution); everything else as an ``AsyncSession``."""

    async def exec(
        self, statement: Any, *, params: Any = None, execution_options: Any = None, **kw: Any
    ) -> Any:
        begun = self.info.get(BEGUN)
        if begun is not None and not execution_options and begun.adapted._transaction is begun:
            prepared = driven(self, statement, params, kw)
            if prepared is not None:
                sync = self.sync_session
                if not sync._is_clean():
                    await greenlet_spawn(sync._autoflush)
                rows, count = await run_pg(begun, prepared, params or {})
                return DriverResult(prepared, rows, count)
        return await super().exec(statement, params=params, execution_options=execution_options, **kw)


def stale_plan(exc: BaseException) -> bool:
    """asyncpg's ``InvalidCachedStatementError`` as SQLAlchemy raises it (from a session's statement or from
    ``first_on_driver``): a plan the connection prepared before a migration changed a column's type. Inside a
    transaction asyncpg raises it instead of preparing again; the failed transaction drops the plan, so the unit of
    work succeeds when run once more."""
    return type(getattr(exc, "orig", None)).__name__ == "InvalidCachedStatementError"


def at_commit(session: Any, sql: str) -> bool:
    """Leave ``sql`` (literal values: ``pg_literal``) to be sent with the COMMIT of a transaction ``begin_locked``
    began: one round trip for both. False when the session's transaction was not begun that way (execute it)."""
    begun = _begun_here(session)
    if begun is None:
        return False
    begun.pending.append(sql)
    return True


def _begun_here(session: Any) -> Begun | None:
    """The transaction ``begin_locked`` (or a lane) began, when it is the session's, on a bound session."""
    begun = session.info.get(BEGUN)
    if begun is None or begun.adapted._transaction is not begun or session.bind is None:
        return None
    return begun


def update_at_commit(
    session: AsyncSession, table: Table, row_id: int | Sequence[int], values: Mapping[str, Any]
) -> bool:
    """``UPDATE table SET values WHERE id = row_id`` (or ``id IN row_id`` for several) left for the COMMIT
    (``at_commit``): for a transaction's last writes, which nothing in it reads after. Each value goes through its
    column type's bind processing (JSON serialised, UTC timestamps) as a parameter would. False when it cannot be
    (not begun by ``begin_locked``, or a value with no literal): execute the ordinary statement."""
    return _write_at_commit(session, table, values, row_id)


def insert_at_commit(session: AsyncSession, table: Table, values: Mapping[str, Any]) -> bool:
    """``INSERT INTO table (values)`` left for the COMMIT, as ``update_at_commit`` (the new row's id is not
    returned: for a row nothing in the transaction refers to after)."""
    return _write_at_commit(session, table, values, None)


def _write_at_commit(
    session: AsyncSession, table: Table, values: Mapping[str, Any], row_id: int | Sequence[int] | None
) -> bool:
    if isinstance(row_id, Sequence) and not row_id:
        return _begun_here(session) is not None  # no row to update
    sql = write_sql(session, table, values, row_id)
    return sql is not None and at_commit(session, sql)


def write_sql(
    session: Any, table: Table, values: Mapping[str, Any], row_id: int | Sequence[int] | None = None
) -> str | None:
    """The ``INSERT`` (``row_id`` None) or ``UPDATE`` of ``update_at_commit`` / ``insert_at_commit`` as literal
    SQL, not yet left for the COMMIT; None when the session's transaction was not begun by ``begin_locked`` or a
    value has no literal."""
    if _begun_here(session) is None:
        return None
    dialect = session.bind.dialect
    try:
        literals = {}
        for name, value in values.items():
            quoted, process = _column_writer(table, name, dialect)
            literals[quoted] = pg_literal(process(value) if process else value)
        if isinstance(row_id, Sequence):
            where = f"id IN ({', '.join(pg_literal(int(i)) for i in row_id)})"
        else:
            where = f"id = {int(row_id)}" if row_id is not None else ""
    except (TypeError, ValueError):
        return None
    preparer = dialect.identifier_preparer
    if row_id is None:
        return f"INSERT INTO {preparer.format_table(table)} ({', '.join(literals)}) VALUES ({', '.join(literals.values())})"
    sets = ", ".join(f"{name} = {literal}" for name, literal in literals.items())
    return f"UPDATE {preparer.format_table(table)} SET {sets} WHERE {where}"


#: mapped classes whose loaded rows' changed columns may go with the COMMIT (``updates_with_commit``)
_WITH_COMMIT: set[type] = set()


def updates_with_commit(cls: type) -> None:
    """Let the changes the unit of work would flush for loaded rows of ``cls`` go with the COMMIT instead
    (``update_at_commit``), in a transaction ``begin_locked`` began: one round trip less whenever a turn changed such
    a row (the resident's WeChat window, consent, phone). Only for a class mapped to one table by an integer ``id``,
    with no column the database or SQLAlchemy updates by itself, no version counter and no listener on its updates
    (what the flush would have added); refused otherwise. Rows created in the transaction, deleted ones and other
    classes are flushed as before, and so is everything when the transaction was not begun that way."""
    mapper: Any = sa_inspect(cls)
    table = mapper.local_table
    if (
        mapper.inherits is not None
        or len(mapper.tables) != 1
        or [c.key for c in mapper.primary_key] != ["id"]
        or mapper.version_id_col is not None
        or mapper.dispatch.before_update
        or mapper.dispatch.after_update
        or any(c.onupdate is not None or c.server_onupdate is not None for c in table.columns)
    ):
        raise ValueError(f"{cls.__name__}'s updates cannot go with the COMMIT")
    _WITH_COMMIT.add(cls)


def flush_with_commit(session: Any) -> None:
    """Before the commit's flush: the changed columns of each loaded row of a class ``updates_with_commit`` named,
    as one ``UPDATE`` left for the COMMIT; the row is then clean, so the flush sends nothing for it. A row with a
    value that has no literal is left to the flush."""
    if not _WITH_COMMIT or session.info.get(BEGUN) is None:
        return
    write_with_commit(
        session, [obj for obj in session.dirty if type(obj) in _WITH_COMMIT], session.identity_map
    )


def write_with_commit(session: Any, rows: Sequence[Any], identity_map: Any = None) -> bool:
    """The changed columns of each of ``rows`` (loaded rows) as an ``UPDATE`` left for the COMMIT of the
    transaction ``begin_locked`` began; each row written is then clean. False when a changed row is left for the
    ORM's flush (its class not named by ``updates_with_commit``, a relationship changed, a value with no literal)."""
    written = True
    for obj in rows:
        state: Any = sa_inspect(obj)
        if not state.modified:
            continue
        table = state.mapper.local_table
        if (
            type(obj) not in _WITH_COMMIT
            or state.key is None
            or len(state.key[1]) != 1
            or any(key not in table.c for key in state.committed_state)  # a relationship, a renamed column
        ):
            written = False
            continue
        values = {}
        for key in state.committed_state:
            added = state.attrs[key].history.added
            if added:
                values[key] = added[0]
        if values and not update_at_commit(session, table, state.key[1][0], values):
            written = False
            continue
        state._commit_all(state.dict, identity_map)
    return written


#: mapped classes whose new rows a unit of work on a held connection inserts on the driver (``inserts_on_driver``)
_INSERTS: dict[type, NewRows] = {}


class NewRows:
    """How new rows of a class go in on the driver: ``before`` (given the unit's ``info`` and the row) fills what
    the class's ``before_insert`` listener fills, or answers False when it cannot here (the ORM's flush then
    inserts the row, listener and all); ``after`` does what its ``after_insert`` listener does; ``with_commit``:
    a row nothing in the unit reads back may go with the COMMIT (``insert_at_commit``), its id then unknown."""

    __slots__ = ("after", "before", "with_commit")

    def __init__(
        self,
        before: Callable[[dict[Any, Any], Any], bool] | None,
        after: Callable[[dict[Any, Any], Any], None] | None,
        with_commit: bool,
    ) -> None:
        self.before, self.after, self.with_commit = before, after, with_commit


def inserts_on_driver(
    cls: type,
    *,
    before: Callable[[dict[Any, Any], Any], bool] | None = None,
    after: Callable[[dict[Any, Any], Any], None] | None = None,
    with_commit: bool = False,
) -> None:
    """Let a unit of work on a held connection (bot/lanes.py) insert new rows of ``cls`` on asyncpg's own API,
    past the ORM's flush: an ``INSERT … RETURNING id`` of every mapped column, or with the COMMIT when
    ``with_commit``. ``before`` and ``after`` stand for the class's ``before_insert`` / ``after_insert`` listeners
    (the caller's to keep in step). Only for a class mapped to one table by an integer ``id``, with no relationship
    and no version counter (what the flush would add); refused otherwise. A row missing a column's value (a default
    the flush would compute) is left to the flush."""
    mapper: Any = sa_inspect(cls)
    if (
        mapper.inherits is not None
        or len(mapper.tables) != 1
        or [c.key for c in mapper.primary_key] != ["id"]
        or mapper.version_id_col is not None
        or mapper.relationships
    ):
        raise ValueError(f"{cls.__name__}'s new rows cannot be inserted on the driver")
    _INSERTS[cls] = NewRows(before, after, with_commit)


def new_rows(cls: type) -> NewRows | None:
    """How new rows of ``cls`` go in on the driver; None: through the ORM's flush."""
    return _INSERTS.get(cls)


def new_row_values(obj: Any) -> dict[str, Any] | None:
    """The column values of a new row ``obj`` as its INSERT sends them (an unset id left to the database); None
    when a mapped column has no value set (the flush would fill it from a default)."""
    state: Any = sa_inspect(obj)
    values: dict[str, Any] = {}
    for prop in state.mapper.column_attrs:
        column = prop.columns[0]
        if prop.key not in state.dict:
            if column.primary_key:
                continue
            return None
        value = state.dict[prop.key]
        if value is None and column.primary_key:
            continue
        values[column.key] = value
    return values


#: (table, the columns given) → the compiled ``INSERT … RETURNING id``
_NEW_ROW_INSERTS: dict[tuple[Table, tuple[str, ...]], _OnDriver] = {}


async def insert_on_driver(begun: Begun, dialect: Any, obj: Any, values: Mapping[str, Any]) -> None:
    """INSERT the new row ``obj`` (``values``: ``new_row_values``) on asyncpg within ``begun``'s transaction; its
    id is set and it becomes a loaded row, detached (``make_transient_to_detached``: its history reset, as after a
    flush). Errors are SQLAlchemy's, as from a flush (a duplicate key is an ``IntegrityError``)."""
    table = sa_inspect(obj).mapper.local_table
    key = (table, tuple(values))
    prepared = _NEW_ROW_INSERTS.get(key)
    if prepared is None:
        statement = table.insert().returning(table.c.id)
        prepared = _NEW_ROW_INSERTS[key] = _OnDriver(statement, dialect, list(values))
    rows = (await run_pg(begun, prepared, values))[0]
    obj.id = rows[0][0]
    make_transient_to_detached(obj)


def commit_and_close(session: Any) -> None:
    """A (sync) session's commit, its loaded rows' changes with the COMMIT (``flush_with_commit``), then its close:
    in one greenlet (SQLAlchemy's asyncio layer spawns one per call)."""
    try:
        flush_with_commit(session)
        session.commit()
    finally:
        session.close()


#: (table, column name) → the column's quoted name and its type's bind processor, for ``_write_at_commit``
_COLUMN_WRITERS: dict[tuple[Table, str], tuple[str, Any]] = {}


def _column_writer(table: Table, name: str, dialect: Any) -> tuple[str, Any]:
    found = _COLUMN_WRITERS.get((table, name))
    if found is None:
        column = table.c[name]
        found = _COLUMN_WRITERS[(table, name)] = (
            dialect.identifier_preparer.quote(name),
            column.type._cached_bind_processor(dialect),
        )
    return found


def pg_literal(value: Any) -> str:
    """``value`` as a PostgreSQL literal, for the simple query protocol (one round trip for several statements,
    no parameters): with ``standard_conforming_strings`` on (checked by ``begin_locked``) a string literal's only
    special character is the quote, doubled. Strings with NUL, which PostgreSQL's text cannot hold, are refused.
    Timestamps (aware only), dates and decimals are quoted text, typed by the column they are assigned to."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return f"{value!r}::float8"  # repr: the shortest text that reads back as the same double
        return "'NaN'::float8" if math.isnan(value) else f"'{'-' if value < 0 else ''}Infinity'::float8"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a naive datetime has no PostgreSQL literal here")
        value = value.isoformat()
    elif isinstance(value, date | Decimal):
        value = str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL in a PostgreSQL string")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no PostgreSQL literal for {type(value).__name__}")
