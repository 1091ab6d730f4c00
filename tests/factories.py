"""Test data built in each test: staff, residents, cases, resources, offers, and hostile spreadsheet files.

Append new factories; never import from a test module."""

from __future__ import annotations

import io
import itertools
import os
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cases.access import create_staff
from bot.cases.numbering import create_case
from bot.db import transaction
from bot.models import Case, Offer, Resident, Resource, Staff

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Dongguan
PASSWORD = "Passw0rd!x"
TOWN, OTHER = "厚街镇", "虎门镇"


# ---------------------------------------------------------------------------------------------- the pool
async def mk_resource(
    db,
    key: str,
    *,
    town: str = TOWN,
    categories=("助残",),
    items=("轮椅",),
    openid: str | None = None,
    served: list[str] | None = None,
    capacity_open: int = 2,
    capacity_month: int = 4,
    accepts: int = 0,
    declines: int = 0,
    name: str | None = None,
    active: bool = True,
    phone: str = "13800001111",
) -> Resource:
    r = Resource(
        key=key,
        kind="individual",
        name=name or f"志愿者{key}",
        contact=name or f"联系人{key}",
        phone=phone,
        openid=openid,
        categories=list(categories),
        items=list(items),
        home_town=town,
        towns_served=served if served is not None else [town],
        capacity_open=capacity_open,
        capacity_month=capacity_month,
        accepts=accepts,
        declines=declines,
        active=active,
        created_at=NOW,
        updated_at=NOW,
    )
    db.add(r)
    await db.flush()
    return r


async def mk_wish(
    db,
    *,
    town: str = TOWN,
    category: str = "助残",
    item: str | None = "轮椅",
    status: str = "claimed",
    owner: int | None = None,
    resident_openid: str | None = None,
    phone: str = "13912345678",
    now: datetime = NOW,
) -> Case:
    r = Resident(openid=resident_openid or f"o-res-{os.urandom(4).hex()}", phone=phone)
    db.add(r)
    await db.flush()
    c = await create_case(
        db,
        kind="micro_wish",
        description="家里老人腿脚不便，需要一辆轮椅",
        town=town,
        resident_id=r.id,
        community="新围社区",
        category=category,
        item=item,
        address="新围村三巷8号",
        beneficiary="陈伯",
        contact_phone=phone,
        now=now,
    )
    c.status = status
    c.claimed_by_id = owner
    await db.flush()
    return c


async def mk_staff(
    db, username: str, role: str = "town_staff", town: str | None = TOWN, openid: str | None = None
) -> Staff:
    s = await create_staff(
        db,
        username=username,
        password=PASSWORD,
        role=role,
        town=town,
        community="新围社区" if role == "community_worker" else None,
        display_name=username,
    )
    if openid:
        s.openid = openid
        await db.flush()
    return s


# ---------------------------------------------------------------------------------------------- through a session factory
# (each opens and commits its own transaction: for tests that hold the app's ``sessions``, not a ``db``)
async def add_staff(
    sessions: Any, username: str, role: str, town: str | None = TOWN, community: str | None = None
) -> Staff:
    """A staff account with password ``PASSWORD``; community workers get 新围社区 unless told otherwise."""
    async with transaction(sessions) as db:
        return await create_staff(
            db,
            username=username,
            password=PASSWORD,
            role=role,
            town=town,
            community=community or ("新围社区" if role == "community_worker" else None),
            display_name=username,
        )


async def add_resident(sessions: Any, *, openid: str | None = None, phone: str = "13812345678") -> Resident:
    async with transaction(sessions) as db:
        r = Resident(openid=openid or f"o-{os.urandom(4).hex()}", phone=phone)
        db.add(r)
        await db.flush()
        return r


async def add_case(
    sessions: Any,
    *,
    town: str = TOWN,
    status: str = "submitted",
    owner: int | None = None,
    community: str = "新围社区",
    desc: str = "家里老人需要轮椅",
    deadline: datetime | None = None,
    kind: str = "micro_wish",
    now: datetime = NOW,
) -> Case:
    """A case numbered by the real ``create_case``, filed by a new resident, put straight into ``status``."""
    async with transaction(sessions) as db:
        r = Resident(openid=f"o-{os.urandom(4).hex()}", phone="13812345678")
        db.add(r)
        await db.flush()
        c = await create_case(
            db, kind=kind, description=desc, town=town, resident_id=r.id, community=community, now=now
        )
        c.status = status
        c.claimed_by_id = owner
        c.stage_deadline = deadline
        await db.flush()
        return c


