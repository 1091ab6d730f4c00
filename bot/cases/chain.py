"""The tamper-evident timeline: every `CaseEvent` carries a SHA-256 hash chained to the previous event of its case.

``chain_hash(n) = sha256(chain_hash(n-1) | body(n))``, the first event of a case chained to ``GENESIS``. The body
is the event's plain fields (case, time, actor type and id, kind, statuses) and one digest of its personal part
(note, data, actor name), so the personal part can be erased later (a resident's deletion request, the retention
sweep) without breaking the chain: the eraser stores that digest in ``erased_digest`` before blanking the fields,
and verification takes it from there for an erased row.

The hash is filled in when the row is inserted (a mapper hook, so no path that adds a `CaseEvent` can skip it, and
the same ``link_known`` / ``chain_starts`` where a unit of work inserts a case and its event on the driver); the
previous hash is read under a lock on the case row on PostgreSQL, so two transactions appending to one case queue
instead of forking the chain. The head is then remembered for the rest of the transaction (the lock holds until the
commit), and a case inserted in the transaction starts at ``GENESIS`` without a read: filing a case and its first
events costs no SELECT of the chain. Any end of a transaction or savepoint forgets the heads. Verification (`verify_chains`) walks every case in id order and names the first
event whose stored hash differs from the recomputed one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, object_session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.driver import inserts_on_driver
from bot.models import Case, CaseEvent

GENESIS = "0" * 64
#: what an erased row holds in place of its personal part (the digest of the original is in ``erased_digest``)
ERASED_NOTE = "（已删除）"
_HEADS = "case_chain_heads"  # session.info key: the heads of chains extended in the current flush


def _canonical(value: Any) -> str:
    # the JSON column stores what json.dumps gives; read it back the same way so a stored row hashes as it was
    return json.dumps(json.loads(json.dumps(value, ensure_ascii=False)), ensure_ascii=False, sort_keys=True)


def personal_digest(*, note: str | None, data: Mapping[str, Any] | None, actor_name: str | None) -> str:
    """The digest of an event's erasable part."""
    raw = _canonical({"note": note or "", "data": dict(data or {}), "actor_name": actor_name or ""})
    return hashlib.sha256(raw.encode()).hexdigest()


def _at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def link_hash(prev: str, row: Any) -> str:
    """The hash of ``row`` (a CaseEvent or a row with the same attributes) chained to ``prev``."""
    personal = row.erased_digest or personal_digest(note=row.note, data=row.data, actor_name=row.actor_name)
    body = _canonical(
        {
            "case_id": row.case_id,
            "at": _at(row.at),
            "actor_type": row.actor_type,
            "actor_id": row.actor_id,
            "kind": str(row.kind),
            "from_status": row.from_status,
            "to_status": row.to_status,
            "personal": personal,
        }
    )
    return hashlib.sha256(f"{prev}|{body}".encode()).hexdigest()


def erase_event(e: CaseEvent) -> None:
    """Blank the personal part of an event, keeping its digest so the chain still verifies."""
    if e.erased_digest is None:
        e.erased_digest = personal_digest(note=e.note, data=e.data, actor_name=e.actor_name)
    e.note = ERASED_NOTE
    e.data = {}
    e.actor_name = None


# ------------------------------------------------------------------------------------------- filled in on insert
def link_known(info: dict[Any, Any], target: CaseEvent) -> bool:
    """Fill in ``target.chain_hash`` when the head of its case's chain is known in this transaction (``info``: the
    session's), and make it the head; False, nothing changed, when it is not (it is read from the database)."""
    heads: dict[int, str] = info.setdefault(_HEADS, {})
    prev = heads.get(target.case_id)
    if prev is None:
        return False
    target.chain_hash = heads[target.case_id] = link_hash(prev, target)
    return True


def chain_starts(info: dict[Any, Any], case: Case) -> None:
    """A case inserted by this transaction has no events but the ones it writes: its chain starts here."""
    if case.id is not None:
        info.setdefault(_HEADS, {})[case.id] = GENESIS


