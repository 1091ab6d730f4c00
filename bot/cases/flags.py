"""Flags on a case: what staff must still do by hand (phone the resident, follow up a low score, arrange help
nobody claimed). Raising and clearing a flag writes the timeline.

``flag_unreachable`` is what the outbox dispatcher calls (through ``DeliveryConfig.on_unreachable``, wired by the
scheduler) when WeChat says the resident unsubscribed: the delivery package never imports this one.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.access import StaffError
from bot.cases.actors import Actor
from bot.cases.timeline import record_event
from bot.models import Case, CaseEvent
from bot.states import CASE_FLAG_LABEL, CaseFlag, EventKind

PHONE_FLAG = CaseFlag.PHONE_NEEDED
PHONE_NOTE = "微信消息无法送达（对方已取消关注公众号），请电话联系"
#: what a case's flag asks of staff, in their words
FLAG_LABEL: dict[str, str] = dict(CASE_FLAG_LABEL)


class FlagError(StaffError):
    pass


async def flag_unreachable(session: AsyncSession, case_id: int, now: datetime) -> None:
    """A message about this case could not reach the resident (unsubscribed): staff must phone. Once per flag."""
    case = await session.get(Case, case_id)
    if case is None or case.flag == PHONE_FLAG:
        return
    if case.flag is None:
        case.flag = PHONE_FLAG
    case.updated_at = now
    session.add(case)
    record_event(
        session,
        case=case,
        kind=EventKind.NOTE,
        actor=Actor.system(),
        at=now,
        note=PHONE_NOTE,
        data={"flag": PHONE_FLAG},
    )


async def clear_flag(
    session: AsyncSession, *, case: Case, actor: Actor, note: str, now: datetime, expected: str | None = None
) -> CaseEvent:
    """Staff dealt with what the flag asked (phoned the resident, followed up a low score …): the flag goes,
    and the timeline says who cleared it, when and what they did."""
    note = note.strip()
    if case.flag is None:
        raise FlagError("这件诉求没有待处理的标记")
    if expected and case.flag != expected:
        raise FlagError("标记已经变化，请刷新页面后再处理")
    if not note:
        raise FlagError("请写明处理情况，如：已电话联系居民")
    flag = case.flag
    event = record_event(
        session,
        case=case,
        kind=EventKind.NOTE,
        actor=actor,
        at=now,
        note=f"已处理“{FLAG_LABEL.get(flag, flag)}”：{note}",
        data={"flag_cleared": flag},
    )
    case.flag = None
    case.updated_at = now
    session.add(case)
    await session.flush()
    return event
