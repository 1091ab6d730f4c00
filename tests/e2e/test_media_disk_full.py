"""Disk full while storing media: a clear log line, a kind answer, the file fetched again once there is room, and
nothing else breaks. Through the real system on a real full disk (a 64 KiB tmpfs, where the machine lets the tests
mount one), and on any machine with the kernel's /dev/full under the local store."""

from __future__ import annotations

import builtins
import errno
import logging
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot import keys
from bot.media import fetch_due
from bot.media.storage import LocalStorage, StorageError
from bot.media.tables import StoredMedia
from tests.helpers import System, running_system, wait_until
from wechat_sim.media import png

CASE_NO = re.compile(r"MS\d{8}-\d{4}")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"no tiny tmpfs on this machine ({done.stderr.strip()[:80]}); the /dev/full test covers it"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler to delete later."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


@pytest.fixture
async def system_on_tiny_disk(sqlite_url: str, tmp_path: Path, tiny_disk: Path) -> AsyncIterator[System]:
    async with running_system(sqlite_url, tmp_path, media_dir=tiny_disk / "media") as s:
        yield s


async def _rows(system: System) -> list[StoredMedia]:
    async with system.app[keys.SESSIONS]() as db:
        return list((await db.exec(select(StoredMedia).order_by(StoredMedia.id))).all())


async def test_a_full_disk_keeps_the_image_for_later_and_the_chat_goes_on(
    system_on_tiny_disk: System, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    system = system_on_tiny_disk
    (tiny_disk / "media").mkdir()
    user = system.user()
    r = await user.send_text("我爸中风三年了想要一辆轮椅，住厚街镇新围社区幸福路18号")
    for answer in ("同意", "13912345678", "确认", "确认"):
        if CASE_NO.search(r.text):
            break
        r = await user.send_text(answer)
    case_no = CASE_NO.search(r.text)
    assert case_no, r.text
    filler = _fill(tiny_disk)
    picture = png(40, 30, (30, 120, 200))
    async with system.http.post(
        f"{system.sim_url}/_sim/media", data=picture, headers={"Content-Type": "image/png"}
    ) as resp:
        media_id = str((await resp.json())["media_id"])
    with caplog.at_level(logging.ERROR, logger="bot.media.storage"):
        reply = await user.send_image("http://mmbiz.qpic.cn/sim/pic.jpg", media_id=media_id)
        assert case_no.group(0) in reply.text  # the resident's kind answer, as on any day

        async def failed_once() -> bool:
            return any(row.last_error for row in await _rows(system))

        await wait_until(failed_once, timeout=10)
    assert any("disk full" in rec.getMessage() for rec in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    (row,) = await _rows(system)
    assert row.status == "pending" and row.last_error and "磁盘已满" in row.last_error
    assert row.next_attempt_at is not None  # retried later, not dropped
    assert not [p for p in (tiny_disk / "media").rglob("*") if p.is_file()]  # no half file left behind

    # the rest of the bot does not notice
    progress = await user.send_text("查询进度")
    assert case_no.group(0) in progress.text

    filler.unlink()  # room again: the next pass stores it
    counts = await fetch_due(system.app[keys.MEDIA], now=system.app[keys.CLOCK]() + timedelta(days=1))
    assert counts.get("stored") == 1, counts
    (row,) = await _rows(system)
    assert row.status == "stored" and row.size == len(picture)


async def test_local_store_on_dev_full_raises_a_storage_error_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_open = builtins.open

    def full_open(path: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if "w" in mode and str(path).endswith(".tmp"):
            Path(path).touch()  # the temporary file exists, as after a real open()
            return real_open("/dev/full", mode, *args, **kw)  # every write: ENOSPC from the kernel
        return real_open(path, mode, *args, **kw)

    monkeypatch.setattr("bot.media.storage.open", full_open, raising=False)
    store = LocalStorage(tmp_path / "media")
    with caplog.at_level(logging.ERROR, logger="bot.media.storage"), pytest.raises(StorageError) as err:
        await store.put("2026/12/ab/1-abcdef.png", png(8, 8, (0, 0, 0)), "image/png")
    assert str(err.value) == "磁盘已满"
    assert any("disk full" in r.getMessage() for r in caplog.records)
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
