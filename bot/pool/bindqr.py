"""Binding a donor's WeChat by scanning a one-time QR code, beside the typed ``志愿者绑定 123456``.

The sign-up page asks WeChat for a temporary QR code (``qrcode/create``, QR_STR_SCENE) whose scene is
``b:<code>`` and which lasts as long as the code; the page shows it drawn from the ``url`` WeChat answers (its docs:
the developer may draw the image from that content), so the page needs no outside host. Scanning it (``subscribe``
or ``SCAN`` with the scene) binds exactly as sending the code does, once; an expired or used code gets a kind
answer saying how to get a new one."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Resource
from bot.pool.config import PoolError
from bot.pool.volunteers import BIND_TTL, bind_volunteer

log = logging.getLogger(__name__)
SCENE_PREFIX = "b:"
#: the QR code lasts as long as the code it carries
QR_SECONDS = int(BIND_TTL.total_seconds())
EXPIRED = (
    "这个绑定二维码已经过期或已经用过了，没能绑定。\n"
    "请联系您报名时所选镇街的工作人员，请他们在资源库里为您重新生成绑定码（报名信息不用重填），"
    "收到后在这里发送“志愿者绑定 绑定码”即可。"
)


class TemporaryQr(Protocol):
    async def create_qrcode(self, scene: str, *, expire_seconds: int | None = None) -> dict[str, Any]: ...


def scene_of(code: str) -> str:
    return f"{SCENE_PREFIX}{code}"


def code_of_scene(scene: str | None) -> str | None:
    """``b:123456`` → ``123456``; any other scene → None."""
    scene = (scene or "").strip()
    return scene[len(SCENE_PREFIX) :] if scene.startswith(SCENE_PREFIX) else None


async def bind_qr_image(wechat: TemporaryQr | None, code: str) -> str | None:
    """The one-time QR code for ``code`` as a ``data:image/png`` URI, or None when WeChat cannot give one now (the
    typed code still works; a failure here never costs the sign-up)."""
    if wechat is None:
        return None
    try:
        answer = await wechat.create_qrcode(scene_of(code), expire_seconds=QR_SECONDS)
    except Exception as exc:
        log.warning(
            "no binding QR code from WeChat (%s); the page shows the typed code only", type(exc).__name__
        )
        return None
    content = str(answer.get("url") or "")
    if not content.startswith(("http://", "https://")):
        log.warning("qrcode/create answered without a url; the page shows the typed code only")
        return None
    png = await asyncio.to_thread(_draw, content)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _draw(content: str) -> bytes:
    import qrcode  # lazy: Pillow and qrcode load only when a code is drawn

    buf = io.BytesIO()
    qrcode.make(content, box_size=6, border=2).save(buf)
    return buf.getvalue()


async def bind_by_scan(session: AsyncSession, *, scene: str | None, openid: str, now: datetime) -> str | None:
    """The answer to a scan of a binding code, or None when the scene is not one."""
    code = code_of_scene(scene)
    if code is None:
        return None
    try:
        async with session.begin_nested():
            row = await bind_volunteer(session, code=code, openid=openid, now=now)
    except PoolError:
        bound = (await session.exec(select(Resource).where(col(Resource.openid) == openid).limit(1))).first()
        if bound is not None:
            return f"您的微信已经绑定了「{bound.name}」，不用再扫码。回复“我的任务”可查看您的任务。"
        return EXPIRED
    return f"绑定成功！{row.name}，以后有适合您的微心愿会在这里邀请您。回复“我的任务”可查看您的任务。"
