"""Photos of a micro-project (site visit, stages, acceptance): checked, re-encoded and stored under the data folder.

Only JPEG, PNG and WebP images up to ``MAX_BYTES`` and ``MAX_PIXELS`` are accepted, whatever the browser claims:
Pillow must recognise the bytes as one of those formats. Each photo is re-encoded as JPEG, which drops its
metadata (EXIF holds the phone's GPS position and model, which could point at a resident's home). The stored
name is the SHA-256 of the re-encoded bytes, so a name can be checked with one pattern and never names a path."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
MAX_PER_UPLOAD = 6
FORMATS = {"JPEG", "PNG", "WEBP"}
CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp"}
NAME = re.compile(r"[0-9a-f]{40}\.jpg")


class PhotoError(ValueError):
    """A file that is not accepted, with a message staff can read."""


def photo_dir(data_dir: Path) -> Path:
    return data_dir / "project_photos"


def check_and_store(data: bytes, *, content_type: str, filename: str, data_dir: Path) -> str:
    """Checks one upload and stores it; returns the stored name (``<sha1-ish>.jpg``)."""
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
    name = hashlib.sha256(body).hexdigest()[:40] + ".jpg"
    folder = photo_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        tmp = folder / f".{name}.part"
        tmp.write_bytes(body)
        tmp.replace(target)
    return name


def photo_path(name: str, *, data_dir: Path) -> Path | None:
    """The file of a stored photo, or None for a name that is not one (any other string)."""
    if not NAME.fullmatch(name or ""):
        return None
    path = photo_dir(data_dir) / name
    return path if path.is_file() else None
