"""Issue 10, defects 2 and 7 (pool half): the pool export escapes every formula-like cell, is a POST with CSRF,
writes one audit entry per export (who, what, how many rows), and shows full mobile numbers only to roles that
need them."""

from __future__ import annotations

import csv
import io

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import AuditLog, Resource
from tests.factories import NOW, PASSWORD, mk_resource, mk_staff
from tests.helpers import app_client, csrf, login

HOSTILE = {
    "name": '=HYPERLINK("http://evil.example","点我")',
    "contact": "\t=1+1",
    "items": ["@SUM(A1)", "+1"],
}


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    c = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)
    async with transaction(c.app[keys.SESSIONS]) as db:
        await mk_staff(db, "hj")
        await mk_staff(db, "hjboss", role="town_supervisor")
        await mk_resource(db, "HJ2", name="厚街爱心米店", phone="13912345678")
        r = await mk_resource(db, "HJ1", name=HOSTILE["name"], items=HOSTILE["items"])
        r.contact = HOSTILE["contact"]
        db.add(r)
    return c


async def _export(client, fmt: str) -> bytes:
    token = await csrf(client, "/staff/pool")
    resp = await client.post(f"/staff/pool/export.{fmt}", data={"csrf_token": token})
    assert resp.status == 200, await resp.text()
    return await resp.read()


async def _audit(client) -> list[AuditLog]:
    async with client.app[keys.SESSIONS]() as db:
        return list((await db.exec(select(AuditLog).where(AuditLog.action == "pool_export"))).all())


def _csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _xlsx_rows(body: bytes) -> list[list[object]]:
    ws = load_workbook(io.BytesIO(body)).active
    return [[c.value for c in row] for row in ws.iter_rows()], [
        c.data_type for row in ws.iter_rows() for c in row
    ]


async def test_formula_like_cells_are_exported_as_text(client):
    await login(client, "hj", PASSWORD)
    rows = _csv_rows(await _export(client, "csv"))
    header = rows[0]
    row = next(r for r in rows[1:] if r[0] == "HJ1")
    assert row[header.index("名称")] == "'" + HOSTILE["name"]
    assert row[header.index("联系人")] == "'" + HOSTILE["contact"]
    assert row[header.index("物品服务")].startswith("'")
    xrows, types = _xlsx_rows(await _export(client, "xlsx"))
    assert "f" not in types  # no formula cell anywhere
    xheader = xrows[0]
    xrow = next(r for r in xrows[1:] if r[0] == "HJ1")
    assert xrow[xheader.index("名称")] == "'" + HOSTILE["name"]
    assert xrow[xheader.index("联系人")] == "'" + HOSTILE["contact"]
    assert str(xrow[xheader.index("物品服务")]).startswith("'")


@pytest.mark.parametrize(("username", "full"), [("hj", False), ("hjboss", True)])
async def test_export_is_audited_and_masks_numbers_for_roles_that_do_not_need_them(client, username, full):
    await login(client, username, PASSWORD)
    rows = _csv_rows(await _export(client, "csv"))
    phones = {row[rows[0].index("编号")]: row[rows[0].index("电话")] for row in rows[1:]}
    assert phones["HJ2"] == ("13912345678" if full else "139****5678")
    xrows, _ = _xlsx_rows(await _export(client, "xlsx"))
    assert ("13912345678" in str(xrows)) is full
    entries = await _audit(client)
    assert len(entries) == 2
    assert all(e.staff_id is not None and "2条" in e.detail for e in entries)
    assert "CSV" in entries[0].detail and "XLSX" in entries[1].detail
    assert ("完整" if full else "已遮盖") in entries[0].detail


async def test_a_cross_site_get_exports_nothing_and_writes_no_audit_entry(client):
    await login(client, "hj", PASSWORD)
    for fmt in ("csv", "xlsx"):
        resp = await client.get(f"/staff/pool/export.{fmt}", allow_redirects=False)
        assert resp.status in (302, 303, 405)
        assert "13800001111" not in (await resp.read()).decode("utf-8", "replace")
        resp = await client.post(f"/staff/pool/export.{fmt}", data={}, allow_redirects=False)
        assert resp.status in (400, 403)
    assert await _audit(client) == []


async def test_a_masked_export_reimports_without_changing_numbers(client):
    await login(client, "hj", PASSWORD)
    body = await _export(client, "csv")
    token = await csrf(client, "/staff/pool/import")
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    text = body.decode("utf-8-sig").replace(HOSTILE["name"], "厚街助残队")
    form.add_field("file", text.encode("utf-8"), filename="pool.csv", content_type="text/csv")
    resp = await client.post("/staff/pool/import", data=form)
    assert resp.status == 200, await resp.text()
    async with client.app[keys.SESSIONS]() as db:
        phones = {r.key: r.phone for r in (await db.exec(select(Resource))).all()}
    assert phones == {"HJ1": "13800001111", "HJ2": "13912345678"}
