"""Issue 10, defect 1: the pool import is bounded (rows, columns, cells, uncompressed size, time), runs off the
event loop, and refuses hostile files with a Chinese message instead of exhausting memory or answering 500."""

from __future__ import annotations

import time

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import Resource
from tests.factories import (
    NOW,
    PASSWORD,
    long_field_csv,
    lying_dimension_xlsx,
    mk_staff,
    wide_xlsx,
    zip_bomb_xlsx,
)
from tests.helpers import app_client, csrf, login


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    c = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)
    async with transaction(c.app[keys.SESSIONS]) as db:
        await mk_staff(db, "hj")
    await login(c, "hj", PASSWORD)
    return c


async def _upload(client, data: bytes, filename: str):
    token = await csrf(client, "/staff/pool/import")
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    started = time.monotonic()
    resp = await client.post("/staff/pool/import", data=form)
    return resp, await resp.text(), time.monotonic() - started


@pytest.mark.parametrize(
    ("make", "filename", "message"),
    [
        (lambda: lying_dimension_xlsx(corner_value=True), "pool.xlsx", "行数超过上限"),
        (wide_xlsx, "pool.xlsx", "列数超过上限"),
        (zip_bomb_xlsx, "pool.xlsx", "疑似压缩炸弹"),
        (long_field_csv, "pool.csv", "单元格过长或格式损坏"),
    ],
    ids=["value-in-row-1048576", "5000-columns", "zip-bomb", "200KB-csv-field"],
)
async def test_hostile_spreadsheets_are_refused_politely(client, make, filename, message):
    data = make()
    resp, body, seconds = await _upload(client, data, filename)
    assert resp.status == 400, body[:500]
    assert message in body
    assert "整个文件未导入" in body
    assert seconds < 10, seconds
    async with client.app[keys.SESSIONS]() as db:
        assert (await db.exec(select(func.count()).select_from(Resource))).one() == 0


async def test_a_sheet_claiming_a1_xfd1048576_imports_its_one_real_row(client):
    data = lying_dimension_xlsx()
    assert len(data) < 2_000
    resp, body, seconds = await _upload(client, data, "pool.xlsx")
    assert resp.status == 200, body[:500]
    assert "导入成功：新增1条" in body
    assert seconds < 10, seconds
    async with client.app[keys.SESSIONS]() as db:
        assert [r.name for r in (await db.exec(select(Resource))).all()] == ["厚街爱心米店"]
