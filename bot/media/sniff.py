"""What a file is, read from its first bytes (never from the type the sender declared), and the size allowed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileType:
    kind: str  # image | voice
    content_type: str
    extension: str


JPEG = FileType("image", "image/jpeg", "jpg")
PNG = FileType("image", "image/png", "png")
GIF = FileType("image", "image/gif", "gif")
WEBP = FileType("image", "image/webp", "webp")
AMR = FileType("voice", "audio/amr", "amr")
SILK = FileType("voice", "audio/silk", "silk")
SPEEX = FileType("voice", "audio/ogg", "ogg")
MP3 = FileType("voice", "audio/mpeg", "mp3")


def sniff(data: bytes) -> FileType | None:
    """The type of ``data`` by its magic bytes, or None (SVG, HTML, scripts, executables, anything else)."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"#!AMR\n"):
        return AMR
    if head.startswith((b"#!SILK_V3", b"\x02#!SILK_V3")):  # WeChat's own voice codec
        return SILK
    if head.startswith(b"OggS"):
        return SPEEX
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    return None


#: what arrives in chat with each WeChat message type
EXPECTED = {"image": "image", "voice": "voice"}
