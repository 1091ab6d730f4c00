"""Media into the project's own storage: register what arrives, download it, check it, store it, point at it.

A delivery with a WeChat media id (image, voice) gets a ``StoredMedia`` row in the delivery's own transaction
(``keep``), so it is never dropped; after the commit a background task downloads it (``fetch_due``, also the
scheduler's sweep). Each attempt claims the row with a conditional UPDATE (a lease), so two workers never fetch the
same file. What WeChat answers decides what follows:

- the file, of the expected kind by its own bytes and within the size limit → stored, and a timeline event of the
  case points at it (its id, type, size and SHA-256, so the hash chain covers the file too);
- more bytes than allowed, or bytes that are not an image/voice → rejected with the reason (kept for staff);
- 40007 (the media id is unknown or its three days are over) → parked, with the reason;
- anything else (network, busy, storage down) → retried with growing pauses, parked after ``MAX_ATTEMPTS``.

An image sent while the resident's request is still a draft belongs to no case yet; its event is written by the
sweep once the delivery is linked to the case it became part of."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy import or_, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.actors import Actor
from bot.cases.chain import ERASED_NOTE
from bot.cases.rights import ERASED_OPENID
from bot.cases.table import OPEN_STATES
from bot.cases.timeline import record_event
from bot.db import Sessions, transaction
from bot.delivery.wechat_api import MediaTooLarge, WeChatError
from bot.media.sniff import EXPECTED, FileType, sniff
from bot.media.storage import MissingObject, Storage, StorageError
from bot.media.tables import StoredMedia
from bot.models import Case, InboundMessage, Offer, Resident, Resource
from bot.settings import Settings

log = logging.getLogger(__name__)

#: attempts before a download is parked for staff (WeChat keeps the file three days; the pauses below span ~1 day)
MAX_ATTEMPTS = 8
#: how long one attempt holds a row against other workers
LEASE = timedelta(minutes=5)
BATCH = 20
KIND_LABEL = {"image": "图片", "voice": "语音"}
SOURCE_LABEL = {"chat": "居民在微信发送的", "volunteer": "志愿者上传的"}


class MediaError(Exception):
    """An upload that cannot be kept (too large, not an image); the message is for the person who sent it."""


@dataclass(slots=True)
class MediaDeps:
    """What downloading needs, handed down by the app factory (no aiohttp in this package)."""

    sessions: Sessions
    storage: Storage
    wechat: Any  # bot.delivery.wechat_api.WeChatAPI
    settings: Settings
    clock: Callable[[], datetime]
    tasks: set[asyncio.Task[Any]]

    def limit(self, kind: str) -> int:
        s = self.settings
        return s.media_max_voice_bytes if kind == "voice" else s.media_max_image_bytes


def backoff(attempts: int) -> timedelta:
    """The pause after the ``attempts``-th failed download: 1, 2, 4 … minutes, at most six hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


# ------------------------------------------------------------------ intake
class Recorded(Protocol):
    """A recorded delivery as ``keep`` reads it (an ``InboundMessage`` row or the webhook's own record of it)."""

    @property
    def id(self) -> int | None: ...
    @property
    def openid(self) -> str: ...
    @property
    def msg_type(self) -> str: ...
    @property
    def media(self) -> dict[str, Any]: ...


async def keep(session: AsyncSession, inbound: Recorded, *, now: datetime, deps: MediaDeps | None) -> None:
    """Register the media of a recorded delivery (in its transaction); the download starts after the commit."""
    kind = EXPECTED.get(inbound.msg_type)
    media_id = str((inbound.media or {}).get("media_id") or "").strip()
    if kind is None or not media_id:
        return
    task = None
    if kind == "image":
        try:
            async with session.begin_nested():  # a failed lookup must never cost the message itself
                task = await volunteer_task(session, openid=inbound.openid)
        except Exception:
            log.exception(
                "media: looking up the sender's volunteer task failed; the photo stays with the message"
            )
    session.add(
        StoredMedia(
            inbound_id=inbound.id,
            case_id=task.id if task is not None else None,
            source="chat" if task is None else "volunteer",
            kind=kind,
            wechat_media_id=media_id[:128],
            status="pending",
            next_attempt_at=now,
            created_at=now,
        )
    )
    if deps is not None:
        sa_event.listen(session.sync_session, "after_commit", lambda _s: _start(deps), once=True)


async def volunteer_task(session: AsyncSession, *, openid: str) -> Case | None:
    """The case of the one task the volunteer bound to ``openid`` is working on (an accepted or delivered offer of
    an active pool resource, the case still open) — a photo they send in chat is that task's completion photo.
    None when the sender has an open case of their own (the photo belongs to it), no task or several."""
    tasks = await volunteer_tasks(session, openid=openid, limit=2)
    return tasks[0] if len(tasks) == 1 else None


