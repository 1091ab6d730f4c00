"""档案留存: every case created in a range with its whole timeline, as an .xlsx file (sheets 诉求 and 时间线);
each case row carries the head of its timeline's hash chain (bot/cases/chain.py), so a printed or filed copy can
be checked against the database later.

Phone numbers, also inside descriptions and notes, are masked unless the caller asks for full numbers (admins);
the cases are read in batches, so the export never holds all rows of the table at once.
"""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import Workbook
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.chain import chain_heads
from bot.cases.lifecycle import STATE_LABEL
from bot.cases.numbering import CHANNELS, CHINA, KIND_LABEL
from bot.models import Case, CaseEvent, Resident, Survey
from bot.reporting.scope import Scope, where
from bot.reporting.xlsx import append_row, streamed_sheet
from reference.privacy import mask_phone, mask_text

ARCHIVE_MAX = 20_000
#: (header, width in characters) of the two sheets
CASE_COLUMNS = (
    ("编号", 16),
    ("类型", 8),
    ("状态", 8),
    ("类别", 10),
    ("物品/事项", 16),
    ("诉求内容", 60),
    ("镇街", 10),
    ("村（社区）", 14),
    ("地址", 30),
    ("受助人", 10),
    ("联系电话", 14),
    ("渠道", 10),
    ("提交时间", 16),
    ("办结时间", 16),
    ("归档时间", 16),
    ("满意度", 8),
    ("时间线链头", 66),
)
EVENT_COLUMNS = (
    ("编号", 16),
    ("时间", 16),
    ("操作人类型", 10),
    ("操作人", 10),
    ("事件", 12),
    ("原状态", 8),
    ("新状态", 8),
    ("说明", 60),
)


async def archive_workbook(
    session: AsyncSession,
    *,
    scope: Scope,
    start: datetime,
    end: datetime,
    full_phone: bool,
    batch: int = 500,
    limit: int = ARCHIVE_MAX,
) -> tuple[bytes, int]:
    """Cases created in [start, end) with their whole timelines, as .xlsx (sheets 诉求 and 时间线). Phone numbers,
    also inside descriptions and notes, are masked unless `full_phone`. Returns (file, number of cases); raises
    ValueError when the range holds more than `limit` cases (the caller asks for a shorter range)."""
    conds = where(town=scope.town, community=scope.community, start=start, end=end)
    total = int((await session.exec(select(func.count()).select_from(Case).where(*conds))).one())
    if total > limit:
        raise ValueError(f"该时间段共有{total}件诉求，超过单次导出上限{limit}件，请缩短时间范围")
    clean = (lambda s: s or "") if full_phone else mask_text
    phone_of = (lambda p: p or "") if full_phone else mask_phone
    local = lambda dt: dt.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if dt else ""  # noqa: E731

    wb = Workbook(write_only=True)
    # rows are streamed, so each column's width (in characters) is chosen here from what it holds
    cases_ws = streamed_sheet(wb, "诉求", [h for h, _ in CASE_COLUMNS], [w for _, w in CASE_COLUMNS])
    events_ws = streamed_sheet(wb, "时间线", [h for h, _ in EVENT_COLUMNS], [w for _, w in EVENT_COLUMNS])
    last_id = 0
    while True:
        rows = list(
            await session.exec(  # type: ignore[call-overload]
                sa_select(Case, col(Resident.phone), col(Survey.score))
                .join(Resident, col(Resident.id) == col(Case.resident_id), isouter=True)
                .join(Survey, col(Survey.case_id) == col(Case.id), isouter=True)
                .where(*conds, col(Case.id) > last_id)
                .order_by(col(Case.id))
                .limit(batch)
            )
        )
        if not rows:
            break
        ids = [c.id for c, _, _ in rows]
        events = await session.exec(
            select(CaseEvent)
            .where(col(CaseEvent.case_id).in_(ids))
            .order_by(col(CaseEvent.case_id), col(CaseEvent.at), col(CaseEvent.id))
        )
        numbers = {c.id: c.case_no for c, _, _ in rows}
        heads = await chain_heads(session, ids)
        for c, resident_phone, score in rows:
            append_row(
                cases_ws,
                [
                    c.case_no,
                    KIND_LABEL.get(c.kind, c.kind),
                    STATE_LABEL.get(c.status, c.status),
                    c.category or "",
                    c.item or "",
                    clean(c.description),
                    c.town,
                    c.community or "",
                    clean(c.address),
                    c.beneficiary or "",
                    phone_of(c.contact_phone or resident_phone),
                    CHANNELS.get(c.channel, c.channel),
                    local(c.created_at),
                    local(c.completed_at),
                    local(c.closed_at),
                    score if score is not None else "",
                    heads.get(c.id, ""),
                ],
            )
        for e in events:
            append_row(
                events_ws,
                [
                    numbers[e.case_id],
                    local(e.at),
                    e.actor_type,
                    e.actor_name or "",
                    e.kind,
                    STATE_LABEL.get(e.from_status or "", e.from_status or ""),
                    STATE_LABEL.get(e.to_status or "", e.to_status or ""),
                    clean(e.note),
                ],
            )
        last_id = ids[-1]
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), total
