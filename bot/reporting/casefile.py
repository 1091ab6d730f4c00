"""档案留存 for one case: its file as an .xlsx workbook — the case (sheet 诉求), its whole timeline (时间线), and its
photos embedded as pictures with their SHA-256 (照片) — carrying the head of the case's hash chain and whether the
chain verifies today, so a printed or filed copy can be checked against the database later.

Phone numbers, also inside descriptions and notes, are masked unless the caller asks for full numbers (admins).
Photos are read from the project's own storage (bot/media), not from WeChat."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.drawing.image import Image as SheetImage
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.chain import check_chain
from bot.cases.lifecycle import STATE_LABEL
from bot.cases.numbering import CHANNELS, CHINA, KIND_LABEL
from bot.media import Storage, case_media, open_media
from bot.models import Case, CaseEvent, Resident
from bot.reporting.xlsx import append_row, format_sheet
from reference.privacy import mask_phone, mask_text
from reference.spreadsheet import safe_cell

ACTOR_LABEL = {"resident": "居民", "staff": "工作人员", "system": "系统", "volunteer": "志愿者"}
SOURCE_LABEL = {"chat": "居民微信发送", "volunteer": "志愿者上传"}
#: a photo's height in the sheet (pixels); its width follows its proportions
PHOTO_HEIGHT = 240
ROWS_PER_PHOTO = 13  # rows of default height a photo of PHOTO_HEIGHT spans


def _local(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if moment else ""


async def case_file(
    session: AsyncSession, *, case: Case, storage: Storage, full_phone: bool, now: datetime
) -> tuple[bytes, str]:
    """The workbook of ``case`` and the head of its chain: (file, head)."""
    clean = (lambda s: s or "") if full_phone else mask_text
    events = list(
        (
            await session.exec(
                select(CaseEvent).where(col(CaseEvent.case_id) == case.id).order_by(col(CaseEvent.id))
            )
        ).all()
    )
    head, broken = check_chain(events)
    resident = await session.get(Resident, case.resident_id) if case.resident_id else None
    phone = case.contact_phone or (resident.phone if resident else None)

    wb = Workbook()
    ws = wb.active
    ws.title = "诉求"
    facts: list[tuple[str, Any]] = [
        ("编号", case.case_no),
        ("类型", KIND_LABEL.get(case.kind, case.kind)),
        ("状态", STATE_LABEL.get(case.status, case.status)),
        ("类别", case.category or ""),
        ("物品/事项", case.item or ""),
        ("诉求内容", clean(case.description)),
        ("镇街", case.town),
        ("村（社区）", case.community or ""),
        ("地址", clean(case.address)),
        ("受助人", case.beneficiary or ""),
        ("联系电话", (phone or "") if full_phone else mask_phone(phone)),
        ("渠道", CHANNELS.get(case.channel, case.channel)),
        ("提交时间", _local(case.created_at)),
        ("办结时间", _local(case.completed_at)),
        ("归档时间", _local(case.closed_at)),
        ("时间线事件数", len(events)),
        ("时间线链头（SHA-256）", events[-1].chain_hash if events else ""),
        ("链校验", "完整" if broken is None else f"第{broken[0]}号事件不符：{broken[1]}"),
        ("重新计算的链头", head),
        ("导出时间", _local(now)),
    ]
    table = [("项目", "内容"), *facts]
    for row in table:
        append_row(ws, row)
    format_sheet(ws)

    media = await case_media(session, case_id=case.id or 0)
    by_id = {m.id: m for m in media}
    tl = wb.create_sheet("时间线")
    append_row(tl, ("时间", "操作人", "事件", "原状态", "新状态", "说明", "存档文件", "本事件哈希"))
    for e in events:
        stored = by_id.get(e.data.get("media")) if isinstance(e.data, dict) else None
        append_row(
            tl,
            (
                _local(e.at),
                e.actor_name or ACTOR_LABEL.get(e.actor_type, e.actor_type),
                e.kind,
                STATE_LABEL.get(e.from_status or "", e.from_status or ""),
                STATE_LABEL.get(e.to_status or "", e.to_status or ""),
                clean(e.note),
                f"文件{stored.id} SHA-256 {stored.sha256}" if stored is not None and stored.sha256 else "",
                e.chain_hash or "",
            ),
        )
    format_sheet(tl)

    photos = wb.create_sheet("照片")
    append_row(photos, ("文件", "来源", "类型", "时间", "大小（字节）", "SHA-256", "状态"))
    row_no = 2
    for m in media:
        data = await open_media(storage, m)
        state = "已存档" if data is not None else ("未能保存：" + (m.last_error or m.status))
        photos.cell(row=row_no, column=1, value=m.id)
        for column, value in enumerate(
            (
                SOURCE_LABEL.get(m.source, m.source),
                m.content_type or m.kind,
                _local(m.stored_at or m.created_at),
                m.size or "",
                m.sha256 or "",
                state,
            ),
            start=2,
        ):
            photos.cell(row=row_no, column=column, value=safe_cell(value))
        if data is not None and m.kind == "image":
            picture = SheetImage(io.BytesIO(data))
            ratio = PHOTO_HEIGHT / max(picture.height, 1)
            picture.height, picture.width = PHOTO_HEIGHT, int(picture.width * ratio)
            photos.add_image(picture, f"H{row_no}")
            row_no += ROWS_PER_PHOTO
        else:
            row_no += 1
    photos.freeze_panes = "A2"
    for letter, width in zip("ABCDEFG", (6, 14, 12, 18, 12, 66, 20), strict=True):
        photos.column_dimensions[letter].width = width

    out = io.BytesIO()
    wb.save(out)
    return out.getvalue(), (events[-1].chain_hash or "") if events else ""
