"""A local, append-only journal of verified deliveries for the time the database is away.

When the first write of a delivery fails because the database is unavailable, the delivery is appended here as
one JSON line and flushed to disk (``fsync``) before the resident is answered; when the database returns, the
journal is replayed in order through the normal path. Exactly once: every delivery is recorded under its unique
key, so an entry replayed twice (a crash after the replay committed but before the file was removed) has one
effect.

Files live in ``<data_dir>/journal/``, one per process incarnation (``inbound-<pid>-<token>.jsonl``), so several
workers on one machine never write to one file. At start a process adopts the files of processes that are gone
(rename is atomic: one adopter wins) and replays them before its own.

Order is kept per resident: while the journal holds entries of a resident, that resident's new deliveries join
them (``Journal.holds``); other residents go on through the database.

A second file per process, ``guard-<pid>-<token>.jsonl`` (:class:`Guard`), holds the deliveries WeChat was answered
``success`` for while their handling still ran (a slow dialogue, a database under load): a kill -9 would lose them
otherwise. The owner never replays it and empties it once nothing in it is outstanding; a process that adopts it
after a crash replays it like a journal (the unique key makes an entry that did commit a no-op).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from webhooks import Delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    delivery: Delivery
    received_at: datetime


def encode(delivery: Delivery, received_at: datetime) -> bytes:
    record = {
        "key": delivery.key,
        "openid": delivery.openid,
        "account": delivery.account,
        "msg_type": delivery.msg_type,
        "event": delivery.event,
        "text": delivery.text,
        "media": {
            k: v if isinstance(v, str | int | float | bool | None) else str(v)
            for k, v in delivery.media.items()
        },
        "create_time": delivery.create_time.isoformat(),
        "raw_xml": base64.b64encode(delivery.raw_xml.encode("utf-8")).decode("ascii"),
        "received_at": received_at.isoformat(),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def decode(line: bytes) -> Entry:
    r = json.loads(line)
    delivery = Delivery(
        key=r["key"],
        openid=r["openid"],
        account=r["account"],
        msg_type=r["msg_type"],
        event=r["event"],
        text=r["text"],
        media=r["media"],
        create_time=datetime.fromisoformat(r["create_time"]),
        raw_xml=base64.b64decode(r["raw_xml"]).decode("utf-8"),
    )
    return Entry(delivery, datetime.fromisoformat(r["received_at"]))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Journal:
    """The journal of this process. Appends are synchronous (write + fsync, no await in between), so on one event
    loop an append never interleaves with the replayer's "reached the end, remove the file" step."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.token = secrets.token_hex(4)
        self.own = directory / f"inbound-{os.getpid()}-{self.token}.jsonl"
        self._fd: int | None = None
        self._queue: list[Path] = []  # files to replay, oldest first (adopted ones, then our own)
        self._offsets: dict[Path, int] = {}
        self._holders: Counter[str] = Counter()  # openid -> entries not yet replayed
        self.adopt()

    # ------------------------------------------------------------------ writing
    def append(self, delivery: Delivery, received_at: datetime) -> None:
        """Write one entry and fsync it. Raises OSError (e.g. ENOSPC) when it cannot be kept."""
        self.append_many([(delivery, received_at)])

    def append_many(self, entries: list[tuple[Delivery, datetime]]) -> None:
        """Write entries in order with one fsync (all or none). Raises OSError (e.g. ENOSPC) when they cannot be
        kept."""
        if not entries:
            return
        data = b"".join(encode(delivery, received_at) for delivery, received_at in entries)
        if self._fd is None:
            self._fd = _open_for_append(self.own)
        _append_synced(self._fd, data)
        if self.own not in self._queue:  # pending only once something is really kept
            self._queue.append(self.own)
        self._holders.update(delivery.openid for delivery, _ in entries)

    @property
    def pending(self) -> bool:
        return bool(self._queue)

    @property
    def waiting(self) -> int:
        """Entries not yet replayed."""
        return sum(self._holders.values())

    def holds(self, openid: str) -> bool:
        """Whether entries of this resident wait to be replayed (their next delivery must join them)."""
        return self._holders[openid] > 0

    # ------------------------------------------------------------------ adopting the files of gone processes
    def adopt(self) -> None:
        if not self.directory.is_dir():
            return
        found: list[tuple[float, Path]] = []
        for path in sorted(
            (*self.directory.glob("inbound-*.jsonl*"), *self.directory.glob("guard-*.jsonl*"))
        ):
            if path == self.own or path in self._queue:
                continue
            parts = path.name.split("-")
            try:
                pid = int(parts[1])
            except (IndexError, ValueError):
                continue
            if ".adopted-" not in path.name and pid != os.getpid() and _pid_alive(pid):
                continue  # a live worker's journal or guard (or its compaction under way): it handles its own
            if ".adopted-" in path.name:
                owner = int(path.name.rsplit(".adopted-", 1)[1].split("-")[0])
                if owner != os.getpid() and _pid_alive(owner):
                    continue
            target = (
                self.directory / f"{path.name.split('.jsonl')[0]}.jsonl.adopted-{os.getpid()}-{self.token}"
            )
            try:
                os.rename(path, target)
            except FileNotFoundError:
                continue  # another process adopted it first
            found.append((target.stat().st_mtime, target))
        for _, path in sorted(found):
            log.warning("journal: adopted %s from a process that is gone; it will be replayed", path.name)
            self._queue.append(path)
            self._holders.update(_openids(path))

    # ------------------------------------------------------------------ replaying
    def entries(self) -> Iterator[tuple[Path, int, Entry | None]]:
        """The entries not yet replayed, in order: (file, offset after the entry, entry or None if unreadable)."""
        for path in list(self._queue):
            offset = self._offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    for line in f:
                        if not line.endswith(b"\n"):
                            break  # a line still being written (never by us: appends are whole)
                        offset += len(line)
                        try:
                            yield path, offset, decode(line)
                        except (ValueError, KeyError, TypeError):
                            log.error(
                                "journal: unreadable entry in %s at byte %d, skipped", path.name, offset
                            )
                            yield path, offset, None
            except FileNotFoundError:
                self._queue.remove(path)

    def done(self, path: Path, offset: int, entry: Entry | None = None) -> None:
        """Entries of ``path`` up to ``offset`` (the last of them ``entry``) are in the database."""
        self._offsets[path] = offset
        if entry is not None and self._holders[entry.delivery.openid] > 0:
            self._holders[entry.delivery.openid] -= 1
            if not self._holders[entry.delivery.openid]:
                del self._holders[entry.delivery.openid]

    def finish_files(self) -> None:
        """Remove every file replayed to its end (synchronously: no append can slip in between)."""
        for path in list(self._queue):
            offset = self._offsets.get(path, 0)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = offset
            if offset < size:
                break  # order: later files wait for this one
            if path == self.own and self._fd is not None:
                os.close(self._fd)
                self._fd = None
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            self._queue.remove(path)
            self._offsets.pop(path, None)
            log.info("journal: %s fully replayed and removed", path.name)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open_for_append(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def _append_synced(fd: int, data: bytes) -> None:
    """Write ``data`` at the end of ``fd`` and fsync it, or leave the file as it was and raise OSError (e.g. ENOSPC):
    never half a line behind, so the next entry starts on its own line."""
    start = os.lseek(fd, 0, os.SEEK_END)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(28, "short write to the journal")
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass
        raise


def _openids(path: Path) -> Iterator[str]:
    """The resident of each readable entry of an adopted file (whose deliveries must stay in order)."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    try:
                        yield str(json.loads(line)["openid"])
                    except (ValueError, KeyError, TypeError):
                        continue
    except FileNotFoundError:
        return


class Guard:
    """Deliveries answered ``success`` while still being handled, written down (fsync'd) before that answer.

    Writes are grouped: every delivery that asks while a write is under way goes into the next one, with one
    fsync, on a worker thread (the event loop never waits for the disk). ``release`` forgets a delivery once its
    outcome is in the database (or in the journal); when nothing is outstanding the file is emptied, and past
    ``COMPACT_BYTES`` it is rewritten with the outstanding entries only (under sustained load it may never empty)."""

    COMPACT_BYTES = 8 * 1024 * 1024

    def __init__(self, directory: Path, token: str) -> None:
        self.directory = directory
        self.path = directory / f"guard-{os.getpid()}-{token}.jsonl"
        self._fd: int | None = None
        self._outstanding: dict[str, bytes] = {}  # key -> its line in the file
        self._batch: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.kept = 0

    def __contains__(self, key: str) -> bool:
        return key in self._outstanding

    def __len__(self) -> int:
        return len(self._outstanding)

    async def keep(self, delivery: Delivery, received_at: datetime) -> None:
        """Return once the delivery is on disk. Raises OSError (e.g. ENOSPC) when it cannot be kept."""
        if delivery.key in self._outstanding:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((delivery.key, encode(delivery, received_at), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="journal-guard")
        await asyncio.shield(done)
        self.kept += 1

    async def _write(self) -> None:
        while self._batch:
            batch, self._batch = self._batch, []
            data = b"".join(line for _, line, _ in batch)
            live = b"".join(self._outstanding.values())  # what a compaction keeps, read on the loop's thread
            try:
                await asyncio.to_thread(self._append, data, live)
            except OSError as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for key, line, done in batch:
                self._outstanding[key] = line
                if not done.done():
                    done.set_result(None)

    def _append(self, data: bytes, live: bytes) -> None:
        if self._fd is None:
            self._fd = _open_for_append(self.path)
        if os.lseek(self._fd, 0, os.SEEK_END) <= self.COMPACT_BYTES:
            _append_synced(self._fd, data)
            return
        # a new file with the outstanding entries, then the new ones, swapped in
        fresh = self.path.with_name(self.path.name + ".compact")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            _append_synced(fd, live + data)
        except OSError:
            os.close(fd)
            fresh.unlink(missing_ok=True)
            raise
        os.replace(fresh, self.path)
        os.close(self._fd)
        self._fd = fd

    def release(self, key: str) -> None:
        """The delivery's outcome is in the database or the journal. Emptying the file when nothing is outstanding
        is one synchronous truncate, never while a write is under way."""
        if self._outstanding.pop(key, None) is None:
            return
        if not self._outstanding and self._fd is not None and not self._batch:
            if self._writer is None or self._writer.done():
                os.ftruncate(self._fd, 0)

    def discard(self) -> None:
        """At a shutdown whose journal took every outstanding delivery: the file is not needed any more."""
        self.close()
        self._outstanding.clear()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


__all__ = ["Entry", "Guard", "Journal", "decode", "describe", "encode"]
