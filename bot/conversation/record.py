"""A delivery's record in the database: the resident (created on their first message) and their conversation read
in one statement, the inbound row under its unique key, the turn's outcome stored on it, and the 48-hour window
it opens. The statements of every message are built once (``bindparam``): building one costs more CPU than SQLite
takes to run it (benchmarks/hotpath.py's profile)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, true
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlmodel import col

from bot.cases.survey import COMMENT_WINDOW
from bot.conversation.dialogue.engine import awaiting
from bot.conversation.dialogue.turn import NOTHING_AWAITED, Awaiting, ConversationState, Received
from bot.driver import first_on_driver, on_driver, update_at_commit, updates_with_commit
from bot.lanes import LeanSession
from bot.models import Conversation, InboundMessage, Resident
from webhooks import Delivery


def _dialect(session: Any) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def resident_of(
    session: Any, openid: str, now: Any, *, interacted: bool, unknown: bool = False
) -> tuple[Resident, ReadConversation]:
    """The resident of ``openid`` and their conversation, in one SELECT for a known resident (the dialogue reads the
    conversation on every message: joined here, it costs no statement of its own); INSERT … ON CONFLICT DO NOTHING
    and a second SELECT only the first time (or when two first messages race). ``unknown``: a statement of this
    transaction found no such resident just now (the first SELECT is skipped). ``interacted``: the message opens
    WeChat's 48-hour window; a resident created for it is created with the window open (no UPDATE after)."""
    if not unknown:
        known = (await session.exec(_KNOWN_RESIDENT, params={"openid": openid})).first()
        if known is not None:
            cid, state, data, updated_at = known[len(_RESIDENT_COLUMNS) :]
            return _loaded(session, known), (
                (ConversationState(cid, state, data or {}, updated_at) if cid is not None else None),
            )
    query = select(Resident).where(col(Resident.openid) == openid)
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    inserted = await session.exec(
        insert(Resident)
        .values(
            openid=openid,
            created_at=now,
            subscribed=True,
            survey_opt_out=False,
            cs_sent_since_interaction=0,
            last_interaction_at=now if interacted else None,
        )
        .on_conflict_do_nothing(index_elements=["openid"])
    )
    resident = (await session.exec(query)).scalar_one()
    # a resident created just now has no conversation; one created meanwhile by a racing first message may have
    return resident, ((None,) if inserted.rowcount == 1 else None)


#: the resident's conversation as read in this transaction: ``(conv,)``, ``(None,)`` when they have none yet, or
#: None when it was not read (the dialogue reads it)
ReadConversation = tuple[ConversationState | None] | None


#: the 48-hour window is opened again by a message; within this many seconds of the last opening it is not written
#: again (the window then ends at most this much earlier than WeChat's, never later)
WINDOW_WRITE_SLACK = 60


class Recorded(NamedTuple):
    row: Received
    resident: Resident
    conv: ReadConversation
    #: ``Turn.read_awaiting``: read in the same statement on PostgreSQL (a statement less on most free texts)
    awaiting: Awaiting | None


async def record(session: Any, delivery: Delivery, now: datetime) -> Recorded:
    """The delivery's record (inserted: a duplicate fails here, before anything acts), the resident and their
    conversation as read with them (see ``ReadConversation``). The row is written with Core statements, here and
    in ``_store``: no ORM object, no flush (they were a third of a greeting's CPU, benchmarks/hotpath.py). On
    PostgreSQL a known resident's row, conversation and rare states are read and the record inserted in one
    statement."""
    media = jsonable(delivery.media)
    params = {
        "delivery_key": delivery.key,
        "openid": delivery.openid,
        "msg_type": delivery.msg_type,
        "event": delivery.event,
        "text": delivery.text,
        "media": media,
        "reply_mode": "pending",
        "received_at": now,
    }
    interacted = delivery.msg_type != "event" or delivery.event in {"subscribe", "click", "scan"}
    known, pg = None, _dialect(session) == "postgresql"
    if pg:
        # a known resident: their row, their conversation and the record's INSERT in one statement (one round trip)
        known = await _record_for_known(session, {**params, "comment_since": now - COMMENT_WINDOW})
    waiting: Awaiting | None = None
    if known is not None:
        resident, cid, state, data, updated_at, row_id, *rare = known
        waiting = Awaiting.of(rare)
        conv: ReadConversation = (
            (ConversationState(cid, state, data or {}, updated_at) if cid is not None else None),
        )
    else:
        # PostgreSQL, a resident not known yet: created with the record in one statement (on asyncpg's own API)
        created = (
            await _create_and_record(session, {**params, "opened": now if interacted else None})
            if pg
            else None
        )
        if created is not None:
            resident, row_id = created
            # a resident created just now has no conversation, no case and no survey
            conv, waiting = (None,), NOTHING_AWAITED
        else:
            resident, conv = await resident_of(
                session, delivery.openid, now, interacted=interacted, unknown=pg
            )
            inserted = await session.exec(_INSERT_RECORD, params={**params, "resident_id": resident.id})
            row_id = inserted.scalar_one()
    row = Received(id=row_id, openid=delivery.openid, msg_type=delivery.msg_type, media=media)
    if interacted:
        last = resident.last_interaction_at
        if (
            last is None
            or resident.cs_sent_since_interaction
            or abs((aware(now) - aware(last)).total_seconds()) > WINDOW_WRITE_SLACK
        ):
            resident.last_interaction_at = now  # opens WeChat's 48-hour window
            resident.cs_sent_since_interaction = 0
    return Recorded(row, resident, conv, waiting)


