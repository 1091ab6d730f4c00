"""权责清单: for each kind and category of case, the unit that answers for it and its time limit in working days.

Admins edit the list; a starter list for a Dongguan town is seeded by migration 0017 (``STARTER``). When a
micro-project case is dispatched, ``apply_on_dispatch`` (called by the transition, in its transaction) records
the responsible unit on the case and takes the stage's deadline from the list; a category the list does not
name keeps the deadline of the SLA policy table and no unit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.table import LifecycleError
from bot.cases.timeline import record_event
from bot.deadlines.workdays import add_working_days
from bot.models import Case, Responsibility
from bot.states import CaseKind, EventKind

MAX_DAYS = 60
#: (kind, category, responsible unit, working days) — a starter list; each town adjusts it
STARTER: tuple[tuple[str, str, str, int], ...] = (
    (CaseKind.MICRO_PROJECT, "道路交通", "镇街住房城乡建设和交通局", 10),
    (CaseKind.MICRO_PROJECT, "照明", "镇街城市管理和综合执法局（路灯所）", 5),
    (CaseKind.MICRO_PROJECT, "公共设施", "镇街公共服务办", 10),
    (CaseKind.MICRO_PROJECT, "环境卫生", "镇街城市管理和综合执法局（环卫所）", 5),
    (CaseKind.MICRO_PROJECT, "文体设施", "镇街宣传教育文体旅游办", 10),
    (CaseKind.MICRO_PROJECT, "安全隐患", "镇街应急管理分局", 3),
    (CaseKind.MICRO_PROJECT, "其他", "镇街公共服务办", 10),
    (CaseKind.MICRO_WISH, "助学", "镇街教育管理中心", 10),
    (CaseKind.MICRO_WISH, "助医", "镇街社会事务局（医保）", 10),
    (CaseKind.MICRO_WISH, "助老", "镇街社会事务局", 10),
    (CaseKind.MICRO_WISH, "助残", "镇街残联", 10),
    (CaseKind.MICRO_WISH, "生活物资", "镇街社会事务局", 7),
    (CaseKind.MICRO_WISH, "就业帮扶", "镇街人力资源和社会保障分局", 10),
    (CaseKind.MICRO_WISH, "心理关爱", "镇街社会事务局（社工站）", 10),
    (CaseKind.MICRO_WISH, "其他", "镇街社会事务局", 10),
)
KIND_NAMES = (CaseKind.MICRO_WISH.value, CaseKind.MICRO_PROJECT.value)


class DutyError(LifecycleError):
    """A row of the list that cannot be saved, with a message an admin can read."""


async def list_duties(session: AsyncSession) -> list[Responsibility]:
    rows = await session.exec(
        select(Responsibility).order_by(col(Responsibility.kind).desc(), col(Responsibility.id))
    )
    return list(rows.all())


async def duty_for(session: AsyncSession, *, kind: str, category: str | None) -> Responsibility | None:
    if not category:
        return None
    rows = await session.exec(
        select(Responsibility).where(Responsibility.kind == kind, Responsibility.category == category)
    )
    return rows.first()


async def save_duty(
    session: AsyncSession,
    *,
    duty_id: int | None,
    kind: str,
    category: str,
    unit: str,
    days: int,
    now: datetime,
) -> Responsibility:
    """Adds a row, or changes the unit and time limit of one (its kind and category stay)."""
    unit, category = unit.strip(), category.strip()
    if not unit or len(unit) > 64:
        raise DutyError("请填写责任单位（最多64字）")
    if not 1 <= days <= MAX_DAYS:
        raise DutyError(f"办理时限须为1到{MAX_DAYS}个工作日")
    if duty_id is not None:
        row = await session.get(Responsibility, duty_id)
        if row is None:
            raise DutyError("没有这一项")
    else:
        if kind not in KIND_NAMES:
            raise DutyError("请选择诉求类型")
        if not category or len(category) > 32:
            raise DutyError("请填写类别（最多32字）")
        if await duty_for(session, kind=kind, category=category) is not None:
            raise DutyError("这个类别已在清单里，请直接修改")
        row = Responsibility(kind=kind, category=category, unit=unit, days=days)
    row.unit, row.days, row.updated_at = unit, days, now
    session.add(row)
    await session.flush()
    return row


async def apply_on_dispatch(
    session: AsyncSession, *, case: Case, actor: Actor, now: datetime
) -> Responsibility | None:
    """The case was just dispatched: the unit and the deadline from the list (when it names the category)."""
    duty = await duty_for(session, kind=case.kind, category=case.category)
    if duty is None:
        return None
    case.unit = duty.unit
    case.stage_deadline = add_working_days(now, duty.days)
    session.add(case)
    record_event(
        session,
        case=case,
        kind=EventKind.NOTE,
        actor=actor,
        at=now,
        note=f"按权责清单派给{duty.unit}，{duty.days}个工作日内办理",
        data={"duty_id": duty.id, "unit": duty.unit, "days": duty.days},
    )
    await session.flush()
    return duty
