"""Writing to the outbox. Rows are written in the caller's transaction; the dispatcher (bot.delivery.dispatcher) sends them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Outbox
from bot.states import ActorType, OutboxStatus


async def enqueue(
    session: AsyncSession,
    *,
    openid: str,
    kind: str,
    text: str,
    now: datetime,
    recipient_type: str = ActorType.RESIDENT,
    case_id: int | None = None,
    template: dict[str, Any] | None = None,
    link: str | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
    phone: str | None = None,
) -> bool:
    """Queue one message. With a dedupe_key the same message is queued at most once (retried requests,
    restarted sweeps). Returns False when it was already queued.

    With ``phone`` (and an empty ``openid``) the message goes out as a text message (SMS) to a resident without
    WeChat; its template fields ``case_no`` and ``status`` fill the SMS template (see the dispatcher).

    ``now`` is the caller's clock (the app's, injectable): the row is due then, or at ``not_before``, and the
    dispatcher, which runs on the same clock, compares its due time with that clock, never the wall's."""
    values = {
        "openid": openid,
        "phone": phone,
        "kind": kind,
        "text": text,
        "recipient_type": recipient_type,
        "case_id": case_id,
        "template": template or {},
        "link": link,
        "dedupe_key": dedupe_key,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
    }
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Outbox).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    result = await session.exec(stmt)
    return bool(result.rowcount)