async def _record_for_known(session: Any, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """``_RECORD_FOR_KNOWN``'s row with the resident as a ``Resident`` of the session (persistent: what the dialogue
    changes on it is flushed at the commit). On asyncpg's own API when the transaction began with the resident's
    lock (``begin_locked``), the resident put into the session as a loaded row would be; else through the session."""
    try:
        values = await first_on_driver(session, _PG_RECORD_FOR_KNOWN, params)
    except LookupError:
        return (await session.exec(_RECORD_FOR_KNOWN, params=params)).first()
    if values is None:
        return None
    return (_loaded(session, values), *values[len(_RESIDENT_COLUMNS) :])


async def _create_and_record(session: Any, params: dict[str, Any]) -> tuple[Resident, int] | None:
    """A new resident and the delivery's record in one statement on asyncpg's own API (``_PG_CREATE_AND_RECORD``),
    the resident put into the session as loaded. None when the transaction was not begun by ``begin_locked`` or the
    openid's row exists after all (created meanwhile outside the resident's lock): the caller takes the long way."""
    try:
        values = await first_on_driver(session, _PG_CREATE_AND_RECORD, params)
    except LookupError:
        return None
    if values is None:
        return None
    return _loaded(session, values), values[len(_RESIDENT_COLUMNS)]


def _loaded(session: Any, values: Sequence[Any]) -> Resident:
    """The resident whose columns lead ``values``, as a persistent ``Resident`` of ``session``: what the dialogue
    changes on it is flushed at the commit, as for a row an ORM query loaded (the session's own object when it
    holds that row already)."""
    if isinstance(session, LeanSession):
        held = session.held(Resident, values[0])
    else:
        held = session.sync_session.identity_map.get((Resident, (values[0],), None))
    if held is not None:
        return held
    if not _MAPPERS_CONFIGURED:
        configure_mappers()  # before the first instance made outside a query (a query would have done it)
        _MAPPERS_CONFIGURED.append(True)
    resident: Resident = _NEW_RESIDENT()
    resident.__dict__.update(zip(_RESIDENT_COLUMNS, values, strict=False))
    make_transient_to_detached(resident)  # as loaded: its identity set, nothing changed yet
    session.add(resident)
    return resident


async def store(session: Any, row: Received) -> None:
    """The turn's outcome on the delivery's row: reply, how it went out, what the NLU understood, the case."""
    outcome = row.outcome()
    # on PostgreSQL sent with the COMMIT, in its round trip, when the transaction began with the resident's lock
    if _dialect(session) == "postgresql" and update_at_commit(session, _RECORDS, row.id, outcome):
        return
    statement = _STORE_WITH_CASE if "case_id" in outcome else _STORE
    await session.exec(statement, params={"row_id": row.id, **{f"new_{k}": v for k, v in outcome.items()}})


# The statements of every message, built once: building one (coercing its clauses, generating its cache key) costs
# more CPU than SQLite takes to run it (benchmarks/hotpath.py's profile)
_RESIDENT_AND_CONVERSATION = (
    select(
        Resident,
        col(Conversation.id),
        col(Conversation.state),
        col(Conversation.data),
        col(Conversation.updated_at),
    )
    .outerjoin(Conversation, col(Conversation.resident_id) == col(Resident.id))
    .where(col(Resident.openid) == bindparam("openid"))
)
_RECORDS = InboundMessage.__table__  # type: ignore[attr-defined]
_INSERT_RECORD = on_driver(_RECORDS.insert().returning(_RECORDS.c.id))
_NEW_RECORD = ("delivery_key", "openid", "msg_type", "event", "text", "media", "reply_mode", "received_at")
# PostgreSQL: the record inserted for the resident the statement reads (a data-modifying CTE runs exactly once,
# whether or not the outer query reads it; nothing is inserted when the resident is unknown)
_RECORDED = (
    _RECORDS.insert()
    .from_select(
        [*_NEW_RECORD, "resident_id"],
        select(
            *(bindparam(name, type_=_RECORDS.c[name].type) for name in _NEW_RECORD), col(Resident.id)
        ).where(col(Resident.openid) == bindparam("openid")),
    )
    .returning(_RECORDS.c.id)
    .cte("recorded")
)
_RECORD_FOR_KNOWN = _RESIDENT_AND_CONVERSATION.add_columns(
    _RECORDED.c.id, *awaiting(col(Resident.id), bindparam("comment_since"))
).outerjoin(_RECORDED, true())
_RESIDENT_COLUMNS = tuple(column.key for column in Resident.__table__.columns)  # type: ignore[attr-defined]


def _column_by_column(statement: Any) -> Any:
    """``statement`` with the resident entity it selects first replaced by its columns one by one (``_loaded``)."""
    return statement.with_only_columns(
        *Resident.__table__.columns,  # type: ignore[attr-defined]
        *list(statement.selected_columns)[len(_RESIDENT_COLUMNS) :],
    )


# the same statement with the resident's columns one by one, for asyncpg's own API (``first_on_driver``)
_PG_RECORD_FOR_KNOWN = _column_by_column(_RECORD_FOR_KNOWN)
# SQLite (and PostgreSQL's long way): the resident's columns one by one and their conversation, on the driver
_KNOWN_RESIDENT = on_driver(_column_by_column(_RESIDENT_AND_CONVERSATION))
_NEW_RESIDENT = sa_inspect(Resident).class_manager.new_instance
# what a turn changes on the resident (WeChat's window, consent, phone) goes with the COMMIT on PostgreSQL
updates_with_commit(Resident)
_MAPPERS_CONFIGURED: list[bool] = []  # non-empty once ``configure_mappers`` has run for ``_loaded``
# PostgreSQL, a resident not known yet: the resident's INSERT (with WeChat's window open when the message opens it)
# and the record's, which takes the new row's id, in one statement; nothing when the openid's row exists
_CREATED = (
    postgresql.insert(Resident)
    .values(
        openid=bindparam("openid"),
        created_at=bindparam("received_at"),
        subscribed=True,
        survey_opt_out=False,
        cs_sent_since_interaction=0,
        last_interaction_at=bindparam("opened", type_=Resident.__table__.c.last_interaction_at.type),  # type: ignore[attr-defined]
    )
    .on_conflict_do_nothing(index_elements=["openid"])
    .returning(*Resident.__table__.columns)  # type: ignore[attr-defined]
    .cte("created")
)
_RECORDED_NEW = (
    _RECORDS.insert()
    .from_select(
        [*_NEW_RECORD, "resident_id"],
        select(*(bindparam(name, type_=_RECORDS.c[name].type) for name in _NEW_RECORD), _CREATED.c.id),
    )
    .returning(_RECORDS.c.id)
    .cte("recorded_new")
)
_PG_CREATE_AND_RECORD = select(*_CREATED.c, _RECORDED_NEW.c.id).select_from(
    _CREATED.join(_RECORDED_NEW, true())
)
_OUTCOME = ("reply", "reply_mode", "intent", "confidence", "nlu_source")
_STORE = on_driver(
    _RECORDS.update()
    .where(_RECORDS.c.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in _OUTCOME})
)
_STORE_WITH_CASE = on_driver(
    _RECORDS.update()
    .where(_RECORDS.c.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in (*_OUTCOME, "case_id")})
)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def jsonable(media: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | None) else str(v) for k, v in media.items()}
