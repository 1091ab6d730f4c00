"""Hostile input on the micro-project pages: odd ids and paths are a 404 (never a 500), forms without a token are
refused, photos are checked by content and size (not by the name or type the browser claims), and another town's
staff reach nothing."""

from __future__ import annotations

import io
import re

import pytest
from aiohttp import FormData
from PIL import Image
from sqlmodel import select

from bot import keys
from bot.cases.actors import Actor
from bot.db import transaction
from bot.projects import service as svc
from bot.projects.tables import Project
from tests.factories import NOW, TOWN, add_staff
from tests.helpers import build_app, csrf, sign_in


@pytest.fixture
async def client(sqlite_url, aiohttp_client, tmp_path):
    return await aiohttp_client(build_app(sqlite_url, data_dir=tmp_path))


@pytest.fixture
async def project(client) -> Project:
    sessions = client.app[keys.SESSIONS]
    lead = await add_staff(sessions, "hj-lead", "town_supervisor")
    await add_staff(sessions, "hm-lead", "town_supervisor", town="虎门镇")
    async with transaction(sessions) as db:
        actor = Actor.of_staff(lead)
        r = await svc.create_round(db, town=TOWN, name="第一批", objection_days=5, actor=actor, now=NOW)
        return await svc.propose(
            db,
            round_=r,
            title="修路灯",
            summary="修路灯",
            community="新围社区",
            category="照明",
            source="staff",
            actor=actor,
            now=NOW,
        )


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "white").save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "path",
    [
        "/staff/projects/abc",
        "/staff/projects/99999999999999999999999",
        "/staff/projects/%C2%B2",
        "/staff/projects/0",
        "/staff/projects/rounds/x",
        "/public/projects/1%00",
        "/public/projects/-1",
        "/project-photos/..%2F..%2Fetc%2Fpasswd",
        "/project-photos/" + "a" * 40 + ".png",
        "/vote/abc",
        "/vote/vote.1-1.99999999999.forged",
    ],
)
async def test_odd_paths_are_not_found_or_forbidden(client, project, path):
    assert (await sign_in(client, "hj-lead")).status == 302
    resp = await client.get(path, allow_redirects=False)
    assert resp.status in (403, 404), (path, resp.status)


async def test_a_community_worker_proposes_but_does_not_open_rounds(client, project):
    await add_staff(client.app[keys.SESSIONS], "hj-cw", "community_worker")
    assert (await sign_in(client, "hj-cw")).status == 302
    token = await csrf(client, "/staff/projects")
    resp = await client.post(
        "/staff/projects", data={"op": "round", "name": "第二批", "objection_days": "5", "csrf_token": token}
    )
    assert "批次由镇街工作人员建立" in await resp.text()
    resp = await client.post(
        "/staff/projects",
        data={
            "op": "propose",
            "round_id": str(project.round_id),
            "source": "consultation",
            "title": "村口加装护栏",
            "community": "新围社区",
            "category": "安全隐患",
            "summary": "议事会提出",
            "csrf_token": token,
        },
    )
    assert "已收集提案「村口加装护栏」" in await resp.text()


async def test_bad_query_and_forms(client, project):
    assert (await sign_in(client, "hj-lead")).status == 302
    assert (await client.get("/public/projects?town=火星镇")).status == 400
    assert (await client.get("/public/projects?page=²")).status in (200, 400)
    resp = await client.post(f"/staff/projects/{project.id}", data={"op": "visit", "notes": "x"})
    assert resp.status == 403  # no CSRF token
    token = await csrf(client, f"/staff/projects/{project.id}")
    resp = await client.post(f"/staff/projects/{project.id}", data={"op": "drop-table", "csrf_token": token})
    assert resp.status == 400
    resp = await client.post(
        f"/staff/projects/{project.id}",
        data={"op": "approve", "due": "2026-02-30", "unit": "x", "csrf_token": token},
    )
    assert "不是有效的日期" in await resp.text()
    # another town's supervisor finds nothing
    assert (await sign_in(client, "hm-lead")).status == 302
    assert (await client.get(f"/staff/projects/{project.id}")).status == 404
    token = await csrf(client, "/staff/projects")
    resp = await client.post(
        f"/staff/projects/{project.id}", data={"op": "visit", "notes": "越权", "csrf_token": token}
    )
    assert resp.status == 404


@pytest.mark.parametrize(
    ("files", "said"),
    [
        ([("big.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 1), "image/jpeg")], "不能超过5MB"),
        ([("a.gif", b"GIF89a" + b"0" * 100, "image/gif")], "只接受JPG、PNG或WebP照片"),
        ([("a.jpg", b"MZ\x90\x00 not a picture", "image/jpeg")], "不是有效的图片文件"),
        ([("empty.jpg", b"", "image/jpeg")], "文件是空的"),
        ([(f"{i}.jpg", _jpeg(), "image/jpeg") for i in range(7)], "一次最多上传6张照片"),
    ],
)
async def test_photo_uploads_are_checked(client, project, tmp_path, files, said):
    assert (await sign_in(client, "hj-lead")).status == 302
    token = await csrf(client, f"/staff/projects/{project.id}")
    data = FormData()
    for k, v in {"op": "visit", "notes": "现场", "csrf_token": token}.items():
        data.add_field(k, v)
    for name, body, ctype in files:
        data.add_field("photos", io.BytesIO(body), filename=name, content_type=ctype)
    resp = await client.post(f"/staff/projects/{project.id}", data=data)
    page = await resp.text()
    assert said in re.search(r'role="status">([^<]*)<', page).group(1)
    async with client.app[keys.SESSIONS]() as db:
        row = (await db.exec(select(Project))).one()
    assert row.status == "proposed" and row.visit_photos == []
    stored = tmp_path / "media"
    assert not stored.exists() or not [p for p in stored.rglob("*") if p.is_file()]