async def volunteer_tasks(session: AsyncSession, *, openid: str, limit: int) -> list[Case]:
    """Up to ``limit`` open tasks of the volunteer bound to ``openid`` (oldest case first); none when the sender has
    an open case of their own."""
    own = (
        select(col(Case.id))
        .join(Resident, col(Resident.id) == col(Case.resident_id))
        .where(col(Resident.openid) == openid, col(Case.status).in_(sorted(OPEN_STATES)))
        .limit(1)
    )
    if (await session.exec(own)).first() is not None:  # type: ignore[call-overload]
        return []
    tasks = (
        (
            await session.exec(  # type: ignore[call-overload]
                select(Case)
                .join(Offer, col(Offer.case_id) == col(Case.id))
                .join(Resource, col(Resource.id) == col(Offer.resource_id))
                .where(
                    col(Resource.openid) == openid,
                    col(Resource.active),
                    col(Offer.status).in_(("accepted", "delivered")),
                    col(Case.status).in_(sorted(OPEN_STATES)),
                )
                .order_by(col(Case.id))
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    return list(tasks)


def _start(deps: MediaDeps) -> None:
    try:
        task = asyncio.get_running_loop().create_task(_fetch_logged(deps), name="media-fetch")
    except RuntimeError:  # no loop (a synchronous caller): the scheduler's sweep fetches it
        return
    deps.tasks.add(task)
    task.add_done_callback(deps.tasks.discard)


async def _fetch_logged(deps: MediaDeps) -> None:
    try:
        await fetch_due(deps)
    except Exception:  # the sweep tries again; a background task must never raise unseen
        log.exception("media: fetching after a delivery failed; the sweep retries")


# ------------------------------------------------------------------ the sweep
async def fetch_due(deps: MediaDeps, *, now: datetime | None = None) -> Counter[str]:
    """Download every pending file that is due (at most ``BATCH``), then write the events still missing."""
    now = now or deps.clock()
    outcomes: Counter[str] = Counter()
    async with deps.sessions() as session:
        due = (
            await session.exec(  # type: ignore[call-overload]
                select(col(StoredMedia.id))
                .where(col(StoredMedia.status) == "pending", col(StoredMedia.next_attempt_at) <= now)
                .order_by(col(StoredMedia.next_attempt_at))
                .limit(BATCH)
            )
        ).all()
    for (media_id,) in due:
        outcomes[await _fetch_one(deps, int(media_id), now)] += 1
    outcomes["recorded"] += await record_pending_events(deps.sessions, now=now)
    outcomes["deleted"] += await purge_erased(deps)
    if due:
        log.info("media: %s", dict(outcomes))
    return outcomes


#: seconds between two runs of the sweep in a web process (rows also wait their own backoff)
SWEEP_SECONDS = 60.0


async def sweep_forever(deps: MediaDeps, *, every: float = SWEEP_SECONDS) -> None:
    """The periodic sweep of a process (each row is claimed, so every worker may run it); cancelled at shutdown."""
    while True:
        await _fetch_logged(deps)
        await asyncio.sleep(every)


async def _claim(deps: MediaDeps, media_id: int, now: datetime) -> StoredMedia | None:
    async with transaction(deps.sessions) as session:
        claimed = await session.exec(
            update(StoredMedia)
            .where(
                col(StoredMedia.id) == media_id,
                col(StoredMedia.status) == "pending",
                col(StoredMedia.next_attempt_at) <= now,
            )
            .values(next_attempt_at=now + LEASE, attempts=col(StoredMedia.attempts) + 1)
        )
        if claimed.rowcount != 1:  # another worker has it
            return None
        return await session.get(StoredMedia, media_id)


async def _fetch_one(deps: MediaDeps, media_id: int, now: datetime) -> str:
    row = await _claim(deps, media_id, now)
    if row is None:
        return "taken"
    limit = deps.limit(row.kind)
    try:
        data, declared = await deps.wechat.get_media(row.wechat_media_id or "", max_bytes=limit)
    except MediaTooLarge as exc:
        return await _finish(
            deps, media_id, status="rejected", error=f"文件过大（{exc.size} 字节，上限 {limit}）"
        )
    except WeChatError as exc:
        if exc.errcode == 40007:
            return await _finish(
                deps, media_id, status="parked", error="微信已不再提供此文件（超过三天或编号无效）"
            )
        return await _retry(deps, row, now, f"微信：{exc.short()}"[:200])
    found = sniff(data)
    if found is None or found.kind != row.kind:
        what = found.content_type if found else f"文件头 {data[:8].hex()}"
        log.warning("media %s: WeChat declared %r, the bytes are %s; rejected", media_id, declared, what)
        return await _finish(deps, media_id, status="rejected", error=f"不是{KIND_LABEL[row.kind]}（{what}）")
    try:
        key = await _put(deps.storage, row, data, found, now)
    except StorageError as exc:
        return await _retry(deps, row, now, f"存储：{exc}"[:200])
    return await _finish(deps, media_id, status="stored", stored=(key, found, data), now=now)


async def _put(storage: Storage, row: StoredMedia, data: bytes, found: FileType, now: datetime) -> str:
    digest = hashlib.sha256(data).hexdigest()
    key = f"{now:%Y/%m}/{digest[:2]}/{row.id}-{digest[:24]}.{found.extension}"
    await storage.put(key, data, found.content_type)
    return key


async def _retry(deps: MediaDeps, row: StoredMedia, now: datetime, error: str) -> str:
    if row.attempts >= MAX_ATTEMPTS:
        return await _finish(deps, row.id or 0, status="parked", error=f"多次下载失败：{error}"[:200])
    async with transaction(deps.sessions) as session:
        await session.exec(
            update(StoredMedia)
            .where(col(StoredMedia.id) == row.id)
            .values(next_attempt_at=now + backoff(row.attempts), last_error=error)
        )
    return "retry"


async def _finish(
    deps: MediaDeps,
    media_id: int,
    *,
    status: str,
    error: str | None = None,
    stored: tuple[str, FileType, bytes] | None = None,
    now: datetime | None = None,
) -> str:
    values: dict[str, Any] = {"status": status, "last_error": error, "next_attempt_at": None}
    if stored is not None:
        key, found, data = stored
        values |= {
            "storage_key": key,
            "content_type": found.content_type,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "stored_at": now,
        }
    async with transaction(deps.sessions) as session:
        await session.exec(update(StoredMedia).where(col(StoredMedia.id) == media_id).values(**values))
    return status


# ------------------------------------------------------------------ the timeline
def _event(session: AsyncSession, row: StoredMedia, case: Case, *, now: datetime, actor: Actor) -> None:
    what = KIND_LABEL.get(row.kind, "文件")
    event = record_event(
        session,
        case=case,
        kind="photo" if row.kind == "image" else "note",
        actor=actor,
        at=now,
        note=f"{SOURCE_LABEL.get(row.source, '')}{what}已存档",
        data={
            "media": row.id,
            "content_type": row.content_type,
            "size": row.size,
            "sha256": row.sha256,
        },
    )
    session.info.setdefault("media_events", []).append((row, event))


async def record_pending_events(sessions: Sessions, *, now: datetime) -> int:
    """A timeline event for each stored chat file whose case is known now and that has none yet."""
    async with transaction(sessions) as session:
        rows = (
            await session.exec(  # type: ignore[call-overload]
                select(StoredMedia, col(InboundMessage.case_id), col(InboundMessage.openid))
                .join(InboundMessage, col(InboundMessage.id) == col(StoredMedia.inbound_id))
                .where(
                    col(StoredMedia.status) == "stored",
                    col(StoredMedia.event_id).is_(None),
                    or_(col(StoredMedia.case_id).is_not(None), col(InboundMessage.case_id).is_not(None)),
                )
                .limit(BATCH)
            )
        ).all()
        written = []
        for row, message_case_id, openid in rows:
            case = await session.get(Case, row.case_id or message_case_id)
            if case is None:
                continue
            row.case_id = case.id
            actor = Actor("resident", case.resident_id, "居民")
            if row.source == "volunteer":
                resource = (
                    await session.exec(select(Resource).where(col(Resource.openid) == openid))  # type: ignore[call-overload]
                ).scalar_one_or_none()
                name = resource.name[:64] if resource is not None else "志愿者"
                actor = Actor("volunteer", resource.id if resource is not None else None, name)
            _event(session, row, case, now=now, actor=actor)
            written.append(row)
        await session.flush()
        for row, event in session.info.pop("media_events", []):
            row.event_id = event.id
    return len(written)


# ------------------------------------------------------------------ erasure
async def purge_erased(deps: MediaDeps) -> int:
    """Delete the stored files of erased personal data: of cases anonymised (a resident's request, a written
    request, the retention sweep: their description is the erased marker) and of chat messages whose sender was
    erased (a draft's photo that never became a case). The row stays, marked deleted, with its SHA-256, so the
    timeline event that pointed at the file still verifies."""
    erased_cases = select(col(Case.id)).where(col(Case.description) == ERASED_NOTE)
    erased_messages = select(col(InboundMessage.id)).where(
        col(InboundMessage.openid).startswith(ERASED_OPENID)
    )
    async with deps.sessions() as session:
        rows = (
            await session.exec(  # type: ignore[call-overload]
                select(col(StoredMedia.id), col(StoredMedia.storage_key))
                .where(
                    col(StoredMedia.status).in_(("stored", "pending", "parked", "rejected")),
                    or_(
                        col(StoredMedia.case_id).in_(erased_cases),
                        col(StoredMedia.inbound_id).in_(
                            select(col(InboundMessage.id)).where(
                                col(InboundMessage.case_id).in_(erased_cases)
                            )
                        ),
                        col(StoredMedia.inbound_id).in_(erased_messages),
                    ),
                )
                .limit(BATCH)
            )
        ).all()
    done = 0
    for media_id, key in rows:
        if key:
            try:
                await deps.storage.delete(key)
            except StorageError as exc:  # tried again on the next sweep
                log.warning("media %s: could not delete the erased file (%s)", media_id, exc)
                continue
        async with transaction(deps.sessions) as session:
            await session.exec(
                update(StoredMedia)
                .where(col(StoredMedia.id) == media_id)
                .values(status="deleted", storage_key=None, wechat_media_id=None, next_attempt_at=None)
            )
        done += 1
    return done


# ------------------------------------------------------------------ uploads (volunteers)
async def store_upload(
    session: AsyncSession,
    *,
    storage: Storage,
    settings: Settings,
    case: Case,
    data: bytes,
    source: str,
    actor: Actor,
    now: datetime,
) -> StoredMedia:
    """A photo uploaded through a page: checked by its bytes, stored, and pointed at by the case's timeline."""
    if not data:
        raise MediaError("没有收到照片，请重新选择")
    if len(data) > settings.media_max_image_bytes:
        raise MediaError(f"照片太大（上限 {settings.media_max_image_bytes // (1024 * 1024)} MB），请换一张")
    found = sniff(data)
    if found is None or found.kind != "image":
        raise MediaError("只能上传照片（JPG、PNG、GIF 或 WebP）")
    row = StoredMedia(case_id=case.id, source=source, kind="image", status="pending", created_at=now)
    session.add(row)
    await session.flush()
    try:
        key = await _put(storage, row, data, found, now)
    except StorageError as exc:
        log.error("media: an upload could not be stored (%s)", exc)
        raise MediaError("照片暂时保存不了，请稍后再试") from exc
    row.status, row.storage_key, row.content_type = "stored", key, found.content_type
    row.size, row.sha256, row.stored_at = len(data), hashlib.sha256(data).hexdigest(), now
    _event(session, row, case, now=now, actor=actor)
    await session.flush()
    for stored, event in session.info.pop("media_events", []):
        stored.event_id = event.id
    return row


# ------------------------------------------------------------------ reading
async def case_media(session: AsyncSession, *, case_id: int) -> list[StoredMedia]:
    """The files of a case: linked directly, or through the chat messages that became part of it."""
    linked = select(col(InboundMessage.id)).where(col(InboundMessage.case_id) == case_id)
    rows = await session.exec(  # type: ignore[call-overload]
        select(StoredMedia)
        .where(or_(col(StoredMedia.case_id) == case_id, col(StoredMedia.inbound_id).in_(linked)))
        .order_by(col(StoredMedia.created_at), col(StoredMedia.id))
    )
    return list(rows.scalars().all())


async def media_case(session: AsyncSession, media_id: int) -> tuple[StoredMedia, Case] | None:
    """A stored file and the case it belongs to (None when either is missing)."""
    row = await session.get(StoredMedia, media_id)
    if row is None:
        return None
    case_id = row.case_id
    if case_id is None and row.inbound_id is not None:
        inbound = await session.get(InboundMessage, row.inbound_id)
        case_id = inbound.case_id if inbound is not None else None
    case = await session.get(Case, case_id) if case_id is not None else None
    return (row, case) if case is not None else None


async def open_media(storage: Storage, row: StoredMedia) -> bytes | None:
    """The stored bytes, or None when the row holds none (pending, rejected, deleted) or the object is gone."""
    if row.status != "stored" or not row.storage_key:
        return None
    try:
        return await storage.get(row.storage_key)
    except MissingObject:
        log.warning("media %s: the object %s is missing from the store", row.id, row.storage_key)
        return None