async def add_offer(
    sessions: Any, *, case_id: int, resource_id: int, status: str = "offered", **fields: Any
) -> Offer:
    """An offer of a resource for a case, offered at ``NOW`` unless told otherwise."""
    async with transaction(sessions) as db:
        o = Offer(case_id=case_id, resource_id=resource_id, status=status, **{"offered_at": NOW, **fields})
        db.add(o)
        await db.flush()
        return o


async def add_rows(sessions: Any, *objs: Any) -> tuple[Any, ...]:
    """Add model rows as they are (for seeded figures) in one transaction."""
    async with transaction(sessions) as db:
        for o in objs:
            db.add(o)
        await db.flush()
    return objs


# ---------------------------------------------------------------------------------------------- bare rows (figures)
STATS_NOW = datetime(2026, 3, 18, 4, 0, tzinfo=UTC)  # Wednesday 12:00 China time
_seq = itertools.count(1)


def case_row(
    *,
    town: str = TOWN,
    kind: str = "micro_wish",
    status: str = "submitted",
    created: datetime = STATS_NOW - timedelta(days=2),
    completed: datetime | None = None,
    category: str | None = "助老",
    item: str | None = None,
    channel: str = "wechat",
    community: str | None = "新围社区",
    deadline: datetime | None = None,
    description: str = "",
) -> Case:
    """A bare ``Case`` row (not through ``create_case``) with a unique test number, for seeded figures."""
    return Case(
        case_no=f"MS-T{next(_seq):06d}",
        kind=kind,
        status=status,
        town=town,
        category=category,
        item=item,
        channel=channel,
        community=community,
        created_at=created,
        updated_at=created,
        completed_at=completed,
        stage_deadline=deadline,
        description=description,
    )


# ---------------------------------------------------------------------------------------------- hostile files
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def raw_xlsx(sheet_xml: str, *, extra: dict[str, bytes] | None = None) -> bytes:
    """A minimal XLSX written by hand (no library fixes what the sheet claims)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def _inline_row(r: int, values: list[str]) -> str:
    from openpyxl.utils import get_column_letter

    cells = "".join(
        f'<c r="{get_column_letter(i)}{r}" t="inlineStr"><is><t>{v}</t></is></c>'
        for i, v in enumerate(values, 1)
    )
    return f'<row r="{r}">{cells}</row>'


POOL_HEADER = ["编号", "类型", "名称", "电话", "服务类别", "所在镇街"]
POOL_ROW = ["R1", "热心市民", "厚街爱心米店", "13800001111", "助残", "厚街"]


def lying_dimension_xlsx(*, corner_value: bool = False) -> bytes:
    """About 1.5 KB: a header and one good record, a ``<dimension>`` that claims the whole sheet (A1:XFD1048576,
    17 billion cells), and a last row element at 1048576 — empty (as a formatted row), or with values in A and XFD."""
    last = '<c r="A1048576"><v>1</v></c><c r="XFD1048576"><v>1</v></c>' if corner_value else ""
    return raw_xlsx(
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<dimension ref="A1:XFD1048576"/><sheetData>'
        f'{_inline_row(1, POOL_HEADER)}{_inline_row(2, POOL_ROW)}<row r="1048576">{last}</row>'
        "</sheetData></worksheet>"
    )


def wide_xlsx(columns: int = 5_000, rows: int = 3) -> bytes:
    """A sheet whose rows are ``columns`` cells wide."""
    from openpyxl.utils import get_column_letter

    body = "".join(
        f'<row r="{r}">'
        + "".join(f'<c r="{get_column_letter(c)}{r}"><v>{c}</v></c>' for c in range(1, columns + 1))
        + "</row>"
        for r in range(1, rows + 1)
    )
    return raw_xlsx(
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{body}</sheetData></worksheet>"
    )


def zip_bomb_xlsx(megabytes: int = 64) -> bytes:
    """A valid small sheet plus a member that inflates to ``megabytes`` MB of zeros."""
    return raw_xlsx(
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c></row></sheetData></worksheet>',
        extra={"xl/media/padding.bin": b"\0" * (megabytes * 1024 * 1024)},
    )


def long_field_csv(chars: int = 200_000) -> bytes:
    """A pool CSV with one quoted field of ``chars`` characters (over the csv module's 128 KB field limit)."""
    header = "编号,类型,名称,电话,服务类别,所在镇街\n"
    return (header + f'R1,热心市民,"{"长" * chars}",13800001111,助残,厚街\n').encode("utf-8")
