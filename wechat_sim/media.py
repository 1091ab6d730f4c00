"""Temporary media (what a user sends: images, voice) as WeChat serves it: ``GET /cgi-bin/media/get``, three days
after it arrived and not later; test controls under ``/_sim/media`` put a file in and delete files ("three days
have passed"). The phone page's sample pictures are small PNG files drawn here (no image library needed)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from aiohttp import web

from wechat_sim.keys import control_json, endpoint, err, state_of
from wechat_sim.state import SimState

routes = web.RouteTableDef()

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "audio/amr": "amr", "audio/speex": "speex"}
#: the phone page's sample pictures: a colour each (RGB)
SAMPLE_COLOURS = {
    "streetlight.svg": (250, 200, 40),
    "pothole.svg": (120, 110, 100),
    "wheelchair.svg": (40, 120, 200),
}


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour with a darker diagonal (so two samples never share bytes by accident)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    dark = bytes(c // 2 for c in rgb)
    rows = b"".join(
        b"\x00" + b"".join(dark if abs(x - y) < 2 else bytes(rgb) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sample_media(state: SimState, picture: str, media_id: str) -> None:
    """The phone sent one of its sample pictures: WeChat keeps it under the message's MediaId."""
    name = picture.rsplit("/", 1)[-1]
    state.add_media(png(48, 32, SAMPLE_COLOURS.get(name, (90, 160, 90))), "image/png", media_id)


@routes.get("/cgi-bin/media/get", name="media_get")
@endpoint("media", access=True)
async def media_get(request: web.Request, state: SimState, _: dict[str, Any]) -> web.Response:
    media_id = request.query.get("media_id", "")
    if not media_id:
        return err(41006)
    item = state.get_media(media_id)
    if item is None:
        return err(40007)
    ext = EXTENSIONS.get(item.content_type, "bin")
    return web.Response(
        body=item.data,
        content_type=item.content_type,
        headers={"Content-Disposition": f'attachment; filename="{media_id}.{ext}"'},
    )


@routes.post("/_sim/media", name="media_add")
async def media_add(request: web.Request) -> web.Response:
    """Keep the request body as a user's media file; the answer names its media_id (``?media_id=`` to choose)."""
    data = await request.read()
    if not data:
        raise web.HTTPBadRequest(text="empty media")
    media_id = request.query.get("media_id") or None
    item = state_of(request).add_media(data, request.content_type or "application/octet-stream", media_id)
    return web.json_response({"media_id": item.media_id, "size": len(data)}, status=201)


@routes.post("/_sim/media/expire", name="media_expire")
async def media_expire(request: web.Request) -> web.Response:
    """Three days have passed: WeChat deletes the media file named (``{"media_id": …}``), or every one."""
    body = await control_json(request)
    media_id = body.get("media_id")
    count = state_of(request).expire_media(str(media_id) if media_id else None)
    return web.json_response({"deleted": count})
