"""Project photos in the media storage, through the real app: two apps (two web workers or machines, each with its
own data folder) on one database and one S3-compatible store (moto's standalone server over HTTP) see the same
photos, on SQLite and PostgreSQL; the photo is re-encoded (no EXIF) before it is stored; and who may see a photo
follows where the project shows it (a site visit's only to the town's staff, a stage's to everyone once the
project is published)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import boto3
import pytest
from aiohttp import FormData
from PIL import Image
from sqlmodel import select

from bot import keys
from bot.cases.actors import Actor
from bot.db import transaction
from bot.projects import service as svc
from bot.projects.photos import storage_key
from bot.projects.tables import Project, ProjectRound, ProjectStage
from tests.factories import NOW, TOWN, add_staff
from tests.helpers import build_app, csrf, free_port, reachable, sign_in

MOTO = Path(sys.executable).with_name("moto_server")
BUCKET = "project-photos-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            if reachable("127.0.0.1", port):
                break
            if proc.poll() is not None:
                raise RuntimeError("moto_server exited")
            subprocess.run(["sleep", "0.05"], check=True)
        else:
            raise RuntimeError("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _with_exif(color: str = "orange") -> bytes:
    """A JPEG carrying EXIF (the camera's make), as a phone's photo carries its GPS position."""
    img = Image.new("RGB", (64, 48), color)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMakerXYZ"  # Make
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    data = buf.getvalue()
    assert b"PhoneMakerXYZ" in data
    return data


async def _proposal(sessions) -> Project:
    lead = await add_staff(sessions, "hj-lead", "town_supervisor")
    async with transaction(sessions) as db:
        actor = Actor.of_staff(lead)
        r = await svc.create_round(db, town=TOWN, name="第一批", objection_days=1, actor=actor, now=NOW)
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


async def _upload(client, project_id: int, fields: dict[str, str], photo: bytes) -> str:
    url = f"/staff/projects/{project_id}"
    token = await csrf(client, url)
    data = FormData()
    for k, v in {**fields, "csrf_token": token}.items():
        data.add_field(k, v)
    data.add_field("photos", io.BytesIO(photo), filename="p.jpg", content_type="image/jpeg")
    page = await (await client.post(url, data=data)).text()
    return re.search(r'role="status">([^<]*)<', page).group(1)


async def test_two_workers_share_project_photos_through_the_store(
    db_url, aiohttp_client, tmp_path, s3_endpoint
):
    s3 = {
        "media_backend": "s3",
        "media_s3_endpoint": s3_endpoint,
        "media_s3_bucket": BUCKET,
        "media_s3_access_key": "test",
        "media_s3_secret_key": "test",
    }
    first = await aiohttp_client(build_app(db_url, data_dir=tmp_path / "a", **s3))
    second = await aiohttp_client(build_app(db_url, data_dir=tmp_path / "b", **s3))
    project = await _proposal(first.app[keys.SESSIONS])
    await add_staff(first.app[keys.SESSIONS], "hj-staff", "town_staff")
    assert (await sign_in(first, "hj-lead")).status == 302
    assert (
        await _upload(first, project.id, {"op": "visit", "notes": "三盏灯不亮"}, _with_exif())
        == "已记录现场踏勘"
    )
    async with first.app[keys.SESSIONS]() as db:
        (name,) = (await db.get(Project, project.id)).visit_photos
    # in the bucket, re-encoded without its EXIF; nothing in either worker's data folder
    body = (
        boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        .get_object(Bucket=BUCKET, Key=storage_key(name))["Body"]
        .read()
    )
    assert body[:3] == b"\xff\xd8\xff" and b"PhoneMakerXYZ" not in body
    assert not any(p.is_file() and "project_photos" in p.parts for p in tmp_path.rglob("*"))
    # the other worker, with its own data folder, serves it to the town's staff
    assert (await sign_in(second, "hj-staff")).status == 302
    got = await second.get(f"/project-photos/{name}")
    assert got.status == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert await got.read() == body


async def test_who_sees_a_project_photo(sqlite_url, aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(sqlite_url, data_dir=tmp_path))
    anonymous = await aiohttp_client(build_app(sqlite_url, data_dir=tmp_path))
    sessions = client.app[keys.SESSIONS]
    project = await _proposal(sessions)
    await add_staff(sessions, "hm-lead", "town_supervisor", town="虎门镇")
    await add_staff(sessions, "city", "city_supervisor", town=None)
    assert (await sign_in(client, "hj-lead")).status == 302
    assert (
        await _upload(client, project.id, {"op": "visit", "notes": "现场"}, _with_exif()) == "已记录现场踏勘"
    )
    async with sessions() as db:
        (visit_photo,) = (await db.get(Project, project.id)).visit_photos
    # the local backend: under the media folder, not the old project_photos folder
    assert (tmp_path / "media" / storage_key(visit_photo)).is_file()
    assert not (tmp_path / "project_photos").exists()
    # a site visit's photo: the town's staff and the city, nobody else
    assert (await client.get(f"/project-photos/{visit_photo}")).status == 200
    assert (await anonymous.get(f"/project-photos/{visit_photo}")).status == 404
    assert (await sign_in(anonymous, "hm-lead")).status == 302
    assert (await anonymous.get(f"/project-photos/{visit_photo}")).status == 404
    assert (await sign_in(anonymous, "city")).status == 302
    assert (await anonymous.get(f"/project-photos/{visit_photo}")).status == 200
    anonymous.session.cookie_jar.clear()

    # published: a stage's photo is public; the visit's stays with staff
    async with transaction(sessions) as db:
        p = await db.get(Project, project.id)
        lead = Actor.of_staff(await _staff(db, "hj-lead"))
        r = await db.get(ProjectRound, p.round_id)
        await svc.hold_meeting(
            db,
            round_=r,
            attendees="各部门",
            minutes="纪要",
            decisions={p.id: ("selected", "")},
            actor=lead,
            now=NOW,
        )
        await svc.approve(
            db,
            project=p,
            funding=[svc.FundingLine("city", 100_000)],
            unit="市政所",
            due=date(2026, 6, 30),
            actor=lead,
            now=NOW,
        )
    async with transaction(sessions) as db:
        p = await db.get(Project, project.id)
        p.notice_until = NOW - timedelta(minutes=1)  # the objection window over (the app's clock is fixed)
    assert await _upload(
        client, project.id, {"op": "stage", "name": "开工", "note": "进场"}, _with_exif("teal")
    ) == ("已登记进度：开工")
    async with sessions() as db:
        (stage,) = (await db.exec(select(ProjectStage))).all()
    (stage_photo,) = stage.photos
    public = await (await anonymous.get(f"/public/projects/{project.id}")).text()
    assert f"/project-photos/{stage_photo}" in public and visit_photo not in public
    got = await anonymous.get(f"/project-photos/{stage_photo}")
    assert got.status == 200 and got.headers["Cache-Control"].startswith("public")
    assert (await anonymous.get(f"/project-photos/{visit_photo}")).status == 404
    # a name no project holds, and one that is not a name, are not found
    assert (await client.get("/project-photos/" + "0" * 40 + ".jpg")).status == 404
    assert (await client.get("/project-photos/..%2Fdb.sqlite3")).status == 404


async def _staff(db, username: str):
    from bot.models import Staff  # only this helper needs the staff table

    return (await db.exec(select(Staff).where(Staff.username == username))).one()


async def test_a_photo_stored_before_the_media_storage_is_still_served(sqlite_url, aiohttp_client, tmp_path):
    """Photos written to ``data/project_photos`` by the earlier code are read from there when the store lacks them."""
    client = await aiohttp_client(build_app(sqlite_url, data_dir=tmp_path))
    sessions = client.app[keys.SESSIONS]
    project = await _proposal(sessions)
    body = _with_exif("navy")
    name = "ab" * 20 + ".jpg"
    (tmp_path / "project_photos").mkdir()
    (tmp_path / "project_photos" / name).write_bytes(body)
    async with transaction(sessions) as db:
        p = await db.get(Project, project.id)
        p.visit_photos = [name]
    assert (await client.get(f"/project-photos/{name}")).status == 404  # a site visit's: staff only
    assert (await sign_in(client, "hj-lead")).status == 302
    got = await client.get(f"/project-photos/{name}")
    assert got.status == 200 and await got.read() == body
