"""A donor binds WeChat by scanning the one-time QR code the sign-up page shows, through the real app and the WeChat
simulator over HTTP: the page carries the temporary code (QR_STR_SCENE, scene ``b:<code>``, as long as the code)
drawn by the app beside the typed code; a scan binds exactly once, a used or expired code is answered kindly with how
to get a new one, WeChat itself refuses an expired QR code, and a WeChat failure leaves the typed code alone."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import qrcode
from PIL import Image
from sqlmodel import select

from bot import keys
from bot.models import InboundMessage, Resource
from bot.pool.bindqr import EXPIRED
from tests.helpers import System, csrf, running_system
from wechat_sim.qrcodes import SIM_QRCODES

SIGNUP = {
    "kind": "individual",
    "name": "厚街热心街坊",
    "contact": "陈姐",
    "phone": "13700004321",
    "town": "厚街镇",
    "categories": "生活物资",
    "items": "大米",
    "capacity": "2",
    "max_fund": "0",
}
CODE = re.compile(r'id="bind-code"><b>志愿者绑定 (\d{6})</b>')
IMG = re.compile(r'<img id="bind-qr" src="([^"]+)"')


@pytest.fixture
async def system(db_url: str, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(db_url, tmp_path) as s:
        yield s


async def _sign_up(system: System, name: str, phone: str) -> tuple[str, str | None, str]:
    """(the typed code, the QR image's src or None, the page)."""
    async with aiohttp.ClientSession(
        base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as web:
        token = await csrf(web, "/donate")
        async with web.post(
            "/donate", data={**SIGNUP, "name": name, "phone": phone, "csrf_token": token}
        ) as resp:
            page = await resp.text()
            assert resp.status == 200, page
    code = CODE.search(page)
    assert code, page
    img = IMG.search(page)
    return code.group(1), img.group(1) if img else None, page


async def _codes(system: System) -> dict[str, Any]:
    async with system.http.get(f"{system.sim_url}/_sim/qrcodes") as resp:
        return {c["scene"]: c for c in await resp.json()}


async def _scan(system: System, openid: str, ticket: str) -> tuple[int, dict[str, Any]]:
    async with system.http.post(
        f"{system.sim_url}/_sim/scan", json={"openid": openid, "ticket": ticket}
    ) as resp:
        return resp.status, await resp.json()


async def _resource(system: System, name: str) -> Resource:
    async with system.app[keys.SESSIONS]() as db:
        return (await db.exec(select(Resource).where(Resource.name == name))).one()


async def test_scanning_the_sign_up_qr_code_binds_once(system: System) -> None:
    code, src, page = await _sign_up(system, "厚街热心街坊", "13700004321")
    assert src is not None and src.startswith("data:image/png;base64,"), page
    assert "http" not in src and "weixin.qq.com" not in page  # drawn by the app: no outside host in the page
    made = (await _codes(system))[f"b:{code}"]
    assert made["permanent"] is False
    lasts = system.sim_app[SIM_QRCODES][made["ticket"]].expires_at
    assert lasts is not None and 86_400 - 30 < lasts - time.time() <= 86_400  # as long as the code's 24 hours
    assert system.sim.calls["qrcode"] == 1
    # the image is the code WeChat made: the same modules as the ticket's url drawn afresh
    shown = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    fresh = qrcode.make(made["url"], box_size=6, border=2).get_image()
    assert shown.size == fresh.size and shown.convert("1").tobytes() == fresh.convert("1").tobytes()

    # a new follower scans it: subscribe with qrscene_b:<code> over HTTP to the webhook, bound as by the code
    openid = "o-donor-qr-1"
    status, scanned = await _scan(system, openid, made["ticket"])
    assert status == 200 and scanned["event"] == "subscribe" and scanned["event_key"] == f"qrscene_b:{code}"
    assert scanned["reply"].startswith("绑定成功！厚街热心街坊"), scanned
    res = await _resource(system, "厚街热心街坊")
    assert res.openid == openid and res.bind_code is None

    # once: the same donor scanning again is told it is done; someone else's scan binds nothing
    await asyncio.sleep(1.1)  # events are deduplicated by sender + CreateTime (seconds)
    status, again = await _scan(system, openid, made["ticket"])
    assert again["event"] == "SCAN" and "已经绑定了「厚街热心街坊」" in again["reply"], again
    status, other = await _scan(system, "o-someone-else", made["ticket"])
    assert other["reply"] == EXPIRED
    assert (await _resource(system, "厚街热心街坊")).openid == openid

    # the typed code is used up too
    typed = await system.user("o-someone-else-2").send_text(f"志愿者绑定 {code}")
    assert "不正确或已过期" in typed.text


async def test_an_expired_code_is_answered_kindly_and_wechat_refuses_an_expired_qr(system: System) -> None:
    code, src, _ = await _sign_up(system, "虎门爱心车队", "13700004322")
    assert src is not None
    made = (await _codes(system))[f"b:{code}"]

    system.clock.advance(hours=26)  # past the code's 24 hours on the bot's clock; the QR code still scans
    status, scanned = await _scan(system, "o-donor-late", made["ticket"])
    assert status == 200 and scanned["reply"] == EXPIRED
    assert "重新生成绑定码" in EXPIRED and "报名信息不用重填" in EXPIRED
    assert (await _resource(system, "虎门爱心车队")).openid is None

    # WeChat refuses a scan of an expired temporary code: the phone is told, nothing reaches the account
    async with system.http.post(
        f"{system.sim_url}/_sim/qrcodes/expire", json={"ticket": made["ticket"]}
    ) as resp:
        assert resp.status == 200
    status, refused = await _scan(system, "o-donor-later", made["ticket"])
    assert status == 410 and refused["expired"] is True and refused["reply"] is None
    async with system.app[keys.SESSIONS]() as db:
        seen = (await db.exec(select(InboundMessage).where(InboundMessage.openid == "o-donor-later"))).all()
    assert seen == []


async def test_without_wechat_the_page_keeps_the_typed_code(system: System) -> None:
    async with system.http.post(
        f"{system.sim_url}/_sim/faults", json={"endpoint": "qrcode", "errcode": -1, "times": 5}
    ) as resp:
        assert resp.status == 201
    code, src, page = await _sign_up(system, "长安义工", "13700004323")
    assert src is None and "<img" not in page.split('id="bind-wechat"')[1].split("</section>")[0]
    assert f"志愿者绑定 {code}" in page
