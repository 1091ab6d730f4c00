"""Help given directly (政府兜底 and the charity fund): a town pays for a wish itself or from the 慈善会 fund.

Each town has one account per source (``town``: the town's own budget, spent by its 社会事务局; ``charity``: the
慈善会 fund) and a ledger of allocations and spendings. The balance moves by a conditional UPDATE in the same
transaction as the ledger line, so two spendings at once can never take it below zero; only a supervisor may
approve a spending that does (the approval is on the ledger line). ``fulfil_directly`` moves the case to work
in progress and tells the resident truthfully who helped ("由厚街镇社会事务局帮您解决")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import SUPERVISORS, Actor
from bot.cases.table import LifecycleError
from bot.cases.transition import notify_resident, transition
from bot.models import Case, FundAccount, FundEntry

SOURCES: dict[str, str] = {"town": "镇街财政", "charity": "慈善会"}
#: who the resident is told helped, by source
HELPER: dict[str, str] = {"town": "{town}社会事务局", "charity": "{town}慈善会"}
MAX_FEN = 100_000_000  # one line of at most 1,000,000 元


class FundError(LifecycleError):
    """A ledger line that cannot be written, with a message staff can read."""


def parse_yuan(text: str) -> int:
    """An amount typed in 元 (up to two decimals) as fen; raises FundError for anything else."""
    text = (text or "").strip().replace(",", "").replace("，", "").removesuffix("元")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FundError("请填写金额（元），如 350 或 350.50") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise FundError("金额须大于0，最多两位小数")
    fen = int(value * 100)
    if fen > MAX_FEN:
        raise FundError("单笔金额不能超过100万元")
    return fen


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def helper_name(town: str, source: str) -> str:
    return HELPER[source].format(town=town)


async def _account(session: AsyncSession, *, town: str, source: str) -> FundAccount:
    if source not in SOURCES:
        raise FundError("请选择资金来源")
    stmt = select(FundAccount).where(FundAccount.town == town, FundAccount.source == source)
    found = (await session.exec(stmt)).first()
    if found is not None:
        return found
    try:
        async with session.begin_nested():
            account = FundAccount(town=town, source=source, balance_fen=0)
            session.add(account)
            await session.flush()
        return account
    except IntegrityError:  # created at the same moment by another request
        return (await session.exec(stmt)).one()


async def allocate(
    session: AsyncSession, *, town: str, source: str, amount_fen: int, note: str, actor: Actor, now: datetime
) -> FundEntry:
    """Money in: an allocation to the town's account (supervisors only)."""
    if actor.role not in SUPERVISORS:
        raise FundError("只有镇街负责人或市级督办可以登记拨款")
    if actor.town is not None and actor.town != town:
        raise FundError("只能为本镇街登记拨款")
    account = await _account(session, town=town, source=source)
    return await _move(
        session,
        account=account,
        kind="allocation",
        delta=amount_fen,
        note=note,
        actor=actor,
        now=now,
        case_id=None,
        approved_by=None,
    )


async def spend(
    session: AsyncSession,
    *,
    town: str,
    source: str,
    amount_fen: int,
    note: str,
    actor: Actor,
    now: datetime,
    case_id: int | None,
    overdraft_approved: bool = False,
) -> FundEntry:
    """Money out. Below zero only with a supervisor's approval (the supervisor is the one spending)."""
    account = await _account(session, town=town, source=source)
    approver = actor.id if overdraft_approved and actor.role in SUPERVISORS else None
    if overdraft_approved and approver is None:
        raise FundError("只有镇街负责人可以批准超出余额的支出")
    return await _move(
        session,
        account=account,
        kind="spending",
        delta=-amount_fen,
        note=note,
        actor=actor,
        now=now,
        case_id=case_id,
        approved_by=approver,
    )


