"""Column types and field helpers every table module shares: timezone-aware UTC timestamps, JSON fields.

They live here rather than in ``bot.models`` so that table modules beside it (``bot.projects.tables``) can use
them without importing ``bot.models``, which imports those modules to register every table in one metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware UTC datetimes on SQLite and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts(*, index: bool = False, nullable: bool = True, default_now: bool = False) -> Any:
    kw: dict[str, Any] = {"default_factory": utcnow} if default_now else {"default": None}
    return Field(sa_column_kwargs={}, sa_type=UTCDateTime, index=index, nullable=nullable, **kw)


def json_field(default: Any) -> Any:
    factory = (lambda: list(default)) if isinstance(default, list) else (lambda: dict(default))
    return Field(default_factory=factory, sa_type=sa.JSON)
