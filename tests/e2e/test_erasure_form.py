"""A written erasure request carried out from the staff web form, through the real system (the simulator over HTTP):
the resident's open case is cancelled, the phone and words are gone from the database, the photo they sent is
deleted from the media store, the chain still verifies, and the request is audited; a town staff member without
supervision rights, another town's supervisor, a missing request text or confirmation change nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot import keys
from bot.cases.chain import verify_chains
from bot.media import fetch_due
from bot.media.tables import StoredMedia
from bot.models import AuditLog, Case
from tests.factories import add_staff
from tests.helpers import System, csrf, running_system, sign_in, wait_until
from wechat_sim.media import png

PHONE = "13912345678"
FIRST = "我爸中风三年了想要一辆轮椅，住厚街镇新围社区幸福路18号"


@pytest.fixture
async def bot_and_sim(db_url: str, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(db_url, tmp_path) as s:
        yield s


async def _case_with_photo(system: System) -> tuple[str, StoredMedia]:
    user = system.user()
    r = await user.send_text(FIRST)
    for answer in ("同意", PHONE, "确认", "确认"):
        if re.search(r"MS\d{8}-\d{4}", r.text):
            break
        r = await user.send_text(answer)
    found = re.search(r"MS\d{8}-\d{4}", r.text)
    assert found, r.text
    async with system.http.post(
        f"{system.sim_url}/_sim/media", data=png(12, 12, (9, 9, 9)), headers={"Content-Type": "image/png"}
    ) as resp:
        media_id = (await resp.json())["media_id"]
    await user.send_image("http://mmbiz.qpic.cn/sim/e.jpg", media_id=media_id)

    async def stored() -> StoredMedia | None:
        async with system.app[keys.SESSIONS]() as db:
            row = (await db.exec(select(StoredMedia))).first()
        return row if row is not None and row.status == "stored" and row.event_id else None

    return found.group(0), await wait_until(stored, timeout=10)


async def _client(system: System, username: str) -> aiohttp.ClientSession:
    client = aiohttp.ClientSession(base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    assert (await sign_in(client, username)).status == 302
    return client


async def _status(system: System, case_no: str) -> str:
    async with system.app[keys.SESSIONS]() as db:
        return (await db.exec(select(Case.status).where(Case.case_no == case_no))).one()


async def test_written_request_erases_through_the_form(bot_and_sim: System) -> None:
    system = bot_and_sim
    case_no, media = await _case_with_photo(system)
    stored_file = system.settings.data_dir / "media" / (media.storage_key or "")
    assert stored_file.is_file()
    sessions = system.app[keys.SESSIONS]
    await add_staff(sessions, "sup_hj", "town_supervisor", town="厚街镇")
    await add_staff(sessions, "sup_hm", "town_supervisor", town="虎门镇")
    await add_staff(sessions, "ts_hj", "town_staff", town="厚街镇")

    plain = await _client(system, "ts_hj")
    other = await _client(system, "sup_hm")
    sup = await _client(system, "sup_hj")
    try:
        assert (await plain.get("/staff/erasure")).status == 403
        token = await csrf(other, "/staff/erasure")
        data = {"csrf_token": token, "case_no": case_no, "ground": "2026年第1号申请", "confirm": "yes"}
        assert (await other.post("/staff/erasure", data=data)).status == 404
        token = await csrf(sup, f"/staff/erasure?case={case_no}")
        for missing, message in (("ground", "请写明书面申请"), ("confirm", "请勾选确认")):
            bad = {**data, "csrf_token": token, missing: ""}
            resp = await sup.post("/staff/erasure", data=bad)
            assert resp.status == 400 and message in await resp.text()
        resp = await sup.post("/staff/erasure", data={**data, "csrf_token": token, "case_no": "MS<script>"})
        assert resp.status == 400
        assert await _status(system, case_no) != "cancelled"

        resp = await sup.post("/staff/erasure", data={**data, "csrf_token": token})
        assert resp.status == 200 and "已删除该居民的个人信息：诉求 1 件，撤销 1 件" in await resp.text()
    finally:
        for c in (plain, other, sup):
            await c.close()

    assert await _status(system, case_no) == "cancelled"
    await fetch_due(system.app[keys.MEDIA])  # the media sweep deletes the erased resident's files
    async with sessions() as db:
        row = await db.get(StoredMedia, media.id)
        assert (
            row is not None
            and row.status == "deleted"
            and row.storage_key is None
            and row.sha256 == media.sha256
        )
        assert (await verify_chains(db)).broken == []
        audits = (await db.exec(select(AuditLog.action, AuditLog.detail))).all()
    assert not stored_file.exists()
    actions = [a for a, _ in audits]
    assert "erase_case" in actions and "erase_resident" in actions
    assert any("2026年第1号申请" in (d or "") for _, d in audits)

    engine = system.app[keys.ENGINE]
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        for table in tables:
            for value in (await conn.execute(sa.text(f'SELECT * FROM "{table}"'))).all():
                text = " ".join(str(v) for v in value)
                assert PHONE not in text and "幸福路18号" not in text, table
