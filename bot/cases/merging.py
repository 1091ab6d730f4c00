"""One-click merge of a cluster (事件预警): several open cases about the same thing become one. The case kept is the
one staff pick (by default the earliest); each other case is merged into it through ``merge_case`` — a transition
recorded on its timeline by the one timeline writer, its resident told — and the kept case records each merge.

All or nothing: every case must exist, lie in the staff member's jurisdiction and town, and still be open; a case
merged meanwhile (two staff clicking at once) makes the whole merge refuse, nothing changed."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actions import merge_case
from bot.cases.actors import Actor
from bot.cases.table import TERMINAL, TransitionError, in_jurisdiction
from bot.models import Case

MAX_CLUSTER = 30


async def merge_cluster(
    session: AsyncSession, *, case_nos: list[str], keep: str, actor: Actor, note: str, now: datetime
) -> tuple[Case, list[Case]]:
    """Merge every case of ``case_nos`` but ``keep`` into ``keep``; returns (kept, merged)."""
    numbers = list(dict.fromkeys(case_nos))
    if keep not in numbers:
        raise TransitionError("请选择保留哪一件诉求")
    if not 2 <= len(numbers) <= MAX_CLUSTER:
        raise TransitionError("至少需要两件诉求才能合并")
    query = select(Case).where(col(Case.case_no).in_(numbers)).order_by(col(Case.id))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()  # two staff merging the same cluster queue here
    cases = {c.case_no: c for c in (await session.exec(query)).all()}
    missing = [n for n in numbers if n not in cases or not in_jurisdiction(cases[n], actor)]
    if missing:
        raise TransitionError(f"找不到诉求{'、'.join(missing)}")
    kept = cases[keep]
    if len({c.town for c in cases.values()}) != 1:
        raise TransitionError("只能合并同一镇街的诉求")
    over = [n for n in numbers if cases[n].status in TERMINAL]
    if over:
        raise TransitionError(f"诉求{'、'.join(over)}已经结束或已合并，请刷新预警后再试")
    merged = []
    for number in numbers:
        if number == keep:
            continue
        await merge_case(
            session, case=cases[number], into=kept, actor=actor, note=note or "同一事项，合并办理", now=now
        )
        merged.append(cases[number])
    return kept, merged
