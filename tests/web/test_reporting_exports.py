"""The reporting exports through the real app (create_app, real HTTP, real database): the statistics workbook and
the archive (档案留存) write residents' text as plain text, never as a formula; exports are POST forms with CSRF
and audited; file names carry the China date."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import openpyxl
import pytest
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import AuditLog, CaseEvent
from tests.factories import NOW, PASSWORD, TOWN, mk_staff, mk_wish
from tests.helpers import app_client, csrf, login

CONTROL = "\x01=2+2\x0b"  # control characters XML cannot hold (openpyxl refuses them) in front of a formula
HOSTILE = ['=HYPERLINK("http://x","y")', "=1+1", "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", " =1+1", "\r=1+1"]
EXPORTS = {"stats": "/staff/stats/export.xlsx", "archive": "/staff/archive.xlsx"}


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    return await app_client(db_url, tmp_path, aiohttp_client, now=NOW)


async def seed_hostile(client) -> None:
    """One case per hostile text, the text in its item, category, description, address, beneficiary and in a
    timeline note, created an hour before the app's clock (so it is inside this month's figures)."""
    async with transaction(client.app[keys.SESSIONS]) as db:
        for i, text in enumerate(HOSTILE):
            case = await mk_wish(
                db, category=text, item=text, now=NOW - timedelta(hours=1), phone=f"1391234{i:04d}"
            )
            case.description = text
            case.address = text
            case.beneficiary = text
            if i == 0:
                case.description = CONTROL
            db.add(
                CaseEvent(
                    case_id=case.id,
                    at=NOW - timedelta(minutes=30),
                    actor_type="staff",
                    kind="note",
                    note=text,
                )
            )


async def sign_in(client, username: str, role: str = "town_supervisor", town: str | None = TOWN) -> str:
    async with transaction(client.app[keys.SESSIONS]) as db:
        await mk_staff(db, username, role, town=town)
    return await login(client, username, PASSWORD)


async def export(client, name: str, params: dict[str, str] | None = None):
    """Ask for an export the way the statistics page does: a POST form with the page's CSRF token."""
    token = await csrf(client, "/staff/stats")
    return await client.post(EXPORTS[name], data={**(params or {}), "csrf_token": token})


def cells(body: bytes) -> list[openpyxl.cell.cell.Cell]:
    wb = openpyxl.load_workbook(io.BytesIO(body))
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]


@pytest.mark.parametrize("name", ["stats", "archive"])
async def test_resident_text_is_never_a_formula_in_an_export(client, name):
    await seed_hostile(client)
    await sign_in(client, "sup1")
    resp = await export(client, name)
    assert resp.status == 200, await resp.text()
    written = cells(await resp.read())
    assert not [c.value for c in written if c.data_type == "f"]  # no formula anywhere
    texts = [c.value for c in written if isinstance(c.value, str)]
    for hostile in HOSTILE:
        # the resident's words are there, as text, behind the one escape (a leading apostrophe); XML reads a
        # carriage return back as a line feed
        assert "'" + hostile.replace("\r", "\n") in texts, (hostile, texts[:40])
    if name == "archive":
        assert "'=2+2" in texts  # the control characters dropped, the formula still escaped
    assert all(c.data_type == "s" for c in written if isinstance(c.value, str))


async def audit_rows(client, action: str) -> list[AuditLog]:
    async with client.app[keys.SESSIONS]() as db:
        return list(await db.exec(select(AuditLog).where(AuditLog.action == action)))


@pytest.mark.parametrize(("name", "action"), [("stats", "stats_export"), ("archive", "archive_export")])
async def test_a_cross_site_request_neither_downloads_nor_writes_the_audit_log(client, name, action):
    await sign_in(client, "sup2")
    # a link or image another site plants: the staff member's browser sends the cookie with a GET
    resp = await client.get(EXPORTS[name], params={"from": "2026-03-01", "to": "2026-03-02"})
    assert resp.status == 405
    # a cross-site form POST has the cookie (SameSite=Lax aside) but not the page's token
    resp = await client.post(EXPORTS[name], data={"from": "2026-03-01", "to": "2026-03-02"})
    assert resp.status == 403
    assert await audit_rows(client, action) == []
    resp = await export(client, name, {"from": "2026-03-01", "to": "2026-03-02"})
    assert resp.status == 200 and resp.content_type.endswith("spreadsheetml.sheet")
    (row,) = await audit_rows(client, action)
    assert "2026-03-01~2026-03-02" in row.detail


async def test_the_statistics_page_offers_the_exports_as_forms_with_the_token(client):
    await sign_in(client, "sup3")
    html = await (await client.get("/staff/stats")).text()
    for ident, path in (("export-stats", EXPORTS["stats"]), ("export-archive", EXPORTS["archive"])):
        form = re.search(
            rf'<form method="post" action="{re.escape(path)}" id="{ident}"[^>]*>(.*?)</form>', html, re.S
        )
        assert form, ident
        assert 'name="csrf_token"' in form.group(1) and 'name="from" value="2026-03-01"' in form.group(1)


async def test_export_file_names_carry_the_china_date(aiohttp_client, db_url, tmp_path):
    # 2026-03-31 20:00 UTC is 2026-04-01 04:00 in Dongguan: the default range is "this month so far" in China
    late = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
    client = await app_client(db_url, tmp_path, aiohttp_client, now=late)
    await sign_in(client, "sup4")
    for name, prefix in (("stats", "统计"), ("archive", "档案")):
        resp = await export(client, name)
        assert resp.status == 200
        filename = unquote(resp.headers["Content-Disposition"].split("filename*=UTF-8''")[1])
        assert filename == f"{prefix}_{TOWN}_20260401-20260401_导出20260401.xlsx"
