"""The staff call queue (电话待办): one list of every call staff owe a resident, whatever asked for it.

Two tables feed it and keep owning their writes — ``CallBack`` (the resident asked for a person, "人工"; written by
``bot.conversation.callbacks``) and ``CallTask`` (neither WeChat nor SMS reached the resident; written by
``bot.cases.calltasks``). This read model puts them in one queue, earliest deadline first, with the reason shown;
both follow one deadline rule and one reminder/escalation ladder (``bot.deadlines.calls``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, literal, null, union_all
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deadlines.calls import REASON_LABEL
from bot.models import CallBack, CallTask, Case

CALLBACK, CALLTASK = "callback", "calltask"


@dataclass(frozen=True, slots=True)
class Call:
    source: str  # callback | calltask
    id: int
    reason: str  # what staff are told the call is for (REASON_LABEL)
    detail: str  # the resident's words (call-back) or why nobody was reached (call task)
    town: str | None
    phone: str | None
    created_at: datetime
    due_at: datetime
    escalated: bool
    case_id: int | None = None
    case_no: str = ""
    case_status: str = ""

    @property
    def key(self) -> str:
        return f"{self.source}-{self.id}"

    def late(self, now: datetime) -> bool:
        return self.due_at < now


async def open_calls(session: AsyncSession, *, town: str | None) -> list[Call]:
    """Every open call of one town (``town=None``: every town's, and call-backs whose town is not known yet),
    earliest deadline first."""
    tasks = select(CallTask).where(col(CallTask.done_at).is_(None))
    backs = select(CallBack).where(col(CallBack.done_at).is_(None))
    if town is not None:
        tasks = tasks.where(col(CallTask.town) == town)
        backs = backs.where(col(CallBack.town) == town)
    task_rows = list((await session.exec(tasks)).all())
    back_rows = list((await session.exec(backs)).all())
    case_ids = {r.case_id for r in task_rows} | {r.case_id for r in back_rows if r.case_id is not None}
    cases: dict[int, tuple[str, str]] = {}
    if case_ids:
        found = await session.exec(
            select(col(Case.id), col(Case.case_no), col(Case.status)).where(
                col(Case.id).in_(sorted(case_ids))
            )
        )
        cases = {cid: (no, status) for cid, no, status in found.all() if cid is not None}
    calls = [
        Call(
            source=CALLTASK,
            id=r.id or 0,
            reason=REASON_LABEL[CALLTASK],
            detail=r.reason,
            town=r.town,
            phone=r.phone,
            created_at=r.created_at,
            due_at=r.due_at,
            escalated=r.escalated_at is not None,
            case_id=r.case_id,
            case_no=cases.get(r.case_id, ("", ""))[0],
            case_status=cases.get(r.case_id, ("", ""))[1],
        )
        for r in task_rows
    ] + [
        Call(
            source=CALLBACK,
            id=r.id or 0,
            reason=REASON_LABEL[CALLBACK],
            detail=r.note,
            town=r.town,
            phone=r.phone,
            created_at=r.created_at,
            due_at=r.due_at,
            escalated=r.escalated_at is not None,
            case_id=r.case_id,
            case_no=cases.get(r.case_id or 0, ("", ""))[0],
            case_status=cases.get(r.case_id or 0, ("", ""))[1],
        )
        for r in back_rows
    ]
    return sorted(calls, key=lambda c: (c.due_at, c.source, c.id))


@dataclass(frozen=True, slots=True)
class CallCounts:
    """The queue page's badge: the open calls of ``open_calls`` counted, without loading them."""

    calltasks: int = 0
    callbacks: int = 0
    late: int = 0

    @property
    def open(self) -> int:
        return self.calltasks + self.callbacks


def call_count_selects(*, town: str | None, now: datetime) -> list[Any]:
    """The counting queries of ``open_call_counts``, one per source, each one row of (source, NULL, open, late):
    for a caller that sends them with other counts in one statement (``bot.cases.queries.queue_badges``)."""
    parts = []
    for source, table in ((CALLTASK, CallTask), (CALLBACK, CallBack)):
        q = select(
            literal(source).label("source"),
            null().label("flag"),
            func.count().label("n"),
            func.count(sql_case((col(table.due_at) < now, 1))).label("late"),
        ).where(col(table.done_at).is_(None))
        if town is not None:
            q = q.where(col(table.town) == town)
        parts.append(q)
    return parts


def call_counts_of(rows: Iterable[Any]) -> CallCounts:
    """``CallCounts`` from the rows of ``call_count_selects`` (other sources' rows are left alone)."""
    counts = {str(r[0]): (int(r[2]), int(r[3] or 0)) for r in rows if r[0] in (CALLTASK, CALLBACK)}
    tasks, backs = counts.get(CALLTASK, (0, 0)), counts.get(CALLBACK, (0, 0))
    return CallCounts(calltasks=tasks[0], callbacks=backs[0], late=tasks[1] + backs[1])


async def open_call_counts(session: AsyncSession, *, town: str | None, now: datetime) -> CallCounts:
    """How many calls ``open_calls`` would list for ``town``, how many of each source and how many are late
    (``Call.late``: due before ``now``), in one statement."""
    rows = await session.exec(union_all(*call_count_selects(town=town, now=now)))  # type: ignore[call-overload]
    return call_counts_of(rows)
