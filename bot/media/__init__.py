"""Media kept in the project's own storage (档案留存): images and voice that residents send in chat, downloaded from
WeChat (whose media ids expire after three days) with size limits and type checks by magic bytes, retried and parked
when WeChat fails, never dropped; photos volunteers upload; a storage interface with a local folder and an
S3-compatible store behind it; the timeline event that points at each stored object.

Public surface: ``keep`` (called once per recorded delivery), ``fetch_due`` (the sweep), ``store_upload``,
``case_media``, ``open_media``, ``make_storage``."""

from bot.media.archive import (
    MediaDeps,
    MediaError,
    case_media,
    fetch_due,
    keep,
    media_case,
    open_media,
    store_upload,
    sweep_forever,
)
from bot.media.storage import LocalStorage, S3Storage, Storage, StorageError, make_storage

__all__ = [
    "LocalStorage",
    "MediaDeps",
    "MediaError",
    "S3Storage",
    "Storage",
    "StorageError",
    "case_media",
    "fetch_due",
    "keep",
    "make_storage",
    "media_case",
    "open_media",
    "store_upload",
    "sweep_forever",
]
