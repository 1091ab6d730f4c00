"""The sweeps' outbox rows: the defaults of a row, and the messages of one sweep to staff kept by column."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.bulk import insert_outbox_columns
from bot.states import ActorType, OutboxStatus


def outbox_defaults(now: datetime) -> dict[str, Any]:
    """An outbox row's values where a message does not say otherwise."""
    return {
        "phone": None,
        "recipient_type": ActorType.RESIDENT,
        "case_id": None,
        "template": {},
        "link": None,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


class StaffMessages:
    """One sweep's messages to staff (one ``kind``), kept by column: the reminder sweep's 2,928 messages are six
    lists rather than 2,928 dicts, and go to ``insert_outbox_columns`` as they are. Per case, the text, template
    and link are built once and shared by its recipients."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.openid: list[str] = []
        self.text: list[str] = []
        self.case_id: list[int] = []
        self.template: list[dict[str, str]] = []
        self.link: list[str] = []
        self.dedupe_key: list[str] = []

    def add(self, *, staff: Sequence[Any], case: Any, key: str, text: str, status: str) -> None:
        """One message per staff member about ``case``; ``key`` + the staff id is its dedupe key."""
        n = len(staff)
        if not n:
            return
        self.openid += [s.openid for s in staff]
        self.dedupe_key += [f"{key}:{s.id}" for s in staff]
        self.text += [text] * n
        self.case_id += [case.id] * n
        self.template += [{"case_no": case.case_no[:20], "status": status[:20]}] * n
        self.link += [f"/staff/cases/{case.case_no}"] * n

    async def queue(self, session: AsyncSession, *, now: datetime) -> int:
        """Insert them (as ``queue_many`` would the same messages as dicts). Returns rows inserted."""
        if not self.openid:
            return 0
        columns: dict[str, list[Any]] = {
            "openid": self.openid,
            "text": self.text,
            "case_id": self.case_id,
            "template": self.template,
            "link": self.link,
            "dedupe_key": self.dedupe_key,
        }
        same = {**outbox_defaults(now), "recipient_type": ActorType.STAFF, "kind": self.kind}
        return await insert_outbox_columns(session, columns, same)
