"""A volunteer's completion photo uploaded on the task page (instead of a link), through the real app: checked by
its bytes (a script or SVG named .jpg is refused and nothing is recorded), size-limited, stored in the project's
storage, pointed at by the case's timeline, and shown on the staff case page to the town's staff only."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot import keys
from bot.cases.actors import Actor
from bot.cases.chain import verify_chains
from bot.db import transaction
from bot.delivery.links import sign_link
from bot.media.tables import StoredMedia
from bot.models import Case, CaseEvent, Staff
from bot.pool import POOL_CACHE, offer
from tests.factories import NOW, OTHER, mk_resource, mk_staff, mk_wish
from tests.helpers import app_client, login
from wechat_sim.media import png


@pytest.fixture
async def client(db_url: str, tmp_path: Any, aiohttp_client: Any) -> Any:
    POOL_CACHE.clear()
    c = await app_client(db_url, tmp_path, aiohttp_client, now=NOW, media_max_image_bytes=20_000)
    yield c
    POOL_CACHE.clear()


async def _accepted_offer(client: Any) -> tuple[Case, str, str]:
    """A wish offered to one volunteer who accepts: (case, offer token, the page's CSRF token)."""
    sessions = client.app[keys.SESSIONS]
    async with transaction(sessions) as db:
        await mk_staff(db, "hj")
        await mk_staff(db, "hm", town=OTHER)
        await mk_resource(db, "HJ1", name="厚街爱心米店")
        hj = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        case = await mk_wish(db, owner=hj.id)
        out = await offer(db, case=case, actor=Actor.of_staff(hj), now=NOW, keys=["HJ1"])
    token = sign_link("l" * 40, "offer", out.sent[0].id, now=NOW.timestamp())
    body = await (await client.get(f"/v/offer/{token}")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
    await client.post(f"/v/offer/{token}/answer", data={"csrf_token": csrf, "answer": "accept"})
    return case, token, csrf


def _form(
    csrf: str, data: bytes, name: str = "done.jpg", content_type: str = "image/jpeg"
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("stage", "done")
    form.add_field("note", "轮椅已送到")
    form.add_field("photo", data, filename=name, content_type=content_type)
    return form


async def _media(client: Any) -> list[StoredMedia]:
    async with client.app[keys.SESSIONS]() as db:
        return list((await db.exec(select(StoredMedia))).all())


async def test_uploaded_photo_is_stored_linked_and_shown_to_the_towns_staff(client: Any) -> None:
    case, token, csrf = await _accepted_offer(client)
    body = await (await client.get(f"/v/offer/{token}")).text()
    assert 'type="file"' in body and 'enctype="multipart/form-data"' in body and "https://" not in body
    picture = png(60, 40, (30, 160, 90))
    resp = await client.post(f"/v/offer/{token}/progress", data=_form(csrf, picture))
    assert "已记录完成" in await resp.text()

    (row,) = await _media(client)
    assert (row.status, row.source, row.case_id, row.content_type) == (
        "stored",
        "volunteer",
        case.id,
        "image/png",
    )
    assert row.sha256 == hashlib.sha256(picture).hexdigest()
    stored_file = client.app[keys.SETTINGS].data_dir / "media" / (row.storage_key or "")
    assert stored_file.read_bytes() == picture
    async with client.app[keys.SESSIONS]() as db:
        assert (await db.get(Case, case.id)).status == "completed"  # type: ignore[union-attr]
        event = await db.get(CaseEvent, row.event_id)
        assert event is not None and event.data["media"] == row.id and event.actor_type == "volunteer"
        assert (await verify_chains(db)).broken == []

    await login(client, "hj", "Passw0rd!x")
    page = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    assert f'src="/staff/media/{row.id}"' in page and "志愿者上传的照片" in page
    got = await client.get(f"/staff/media/{row.id}")
    assert got.status == 200 and await got.read() == picture
    await client.post(
        "/staff/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}
    )  # type: ignore[union-attr]
    await login(client, "hm", "Passw0rd!x")
    assert (await client.get(f"/staff/media/{row.id}")).status == 404


@pytest.mark.parametrize(
    ("data", "name", "content_type", "message"),
    [
        (b"<html><script>alert(1)</script></html>", "done.jpg", "image/jpeg", "只能上传照片"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "done.svg",
            "image/svg+xml",
            "只能上传照片",
        ),
        (b"#!AMR\n" + b"\x00" * 100, "done.jpg", "image/jpeg", "只能上传照片"),
        (b"\xff\xd8\xff" + b"\x00" * 30_000, "big.jpg", "image/jpeg", "照片太大"),
    ],
)
async def test_hostile_or_oversized_upload_is_refused_and_nothing_recorded(
    client: Any, data: bytes, name: str, content_type: str, message: str
) -> None:
    case, token, csrf = await _accepted_offer(client)
    resp = await client.post(f"/v/offer/{token}/progress", data=_form(csrf, data, name, content_type))
    assert resp.status == 200 and message in await resp.text()
    assert await _media(client) == []
    async with client.app[keys.SESSIONS]() as db:
        assert (await db.get(Case, case.id)).status != "completed"  # type: ignore[union-attr]
    media_dir = client.app[keys.SETTINGS].data_dir / "media"
    assert not media_dir.exists() or not any(p.is_file() for p in media_dir.rglob("*"))