async def _move(
    session: AsyncSession,
    *,
    account: FundAccount,
    kind: str,
    delta: int,
    note: str,
    actor: Actor,
    now: datetime,
    case_id: int | None,
    approved_by: int | None,
) -> FundEntry:
    conditions = [col(FundAccount.id) == account.id]
    if delta < 0 and approved_by is None:
        conditions.append(col(FundAccount.balance_fen) >= -delta)
    result = await session.exec(
        update(FundAccount)
        .where(*conditions)
        .values(balance_fen=col(FundAccount.balance_fen) + delta, updated_at=now)
        .returning(col(FundAccount.balance_fen))
    )
    after = result.scalar_one_or_none()
    if after is None:
        await session.refresh(account)
        raise FundError(
            f"{SOURCES[account.source]}余额不足（现有 {yuan(account.balance_fen)} 元），"
            "超出余额须由镇街负责人批准"
        )
    account.balance_fen = after
    entry = FundEntry(
        town=account.town,
        source=account.source,
        kind=kind,
        amount_fen=abs(delta),
        balance_after_fen=after,
        case_id=case_id,
        note=note.strip()[:200],
        staff_id=actor.id,
        approved_by_id=approved_by,
        at=now,
    )
    session.add(entry)
    await session.flush()
    return entry


async def fulfil_directly(
    session: AsyncSession,
    *,
    case: Case,
    source: str,
    amount_fen: int,
    what: str,
    actor: Actor,
    now: datetime,
    overdraft_approved: bool = False,
    request_key: str | None = None,
) -> FundEntry:
    """The town (or its 慈善会 fund) pays for the wish: the ledger line, the transition to work in progress and
    the resident's message naming who helped, in one transaction."""
    what = what.strip()
    if not what:
        raise FundError("请写明帮扶内容，如：购买轮椅一辆")
    if len(what) > 100:
        raise FundError("帮扶内容太长（最多100字）")
    if source not in SOURCES:
        raise FundError("请选择资金来源")
    helper = helper_name(case.town, source)
    event = await transition(
        session,
        case=case,
        action="fund",
        actor=actor,
        note=f"{helper}出资 {yuan(amount_fen)} 元：{what}",
        now=now,
        request_key=request_key,
        data={"source": source, "amount_fen": amount_fen},
        _set={},
    )
    entry = await spend(
        session,
        town=case.town,
        source=source,
        amount_fen=amount_fen,
        note=f"{case.case_no} {what}",
        actor=actor,
        now=now,
        case_id=case.id,
        overdraft_approved=overdraft_approved,
    )
    await notify_resident(
        session,
        case=case,
        text=f"您的微心愿（编号{case.case_no}）由{helper}帮您解决：{what.rstrip('。')}，正在办理中。",
        dedupe_key=f"case:{case.id}:ev:{request_key or event.id}",
        now=now,
    )
    return entry


@dataclass(frozen=True, slots=True)
class Ledger:
    town: str
    balances: dict[str, int]  # source -> fen
    allocated: dict[str, int]
    spent: dict[str, int]
    entries: list[FundEntry]


async def ledger(session: AsyncSession, *, town: str, limit: int = 200) -> Ledger:
    """The town's accounts and its latest ledger lines (newest first)."""
    accounts = (await session.exec(select(FundAccount).where(FundAccount.town == town))).all()
    entries = list(
        (
            await session.exec(
                select(FundEntry)
                .where(FundEntry.town == town)
                .order_by(col(FundEntry.at).desc(), col(FundEntry.id).desc())
                .limit(limit)
            )
        ).all()
    )
    balances = dict.fromkeys(SOURCES, 0) | {a.source: a.balance_fen for a in accounts}
    allocated = dict.fromkeys(SOURCES, 0)
    spent = dict.fromkeys(SOURCES, 0)
    totals = await session.exec(
        select(FundEntry.source, FundEntry.kind, FundEntry.amount_fen).where(FundEntry.town == town)
    )
    for source, kind, amount in totals.all():
        (allocated if kind == "allocation" else spent)[source] = (
            allocated if kind == "allocation" else spent
        ).get(source, 0) + amount
    return Ledger(town, balances, allocated, spent, entries)
