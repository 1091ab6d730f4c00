"""Alembic environment: the same migrations on SQLite and PostgreSQL, async drivers."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import bot.media.tables  # noqa: F401  (registers the media table)
import bot.models  # noqa: F401  (registers the tables)
from bot.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Batch mode alters a SQLite table by copying it, dropping the old one and renaming the copy: with foreign
    keys enforced, dropping ``case`` would cascade to its events (and ``staff``/``resident`` would null every
    reference). SQLite honours this pragma only outside a transaction, so it goes to the driver's connection
    directly (a statement through SQLAlchemy would first BEGIN, see bot/db.py)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(connection, on=False)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        connection.commit()
        _sqlite_foreign_keys(connection, on=True)


async def _online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
