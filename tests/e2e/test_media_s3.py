"""The S3-compatible backend against a real S3 server: moto's standalone server (``moto_server``) run as a process
on a port of its own, spoken to over HTTP by boto3 exactly as a MinIO deployment is. Round trip, a missing object,
hostile keys, an unreachable store (the download is retried, not dropped), and an image from chat stored in the
bucket and served to staff."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import boto3
import pytest
from sqlmodel import select

from bot import keys
from bot.media import S3Storage, StorageError, fetch_due
from bot.media.storage import MissingObject
from bot.media.tables import StoredMedia
from tests.factories import add_staff
from tests.helpers import System, free_port, reachable, running_system, sign_in, wait_until
from wechat_sim.media import png

MOTO = Path(sys.executable).with_name("moto_server")
BUCKET = "daguanjia-media-test"


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
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a server that ignores SIGTERM is killed, never left running
            proc.kill()
            proc.wait()


def _store(endpoint: str, bucket: str = BUCKET) -> S3Storage:
    return S3Storage(endpoint=endpoint, bucket=bucket, access_key="test", secret_key="test")


def _raw_client(endpoint: str):  # noqa: ANN202 - boto3's client type
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )


async def test_round_trip_missing_object_and_hostile_keys(s3_endpoint: str) -> None:
    store = _store(s3_endpoint, "roundtrip-bucket")
    data = png(16, 16, (1, 2, 3))
    await store.put("2026/12/ab/1-abc.png", data, "image/png")  # creates the bucket on first use
    assert await store.get("2026/12/ab/1-abc.png") == data
    head = _raw_client(s3_endpoint).head_object(Bucket="roundtrip-bucket", Key="2026/12/ab/1-abc.png")
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(data)
    await store.delete("2026/12/ab/1-abc.png")
    with pytest.raises(MissingObject):
        await store.get("2026/12/ab/1-abc.png")
    for bad in ("../etc/passwd", "/abs", "a//b", "A-upper", "", "x" * 300, "a/../b"):
        with pytest.raises(StorageError):
            await store.put(bad, data, "image/png")


async def test_unreachable_store_is_a_storage_error() -> None:
    store = _store(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageError):
        await store.put("2026/12/ab/1-abc.png", b"x", "image/png")


@pytest.fixture
async def s3_system(db_url: str, tmp_path: Path, s3_endpoint: str) -> AsyncIterator[System]:
    async with running_system(
        db_url,
        tmp_path,
        media_backend="s3",
        media_s3_endpoint=s3_endpoint,
        media_s3_bucket=BUCKET,
        media_s3_access_key="test",
        media_s3_secret_key="test",
    ) as s:
        yield s


async def test_chat_image_goes_to_the_bucket_and_is_served(s3_system: System, s3_endpoint: str) -> None:
    system = s3_system
    user = system.user()
    r = await user.send_text("我爸中风三年了想要一辆轮椅，住厚街镇新围社区幸福路18号")
    for answer in ("同意", "13912345678", "确认", "确认"):
        if "编号" in r.text:
            break
        r = await user.send_text(answer)
    found = re.search(r"MS\d{8}-\d{4}", r.text)
    assert found, r.text
    case_no = found.group(0)
    picture = png(30, 20, (5, 99, 200))
    async with system.http.post(
        f"{system.sim_url}/_sim/media", data=picture, headers={"Content-Type": "image/jpeg"}
    ) as resp:
        media_id = (await resp.json())["media_id"]
    await user.send_image("http://mmbiz.qpic.cn/sim/p.jpg", media_id=media_id)

    async def stored() -> StoredMedia | None:
        async with system.app[keys.SESSIONS]() as db:
            row = (await db.exec(select(StoredMedia))).first()
        return row if row is not None and row.status == "stored" else None

    row = await wait_until(stored, timeout=15)
    obj = _raw_client(s3_endpoint).get_object(Bucket=BUCKET, Key=row.storage_key)
    body = obj["Body"].read()
    assert body == picture and hashlib.sha256(body).hexdigest() == row.sha256
    assert obj["ContentType"] == "image/png"
    assert not (system.settings.data_dir / "media").exists()  # nothing in the local folder

    await add_staff(system.app[keys.SESSIONS], "ts_s3", "town_staff", town="厚街镇")
    async with aiohttp.ClientSession(base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as c:
        assert (await sign_in(c, "ts_s3")).status == 302
        async with c.get(f"/staff/media/{row.id}") as resp:
            assert resp.status == 200 and await resp.read() == picture
        assert case_no in await (await c.get(f"/staff/cases/{case_no}")).text()


async def test_store_down_means_retry_not_drop(db_url: str, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async with running_system(
        db_url,
        tmp_path,
        media_backend="s3",
        media_s3_endpoint=down,
        media_s3_access_key="t",
        media_s3_secret_key="t",
    ) as system:
        user = system.user()
        await user.send_text("我爸中风三年了想要一辆轮椅，住厚街镇新围社区幸福路18号")
        async with system.http.post(
            f"{system.sim_url}/_sim/media", data=png(8, 8, (9, 9, 9)), headers={"Content-Type": "image/png"}
        ) as resp:
            media_id = (await resp.json())["media_id"]
        await user.send_image("http://mmbiz.qpic.cn/sim/q.jpg", media_id=media_id)

        async def failed_once() -> StoredMedia | None:
            async with system.app[keys.SESSIONS]() as db:
                row = (await db.exec(select(StoredMedia))).first()
            return row if row is not None and row.last_error else None

        row = await wait_until(failed_once, timeout=60)
        assert row.status == "pending" and "存储" in (row.last_error or "")
        assert row.next_attempt_at is not None and row.next_attempt_at > row.created_at
        assert (await fetch_due(system.app[keys.MEDIA], now=row.created_at))["stored"] == 0
    await asyncio.sleep(0)
