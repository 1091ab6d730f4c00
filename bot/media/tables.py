"""The table of stored media. Registered in the one metadata by ``bot.media`` (imported by the app) and by the
migration environment (``bot/migrations/env.py``), which imports this module."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.coltypes import ts


class StoredMedia(SQLModel, table=True):
    """One image or voice message kept in the project's storage, or waiting to be.

    ``status``: pending (to download; ``next_attempt_at`` says when) → stored (``storage_key``, the type read from
    the file's own bytes, its size and SHA-256) | rejected (too large, or not an image/voice by its bytes) |
    parked (WeChat no longer has it, or every retry failed: kept for staff with the reason) | deleted (erased on
    a resident's request or by the retention sweep)."""

    __table_args__ = (sa.Index("ix_storedmedia_due", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL", index=True)
    inbound_id: int | None = Field(
        default=None, foreign_key="inboundmessage.id", ondelete="SET NULL", index=True
    )
    source: str = Field(default="chat", max_length=16)  # chat | volunteer
    kind: str = Field(default="image", max_length=16)  # image | voice
    wechat_media_id: str | None = Field(default=None, max_length=128)
    status: str = Field(default="pending", max_length=16)
    storage_key: str | None = Field(default=None, max_length=200)
    content_type: str | None = Field(default=None, max_length=64)
    size: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    next_attempt_at: datetime | None = ts()
    last_error: str | None = Field(default=None, max_length=200)
    event_id: int | None = Field(default=None, foreign_key="caseevent.id", ondelete="SET NULL")
    created_at: datetime = ts(default_now=True, nullable=False)
    stored_at: datetime | None = ts()
