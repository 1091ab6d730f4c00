"""Import and export of the pool as CSV or Excel: the whole file validated (bounded, in a thread) before anything
is written, town staff limited to their town, and exports with numbers masked for roles that do not need them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.lifecycle import CITY_ROLES
from bot.models import Resource, Staff
from bot.pool.admin import allowed_categories, can_see
from bot.pool.config import DEFAULT_CONFIG, PoolConfig
from bot.pool.snapshot import POOL_CACHE, load_pool
from matching.pool_io import HEADERS, ImportResult, Problem, export_csv, export_xlsx, parse_pool
from reference.privacy import mask_phone

_HISTORY = ("offers", "accepts", "declines", "timeouts", "completions", "rating_sum", "rating_count")


_PLAIN = (
    "kind",
    "name",
    "contact",
    "phone",
    "home_town",
    "capacity_open",
    "capacity_month",
    "max_fund",
    "available",
    "active",
)


#: wall-clock bound of parsing an import (the reader's own limit is lower; this is the backstop)
IMPORT_SECONDS = 30.0


@dataclass(slots=True)
class ImportOutcome:
    ok: bool
    report: str
    problems: list[Any]
    created: int = 0
    updated: int = 0


async def import_pool(
    session: AsyncSession, *, data: bytes, filename: str, now: datetime, staff: Staff | None = None
) -> ImportOutcome:
    """Validate the whole file, then create or update every row by key — or write nothing at all.

    History columns are taken for new records only (the database's own history wins on re-import); the load
    columns (进行中, 本月已承接, 近30天承接) are always computed from offers. Town staff may import only resources of
    their own town."""
    categories = await allowed_categories(session)
    try:
        # reading a spreadsheet is CPU-bound: off the event loop, and bounded (the reader also stops itself)
        result: ImportResult = await asyncio.wait_for(
            asyncio.to_thread(parse_pool, data, filename=filename, categories=categories),
            timeout=IMPORT_SECONDS,
        )
    except TimeoutError:
        result = ImportResult(problems=[Problem(0, "", "文件太大，处理超时，请分批导入")])
    existing: dict[str, Resource] = {}
    if result.ok:
        keys = [r.key for r in result.rows]
        for i in range(0, len(keys), 500):
            found = (
                await session.exec(select(Resource).where(col(Resource.key).in_(keys[i : i + 500])))
            ).all()
            existing.update({r.key: r for r in found})
        for row_no, r in enumerate(
            result.rows, start=2
        ):  # row numbers are exact when the file has no blank rows
            if len(r.key) > 32:
                result.problems.append(Problem(row_no, HEADERS["key"], f"编号“{r.key}”过长（最多32个字符）"))
            if "*" in r.phone:
                known = existing.get(r.key)
                if known is None or mask_phone(known.phone) != r.phone:
                    result.problems.append(
                        Problem(
                            row_no, HEADERS["phone"], "电话已遮盖：只能用于号码不变的已有记录，请填写完整号码"
                        )
                    )
            if staff is not None and staff.role not in CITY_ROLES:
                old = existing.get(r.key)
                if r.home_town != staff.town or (old is not None and old.home_town != staff.town):
                    result.problems.append(
                        Problem(
                            row_no,
                            HEADERS["home_town"],
                            f"“{r.key}”不属于{staff.town or '您的镇街'}，只能导入本镇街的爱心资源",
                        )
                    )
    if not result.ok:
        return ImportOutcome(False, result.report(), list(result.problems))
    created = updated = 0
    for r in result.rows:
        served = [] if r.city_wide else sorted(r.towns_served)
        values: dict[str, Any] = {
            name: getattr(r, name)
            for name in _PLAIN
            if name in result.columns or name in ("kind", "name", "phone", "home_town")
        }
        values["contact"] = r.contact
        values["phone"] = r.phone or None
        if "*" in r.phone:  # a masked export re-imported: the stored number stays
            values["phone"] = existing[r.key].phone
        values.update(categories=sorted(r.categories), home_town=r.home_town)
        if "items" in result.columns:
            values["items"] = sorted(r.items)
        if "towns_served" in result.columns or r.key not in existing:
            values["towns_served"] = served
        row = existing.get(r.key)
        if row is None:
            values.update({name: getattr(r, name) for name in (*_PLAIN, *_HISTORY)})
            values["phone"] = r.phone or None
            values.setdefault("items", sorted(r.items))
            session.add(Resource(key=r.key, created_at=now, updated_at=now, **values))
            created += 1
        else:
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = now
            session.add(row)
            updated += 1
    await session.flush()
    POOL_CACHE.clear()
    return ImportOutcome(True, f"导入成功：新增{created}条，更新{updated}条。", [], created, updated)


#: roles whose pool export carries full mobile numbers (those who keep the pool's records); everyone else gets
#: them masked (``138****5678``) and reaches a number through the resource page
FULL_PHONE_EXPORT_ROLES = frozenset({"town_supervisor", "admin"})


def exports_full_phones(staff: Staff | None) -> bool:
    """Whether an export by ``staff`` (None: the command line on the server) shows full numbers."""
    return staff is None or staff.role in FULL_PHONE_EXPORT_ROLES


@dataclass(slots=True)
class Export:
    body: bytes
    rows: int
    full_phones: bool


async def export_pool(
    session: AsyncSession,
    *,
    staff: Staff | None,
    now: datetime,
    fmt: str,
    config: PoolConfig = DEFAULT_CONFIG,
) -> Export:
    """The resources ``staff`` may see as CSV or XLSX; numbers masked unless ``exports_full_phones(staff)``.
    Every cell goes through ``reference.spreadsheet.safe_cell``. The caller writes the audit entry."""
    snap = await load_pool(session, now=now, config=config)
    visible = [snap.pool.get(key) for key, row in snap.rows.items() if staff is None or can_see(staff, row)]
    resources = [r for r in visible if r is not None]
    full = exports_full_phones(staff)
    if not full:
        resources = [replace(r, phone=mask_phone(r.phone)) for r in resources]
    if fmt == "xlsx":
        return Export(export_xlsx(resources), len(resources), full)
    return Export(export_csv(resources).encode("utf-8-sig"), len(resources), full)