@event.listens_for(CaseEvent, "before_insert")
def _chain_on_insert(_mapper: Any, connection: sa.Connection, target: CaseEvent) -> None:
    session = object_session(target)
    info: dict[Any, Any] = session.info if session is not None else {}
    if link_known(info, target):
        return
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(col(Case.id)).where(col(Case.id) == target.case_id).with_for_update())
    prev = connection.execute(
        sa.select(col(CaseEvent.chain_hash))
        .where(col(CaseEvent.case_id) == target.case_id)
        .order_by(col(CaseEvent.id).desc())
        .limit(1)
    ).scalar()
    info.setdefault(_HEADS, {})[target.case_id] = prev or GENESIS
    link_known(info, target)


@event.listens_for(Case, "after_insert")
def _new_case_chain(_mapper: Any, _connection: sa.Connection, target: Case) -> None:
    session = object_session(target)
    if session is not None:
        chain_starts(session.info, target)


# a unit of work on a held connection (bot/lanes.py) files a case past the ORM's flush: the same two steps, the
# case's INSERT on the driver and its first event with the COMMIT (nothing in the unit reads it back)
inserts_on_driver(Case, after=chain_starts)
inserts_on_driver(CaseEvent, before=link_known, with_commit=True)


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, transaction: SessionTransaction) -> None:
    # a commit, a rollback or the end of a savepoint: the next event reads its head from the database again (the
    # inner transaction each flush runs in ends with the flush and keeps them)
    if transaction.nested or transaction.parent is None:
        session.info.pop(_HEADS, None)


# ------------------------------------------------------------------------------------------------ verification
@dataclass(frozen=True)
class BrokenLink:
    case_id: int
    case_no: str
    event_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    cases: int
    events: int
    broken: list[BrokenLink]


def check_chain(events: Iterable[Any]) -> tuple[str, tuple[int, str] | None]:
    """Walk one case's events (in id order): (head hash, first broken link as (event id, reason) or None)."""
    prev = GENESIS
    for e in events:
        if e.erased_digest is not None and (e.note != ERASED_NOTE or e.data or e.actor_name):
            return prev, (e.id, "已删除的事件又被写入了内容")
        expected = link_hash(prev, e)
        if e.chain_hash != expected:
            return prev, (e.id, "哈希与内容不符（事件被改动、删除或插入）")
        prev = expected
    return prev, None


async def verify_chains(session: AsyncSession, *, batch: int = 500) -> ChainReport:
    """Check every case's chain; the report names the first broken event of each broken case."""
    broken: list[BrokenLink] = []
    cases = events = 0
    last = 0
    while True:
        rows = list(
            (
                await session.exec(
                    select(Case.id, Case.case_no)
                    .where(col(Case.id) > last)
                    .order_by(col(Case.id))
                    .limit(batch)
                )
            ).all()
        )
        if not rows:
            break
        last = int(rows[-1][0] or 0)
        ids = [r[0] for r in rows]
        found = list(
            (
                await session.exec(
                    select(CaseEvent)
                    .where(col(CaseEvent.case_id).in_(ids))
                    .order_by(col(CaseEvent.case_id), col(CaseEvent.id))
                )
            ).all()
        )
        by_case: dict[int, list[CaseEvent]] = {}
        for e in found:
            by_case.setdefault(e.case_id, []).append(e)
        for raw_id, case_no in rows:
            case_id = int(raw_id or 0)
            cases += 1
            chain = by_case.get(case_id, [])
            events += len(chain)
            _, bad = check_chain(chain)
            if bad is not None:
                broken.append(BrokenLink(case_id=case_id, case_no=case_no, event_id=bad[0], reason=bad[1]))
        session.expunge_all()
    return ChainReport(cases=cases, events=events, broken=broken)


async def chain_heads(session: AsyncSession, case_ids: list[int]) -> dict[int, str]:
    """The stored head (hash of the last event) of each case's chain."""
    if not case_ids:
        return {}
    last = (
        select(col(CaseEvent.case_id), sa.func.max(CaseEvent.id).label("last_id"))
        .where(col(CaseEvent.case_id).in_(case_ids))
        .group_by(col(CaseEvent.case_id))
        .subquery()
    )
    rows = await session.exec(
        select(CaseEvent.case_id, CaseEvent.chain_hash).join(last, col(CaseEvent.id) == last.c.last_id)
    )
    return {cid: h or "" for cid, h in rows.all()}
