"""The per-case file (档案) through the real app: a town's staff member exports one case as .xlsx with its timeline,
the volunteer's photo embedded (the same bytes as uploaded) and the head of the hash chain; the export is audited,
phones are masked, another town's case is not found, and the form needs its CSRF token."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from typing import Any

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlmodel import col, select

from bot import keys
from bot.cases.actors import Actor
from bot.db import transaction
from bot.delivery.links import sign_link
from bot.models import AuditLog, Case, CaseEvent, Staff
from bot.pool import POOL_CACHE, offer
from tests.factories import NOW, OTHER, PASSWORD, mk_resource, mk_staff, mk_wish
from tests.helpers import app_client, csrf, login
from wechat_sim.media import png


@pytest.fixture
async def client(db_url: str, tmp_path: Any, aiohttp_client: Any) -> Any:
    POOL_CACHE.clear()
    c = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)
    yield c
    POOL_CACHE.clear()


async def _case_with_photo(client: Any, picture: bytes) -> str:
    """A wish with the phone 13912345678, accepted by a volunteer who uploads ``picture`` on completion."""
    async with transaction(client.app[keys.SESSIONS]) as db:
        hj = await mk_staff(db, "hj")
        await mk_staff(db, "hm", town=OTHER)
        await mk_resource(db, "HJ1", name="厚街爱心米店")
        case = await mk_wish(db, owner=hj.id, phone="13912345678")
        out = await offer(db, case=case, actor=Actor.of_staff(hj), now=NOW, keys=["HJ1"])
    token = sign_link("l" * 40, "offer", out.sent[0].id, now=NOW.timestamp())
    page_csrf = await csrf(client, f"/v/offer/{token}")
    await client.post(f"/v/offer/{token}/answer", data={"csrf_token": page_csrf, "answer": "accept"})
    form = aiohttp.FormData()
    for name, value in (("csrf_token", page_csrf), ("stage", "done"), ("note", "联系13912345678送到")):
        form.add_field(name, value)
    form.add_field("photo", picture, filename="p.png", content_type="image/png")
    assert "已记录完成" in await (await client.post(f"/v/offer/{token}/progress", data=form)).text()
    return case.case_no


async def test_case_file_has_timeline_photo_and_chain_head_and_is_audited(client: Any) -> None:
    picture = png(64, 48, (220, 120, 20))
    case_no = await _case_with_photo(client, picture)
    await login(client, "hj", PASSWORD)
    token = await csrf(client, f"/staff/cases/{case_no}")
    resp = await client.post(f"/staff/cases/{case_no}/file.xlsx", data={"csrf_token": token})
    assert resp.status == 200 and "spreadsheetml" in resp.content_type
    body = await resp.read()

    async with client.app[keys.SESSIONS]() as db:
        case = (await db.exec(select(Case).where(Case.case_no == case_no))).one()
        events = list(
            (
                await db.exec(
                    select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.id))
                )
            ).all()
        )
        hj = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        audits = (
            await db.exec(
                select(AuditLog).where(AuditLog.staff_id == hj.id, AuditLog.action == "archive_export")
            )
        ).all()
    head = events[-1].chain_hash
    wb = load_workbook(io.BytesIO(body))
    facts = {row[0]: row[1] for row in wb["诉求"].iter_rows(min_row=2, values_only=True)}
    assert facts["编号"] == case_no and facts["时间线链头（SHA-256）"] == head
    assert facts["链校验"] == "完整" and facts["重新计算的链头"] == head
    assert facts["时间线事件数"] == len(events)
    assert facts["联系电话"] == "139****5678"
    timeline = list(wb["时间线"].iter_rows(min_row=2, values_only=True))
    assert len(timeline) == len(events) and [r[7] for r in timeline] == [e.chain_hash for e in events]
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        media = [n for n in z.namelist() if n.startswith("xl/media/")]
        assert len(media) == 1
        assert hashlib.sha256(z.read(media[0])).hexdigest() == hashlib.sha256(picture).hexdigest()
        xml = b"".join(z.read(n) for n in z.namelist() if n.endswith(".xml"))
    assert b"13912345678" not in xml  # masked in the note too
    photos = list(wb["照片"].iter_rows(min_row=2, max_row=2, values_only=True))
    assert photos[0][5] == hashlib.sha256(picture).hexdigest()
    assert len(audits) == 1 and case_no in (audits[0].detail or "") and audits[0].case_id == case.id


async def test_case_file_is_scoped_and_needs_csrf(client: Any) -> None:
    case_no = await _case_with_photo(client, png(8, 8, (1, 1, 1)))
    await login(client, "hm", PASSWORD)
    token = await csrf(client, "/staff")
    assert (await client.post(f"/staff/cases/{case_no}/file.xlsx", data={"csrf_token": token})).status == 404
    assert (await client.post(f"/staff/cases/{case_no}/file.xlsx", data={})).status == 403
    assert (await client.get(f"/staff/cases/{case_no}/file.xlsx")).status == 405
    for bad in ("MS1", "../x", "MS20260302-00011"):
        resp = await client.post(
            f"/staff/cases/{bad}/file.xlsx", data={"csrf_token": token}, headers={"Accept": "text/html"}
        )
        assert resp.status in (400, 404), bad
        assert re.search(r"[\u4e00-\u9fff]", await resp.text())
    async with client.app[keys.SESSIONS]() as db:
        assert (await db.exec(select(AuditLog).where(AuditLog.action == "archive_export"))).all() == []
