"""Creating cases: human-friendly unique numbers and the first timeline event."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.communities import community_row, take_scan
from bot.cases.timeline import record_event
from bot.deadlines.sla import restart_clock
from bot.driver import on_driver
from bot.models import Case, CaseSeq
from bot.states import CASE_CHANNEL_LABEL, CASE_KIND_LABEL, CaseChannel, CaseStatus, EventKind

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
KIND_LABEL: dict[str, str] = dict(CASE_KIND_LABEL)
CHANNELS: dict[str, str] = dict(CASE_CHANNEL_LABEL)


async def next_case_no(session: AsyncSession, *, now: datetime) -> str:
    """MS20261123-0007: the day in China time and a per-day counter incremented atomically in the database,
    so two cases created in the same millisecond (or by two workers) never share a number."""
    day = now.astimezone(CHINA).strftime("%Y%m%d")
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    n = (await session.exec(_next_number(dialect), params={"day": day})).scalar_one()
    return f"MS{day}-{n:04d}"


@cache
def _next_number(dialect: str) -> Any:
    """The counter's upsert, built once per dialect (building it cost more than running it), on the table (an ORM
    ``insert(CaseSeq)`` took SQLAlchemy's bulk-insert path) and run on the driver in the webhook's units of work."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = CaseSeq.__table__  # type: ignore[attr-defined]
    return on_driver(
        insert(table)
        .values(day=bindparam("day"), last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": table.c.last + 1})
        .returning(table.c.last)
    )


def new_bind_code() -> str:
    """A short code a resident types in WeChat to bind a case staff created for them. It always holds a digit, so
    that typed bare and in lower case it is still a code, never taken for a word (one in six all-letter codes was)."""
    while True:
        code = "".join(secrets.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(6))
        if any(ch.isdigit() for ch in code):
            return code


async def create_case(
    session: AsyncSession,
    *,
    kind: str,
    description: str,
    town: str,
    resident_id: int | None,
    channel: str = "wechat",
    item: str | None = None,
    quantity: int | None = None,
    category: str | None = None,
    suggested_category: str | None = None,
    community: str | None = None,
    community_id: int | None = None,
    address: str | None = None,
    beneficiary: str | None = None,
    contact_phone: str | None = None,
    needs_triage: bool = False,
    actor_type: str = "resident",
    actor_id: int | None = None,
    actor_name: str | None = None,
    now: datetime,
) -> Case:
    if kind not in KIND_LABEL:
        raise ValueError(f"unknown kind {kind!r}")
    if channel == CaseChannel.WECHAT:  # a resident who scanned a community's QR code just before
        by_qr, scanned = await take_scan(session, resident_id=resident_id, town=town, now=now)
        if by_qr:
            channel = CaseChannel.QRCODE
            community_id = scanned.id if scanned is not None else community_id
    registry = await community_row(session, town=town, community_id=community_id, name=community)
    case = Case(
        case_no=await next_case_no(session, now=now),
        kind=kind,
        status=CaseStatus.SUBMITTED,
        description=description,
        town=town,
        resident_id=resident_id,
        channel=channel,
        item=item,
        quantity=quantity,
        category=category,
        suggested_category=suggested_category,
        community=registry.name if registry is not None else community,
        community_id=registry.id if registry is not None else None,
        address=address,
        beneficiary=beneficiary,
        contact_phone=contact_phone,
        needs_triage=needs_triage,
        bind_code=new_bind_code() if resident_id is None else None,
        created_at=now,
        updated_at=now,
        stage_started_at=now,
    )
    # the first stage's deadline (community verification), set before the INSERT so that it goes with it
    await restart_clock(session, case=case, from_status=None, to_status=CaseStatus.SUBMITTED, now=now)
    await session.flush()
    record_event(
        session,
        case=case,
        kind=EventKind.TRANSITION,
        actor=Actor(actor_type, actor_id, actor_name),
        at=now,
        note=f"通过{CHANNELS.get(channel, channel)}提交",
        from_status=None,
        to_status=CaseStatus.SUBMITTED,
    )
    return case
