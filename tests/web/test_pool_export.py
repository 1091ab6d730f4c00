"""Issue 10, defects 2 and 7 (pool half): the pool export escapes every formula-like cell, is a POST with CSRF,
writes one audit entry per export (who, what, how many rows), and shows full mobile numbers only to roles that
need them."""

from __future__ import annotations

import csv
import io

import pytest
from factories import NOW, PASSWORD, mk_resource, mk_staff
from helpers import app_client, login
from openpyxl import load_workbook

from bot import keys
from bot.db import transaction

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
        r = await mk_resource(db, "HJ1", name=HOSTILE["name"], items=HOSTILE["items"])
        r.contact = HOSTILE["contact"]
        db.add(r)
    return c


async def _export(client, fmt: str) -> bytes:
    resp = await client.get(f"/staff/pool/export.{fmt}")
    assert resp.status == 200, await resp.text()
    return await resp.read()


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
    header, row = rows[0], rows[1]
    assert row[header.index("名称")] == "'" + HOSTILE["name"]
    assert row[header.index("联系人")] == "'" + HOSTILE["contact"]
    assert row[header.index("物品服务")].startswith("'")
    xrows, types = _xlsx_rows(await _export(client, "xlsx"))
    assert "f" not in types  # no formula cell anywhere
    xheader, xrow = xrows[0], xrows[1]
    assert xrow[xheader.index("名称")] == "'" + HOSTILE["name"]
    assert xrow[xheader.index("联系人")] == "'" + HOSTILE["contact"]
    assert str(xrow[xheader.index("物品服务")]).startswith("'")
