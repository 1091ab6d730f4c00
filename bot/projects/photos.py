"""Photos of a micro-project (site visit, stages, acceptance): checked, re-encoded and kept in the media storage
(``bot.media.storage``: a local folder or an S3-compatible store), so every web worker and machine sees the same
photos.

Only JPEG, PNG and WebP images up to ``MAX_BYTES`` and ``MAX_PIXELS`` are accepted, whatever the browser claims:
Pillow must recognise the bytes as one of those formats. Each photo is re-encoded as JPEG, which drops its
metadata (EXIF holds the phone's GPS position and model, which could point at a resident's home). The stored
name is the SHA-256 of the re-encoded bytes (40 hex digits), so a name can be checked with one pattern and never
names a path; its storage key is ``projects/<first two digits>/<name>``.

Who may see a photo is decided by where the project holds it (``visibility``): a stage or acceptance photo of a
project on the public pages (approved or later) is public; any other (a site visit's, or one of a project not yet
published) only to staff of the project's town and the city."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from PIL import Image, UnidentifiedImageError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.media.storage import MissingObject, Storage, StorageError
from bot.projects.tables import Project, ProjectStage

log = logging.getLogger(__name__)
MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
MAX_PER_UPLOAD = 6
FORMATS = {"JPEG", "PNG", "WEBP"}
CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp"}
NAME = re.compile(r"[0-9a-f]{40}\.jpg")
#: statuses whose project page is public (as ``bot.projects.service.APPROVED``)
PUBLISHED = ("approved", "in_progress", "accepted")


class PhotoError(ValueError):
    """A file that is not accepted, with a message staff can read."""


def storage_key(name: str) -> str:
    return f"projects/{name[:2]}/{name}"


def legacy_dir(data_dir: Path) -> Path:
    """Where photos were written before they went to the media storage (read only, for photos stored then)."""
    return data_dir / "project_photos"


def encode(data: bytes, *, content_type: str, filename: str) -> tuple[str, bytes]:
    """Checks one upload and re-encodes it; returns its name (``<40 hex>.jpg``) and the JPEG bytes."""
    label = (filename or "照片")[:40]
    if not data:
        raise PhotoError(f"{label}：文件是空的")
    if len(data) > MAX_BYTES:
        raise PhotoError(f"{label}：照片不能超过{MAX_BYTES // (1024 * 1024)}MB")
    if content_type not in CONTENT_TYPES:
        raise PhotoError(f"{label}：只接受JPG、PNG或WebP照片")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in FORMATS:
                raise PhotoError(f"{label}：只接受JPG、PNG或WebP照片")
            probe.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = img.convert("RGB")
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PhotoError(f"{label}：不是有效的图片文件") from None
    rgb.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=85)
    body = out.getvalue()
    return hashlib.sha256(body).hexdigest()[:40] + ".jpg", body


async def check_and_store(data: bytes, *, content_type: str, filename: str, storage: Storage) -> str:
    """Checks one upload (in a worker thread: decoding is CPU work) and puts it in the storage; returns its name."""
    name, body = await asyncio.to_thread(encode, data, content_type=content_type, filename=filename)
    try:
        await storage.put(storage_key(name), body, "image/jpeg")
    except StorageError as exc:
        log.error("project photo %s could not be stored (%s)", name, exc)
        raise PhotoError("照片暂时保存不了，请稍后再试") from exc
    return name


async def read_photo(name: str, *, storage: Storage, data_dir: Path) -> bytes | None:
    """The bytes of a stored photo, or None for a name that is not one or a photo that is gone. A photo written
    to the data folder before the media storage took them is still read from there."""
    if not NAME.fullmatch(name or ""):
        return None
    try:
        return await storage.get(storage_key(name))
    except MissingObject:
        pass
    except StorageError as exc:
        log.warning("project photo %s: the store did not answer (%s)", name, exc)
        return None
    old = legacy_dir(data_dir) / name
    return await asyncio.to_thread(old.read_bytes) if old.is_file() else None


@dataclass(frozen=True, slots=True)
class Visibility:
    """Who may see a photo: everyone (``public``), and staff of these towns (city roles: every town)."""

    public: bool
    towns: frozenset[str]


def _holds(column: object, name: str) -> sa.ColumnElement[bool]:
    # the JSON list as text: a name is 40 hex digits and '.jpg', with no LIKE wildcard in it
    return sa.cast(column, sa.Text).like(f'%"{name}"%')


async def visibility(session: AsyncSession, name: str) -> Visibility | None:
    """Where the projects hold this photo; None when none does (an unknown name, or one never attached)."""
    if not NAME.fullmatch(name or ""):
        return None
    public, towns = False, set()
    held = await session.exec(
        select(Project).where(
            sa.or_(_holds(Project.visit_photos, name), _holds(Project.acceptance_photos, name))
        )
    )
    for p in held.all():
        towns.add(p.town)
        public |= p.status in PUBLISHED and name in p.acceptance_photos
    staged = await session.exec(
        select(Project)
        .join(ProjectStage, col(ProjectStage.project_id) == col(Project.id))
        .where(_holds(ProjectStage.photos, name))
    )
    for p in staged.all():
        towns.add(p.town)
        public |= p.status in PUBLISHED
    return Visibility(public=public, towns=frozenset(towns)) if towns else None
