"""Media into the project's own storage, through the real system: the simulator delivers an image over HTTP, the bot
downloads it with media/get, checks it by its bytes, stores it, and the staff case page shows it from our own store,
also after the simulator deleted its copy (WeChat's three days). Failures are retried or parked, never dropped."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot import keys
from bot.cases.chain import verify_chains
from bot.db import transaction
from bot.media import fetch_due
from bot.media.tables import StoredMedia
from bot.models import CaseEvent, Offer
from tests.factories import add_staff, mk_resource, mk_wish
from tests.helpers import System, running_system, sign_in, wait_until
from wechat_sim.media import png

CASE_NO = re.compile(r"MS\d{8}-\d{4}")
FIRST = "我爸中风三年了想要一辆轮椅，住厚街镇新围社区幸福路18号"


@pytest.fixture
async def bot_and_sim(db_url: str, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(db_url, tmp_path) as s:
        yield s


async def _file_case(user: Any) -> str:
    r = await user.send_text(FIRST)
    for answer in ("同意", "13912345678", "确认", "确认"):
        if m := CASE_NO.search(r.text):
            return m.group(0)
        r = await user.send_text(answer)
    m = CASE_NO.search(r.text)
    assert m, r.text
    return m.group(0)


async def _put_media(system: System, data: bytes, content_type: str) -> str:
    async with system.http.post(
        f"{system.sim_url}/_sim/media", data=data, headers={"Content-Type": content_type}
    ) as resp:
        assert resp.status == 201
        return str((await resp.json())["media_id"])


async def _rows(system: System) -> list[StoredMedia]:
    async with system.app[keys.SESSIONS]() as db:
        return list((await db.exec(select(StoredMedia).order_by(StoredMedia.id))).all())


async def _staff_session(system: System, username: str) -> aiohttp.ClientSession:
    client = aiohttp.ClientSession(base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    resp = await sign_in(client, username)
    assert resp.status == 302
    return client


async def test_image_in_chat_is_stored_and_shown_after_wechat_deleted_it(bot_and_sim: System) -> None:
    system = bot_and_sim
    user = system.user()
    case_no = await _file_case(user)
    picture = png(40, 30, (200, 30, 30))
    media_id = await _put_media(system, picture, "image/jpeg")  # the declared type is not believed
    reply = await user.send_image("http://mmbiz.qpic.cn/sim/pic.jpg", media_id=media_id)
    assert case_no in reply.text

    # downloaded right after the delivery's commit by a background task, then pointed at by the timeline
    async def stored() -> bool:
        return any(r.status == "stored" and r.event_id is not None for r in await _rows(system))

    await wait_until(stored, timeout=10)
    (row,) = await _rows(system)
    assert row.content_type == "image/png" and row.size == len(picture)
    assert row.sha256 == hashlib.sha256(picture).hexdigest()
    assert row.wechat_media_id == media_id

    # the timeline event points at the stored object and the chain still verifies
    async with system.app[keys.SESSIONS]() as db:
        event = await db.get(CaseEvent, row.event_id)
        assert event is not None and event.data["media"] == row.id
        assert event.data["sha256"] == row.sha256
        assert (await verify_chains(db)).broken == []

    await add_staff(system.app[keys.SESSIONS], "ts_media", "town_staff", town="厚街镇")
    await add_staff(system.app[keys.SESSIONS], "ts_other", "town_staff", town="虎门镇")
    staff = await _staff_session(system, "ts_media")
    other = await _staff_session(system, "ts_other")
    try:
        page = await (await staff.get(f"/staff/cases/{case_no}")).text()
        src = f"/staff/media/{row.id}"
        assert f'<img src="{src}"' in page

        async with staff.get(src) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
            assert await resp.read() == picture

        # WeChat's three days are over: its copy is gone, ours is still shown
        async with system.http.post(f"{system.sim_url}/_sim/media/expire", json={"media_id": media_id}) as r:
            assert (await r.json())["deleted"] == 1
        token = await system.app[keys.WECHAT].access_token()
        async with system.http.get(
            f"{system.sim_url}/cgi-bin/media/get", params={"access_token": token, "media_id": media_id}
        ) as r:
            assert (await r.json())["errcode"] == 40007
        page = await (await staff.get(f"/staff/cases/{case_no}")).text()
        assert f'<img src="{src}"' in page
        async with staff.get(src) as resp:
            assert resp.status == 200 and await resp.read() == picture

        # another town's staff: not found, like the case itself
        async with other.get(src) as resp:
            assert resp.status == 404
        for bad in ("0", "abc", "99999999999999999999999", str(row.id + 100)):
            async with staff.get(f"/staff/media/{bad}") as resp:
                assert resp.status == 404, bad
    finally:
        await staff.close()
        await other.close()


async def test_hostile_and_oversized_files_are_rejected_and_kept_for_staff(bot_and_sim: System) -> None:
    system = bot_and_sim
    user = system.user()
    await _file_case(user)
    html = await _put_media(system, b"<html><script>alert(1)</script></html>", "image/jpeg")
    svg = await _put_media(system, b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/png")
    huge = await _put_media(system, b"\xff\xd8\xff" + b"0" * (64 * 1024), "image/jpeg")
    voice_as_image = await _put_media(system, b"#!AMR\n" + b"\x00" * 64, "image/jpeg")
    system.app[keys.MEDIA].settings.media_max_image_bytes = 32 * 1024
    for media_id in (html, svg, huge, voice_as_image):
        await user.send_image("http://mmbiz.qpic.cn/sim/x.jpg", media_id=media_id)

    async def settled() -> bool:
        rows = await _rows(system)
        return len(rows) == 4 and all(r.status != "pending" for r in rows)

    await wait_until(settled, timeout=10)
    rows = await _rows(system)
    assert [r.status for r in rows] == ["rejected"] * 4
    assert all(r.storage_key is None for r in rows)
    assert "不是图片" in (rows[0].last_error or "") and "文件头" in (rows[0].last_error or "")
    assert "过大" in (rows[2].last_error or "")
    assert "audio/amr" in (rows[3].last_error or "")
    media_dir = system.settings.data_dir / "media"
    assert not media_dir.exists() or not any(p.is_file() for p in media_dir.rglob("*"))


async def test_failed_downloads_are_retried_then_parked_never_dropped(bot_and_sim: System) -> None:
    system = bot_and_sim
    user = system.user()
    await _file_case(user)
    picture = png(20, 20, (10, 200, 10))
    media_id = await _put_media(system, picture, "image/png")
    # WeChat is busy twice: the first attempt (after the commit) fails, the row waits its backoff
    async with system.http.post(
        f"{system.sim_url}/_sim/faults", json={"endpoint": "media", "errcode": -1, "times": 2}
    ) as r:
        assert r.status == 201
    await user.send_image("http://mmbiz.qpic.cn/sim/y.jpg", media_id=media_id)

    async def tried() -> bool:
        rows = await _rows(system)
        return bool(rows) and rows[0].last_error is not None and rows[0].status == "pending"

    await wait_until(tried, timeout=10)
    (row,) = await _rows(system)
    assert "微信" in (row.last_error or "") and row.next_attempt_at is not None
    deps = system.app[keys.MEDIA]
    # before its time nothing happens; at its time it is tried again (still busy), then stored
    assert (await fetch_due(deps, now=row.next_attempt_at - (row.next_attempt_at - row.created_at) / 2))[
        "stored"
    ] == 0
    for _ in range(3):
        (row,) = await _rows(system)
        if row.status != "pending":
            break
        await fetch_due(deps, now=row.next_attempt_at)
    (row,) = await _rows(system)
    assert row.status == "stored" and row.attempts == 3

    # a media id WeChat no longer knows (three days over before we got to it): parked with the reason
    gone = await _put_media(system, picture, "image/png")
    async with system.http.post(f"{system.sim_url}/_sim/media/expire", json={"media_id": gone}) as r:
        assert (await r.json())["deleted"] == 1
    await user.send_image("http://mmbiz.qpic.cn/sim/z.jpg", media_id=gone)

    async def parked() -> bool:
        return any(r.status == "parked" for r in await _rows(system))

    await wait_until(parked, timeout=10)
    last = (await _rows(system))[-1]
    assert last.status == "parked" and "三天" in (last.last_error or "")


async def test_a_volunteers_photo_in_chat_goes_to_their_task(bot_and_sim: System) -> None:
    """A volunteer working on one task sends a photo in chat: it is stored as that task's photo, the timeline event
    names the volunteer; with no task (or several) it stays with the message."""
    system = bot_and_sim
    sessions = system.app[keys.SESSIONS]
    volunteer = system.user()
    async with transaction(sessions) as db:
        resource = await mk_resource(db, "VOL1", name="厚街助残队", openid=volunteer.openid)
        case = await mk_wish(db, status="in_progress")
        db.add(Offer(case_id=case.id, resource_id=resource.id, status="accepted"))
    picture = png(24, 24, (70, 20, 140))
    media_id = await _put_media(system, picture, "image/png")
    await volunteer.send_image("http://mmbiz.qpic.cn/sim/done.jpg", media_id=media_id)

    async def recorded() -> StoredMedia | None:
        rows = await _rows(system)
        return rows[0] if rows and rows[0].event_id else None

    row = await wait_until(recorded, timeout=10)
    assert (row.case_id, row.source, row.sha256) == (
        case.id,
        "volunteer",
        hashlib.sha256(picture).hexdigest(),
    )
    async with sessions() as db:
        event = await db.get(CaseEvent, row.event_id)
        assert event is not None and event.actor_type == "volunteer" and event.actor_name == "厚街助残队"
        assert event.data["media"] == row.id

    stranger = system.user()
    other = await _put_media(system, picture, "image/png")
    await stranger.send_image("http://mmbiz.qpic.cn/sim/x.jpg", media_id=other)

    async def stored_twice() -> bool:
        rows = await _rows(system)
        return len(rows) == 2 and rows[1].status == "stored"

    await wait_until(stored_twice, timeout=10)
    last = (await _rows(system))[1]
    assert last.case_id is None and last.source == "chat" and last.event_id is None
