"""A local, append-only journal of verified deliveries for the time the database is away.

When the first write of a delivery fails because the database is unavailable, the delivery is appended here as
one JSON line and flushed to disk (``fsync``) before the resident is answered; when the database returns, the
journal is replayed in order through the normal path. Exactly once: every delivery is recorded under its unique
key, so an entry replayed twice (a crash after the replay committed but before the file was removed) has one
effect.

Files live in ``<data_dir>/journal/``, one per process incarnation (``inbound-<pid>-<token>.jsonl``), so several
workers on one machine never write to one file. At start a process adopts the files of processes that are gone
(rename is atomic: one adopter wins) and replays them before its own.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
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
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.own, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, "short write to the journal")
            os.fsync(self._fd)
        except OSError:
            # never leave half a line behind: the next entry must start on its own line
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            raise
        if self.own not in self._queue:  # pending only once something is really kept
            self._queue.append(self.own)

    @property
    def pending(self) -> bool:
        return bool(self._queue)

    # ------------------------------------------------------------------ adopting the files of gone processes
    def adopt(self) -> None:
        if not self.directory.is_dir():
            return
        found: list[tuple[float, Path]] = []
        for path in self.directory.glob("inbound-*.jsonl*"):
            if path == self.own or path in self._queue:
                continue
            parts = path.name.split("-")
            try:
                pid = int(parts[1])
            except (IndexError, ValueError):
                continue
            if path.name.endswith(".jsonl") and pid != os.getpid() and _pid_alive(pid):
                continue  # a live worker's journal: it replays its own
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

    def done(self, path: Path, offset: int) -> None:
        """Entries of ``path`` up to ``offset`` are in the database."""
        self._offsets[path] = offset

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


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


__all__ = ["Entry", "Journal", "decode", "describe", "encode"]
