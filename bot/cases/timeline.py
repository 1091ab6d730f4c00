"""The case timeline (档案留存): `record_event` is the one place a `CaseEvent` is written.

Every transition, note, message, edit, question, answer, photo and offer of a case goes through it, so the
archive has one shape: who (`actor`), when (`at`), what (`kind`, `note`, `data`) and in which status. A transition
records the status it left and the one it entered; any other event records the status the case was in (both
columns), so the archive can be read without joining the case's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases import chain  # noqa: F401  # registers the hook that chains every inserted CaseEvent
from bot.cases.actors import Actor
from bot.models import Case, CaseEvent
from bot.states import ActorType, EventKind

TRANSITION = EventKind.TRANSITION


def record_event(
    session: AsyncSession,
    *,
    case: Case,
    kind: EventKind | str,
    actor: Actor,
    at: datetime,
    note: str = "",
    data: Mapping[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> CaseEvent:
    """Add one timeline event to the session (the caller's transaction; flush when the id is needed).

    For ``kind == "transition"`` give ``to_status`` (and ``from_status``, None for a new case); for every other
    kind both default to the case's current status."""
    if case.id is None:
        raise ValueError("a timeline event needs a case that has been flushed")
    kind = EventKind(kind)  # an unknown kind is a programming error, refused before it reaches the archive
    if kind == TRANSITION:
        if to_status is None:
            raise ValueError("a transition event needs to_status")
    else:
        from_status = case.status if from_status is None else from_status
        to_status = case.status if to_status is None else to_status
    event = CaseEvent(
        case_id=case.id,
        at=at,
        actor_type=ActorType(actor.type),
        actor_id=actor.id,
        actor_name=(actor.name or None) and actor.name[:64],
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        note=note,
        data=dict(data or {}),
    )
    session.add(event)
    return event
