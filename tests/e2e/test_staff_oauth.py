"""Staff sign-in with WeChat OAuth, against the WeChat simulator over real HTTP: /staff/oauth/start → the
simulator's authorize page → /staff/oauth/callback?code= → the queue; an unbound openid binds with a one-time code;
forged, reused and state-less codes are refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sqlmodel import select
from yarl import URL

from bot import keys
from bot.cases.access import create_staff
from bot.db import migrate, transaction
from bot.models import AuditLog, Staff
from tests.factories import PASSWORD, TOWN
from tests.helpers import (
    NOWHERE,
    bound_socket,
    build_app,
    csrf,
    make_settings,
    port_of,
    sign_in,
    start_system,
    stop_system,
)


@pytest.fixture
async def live(db_url: str, tmp_path: Path) -> AsyncIterator:
    sim_sock, bot_sock = bound_socket(), bound_socket()
    settings = make_settings(
        db_url,
        tmp_path,
        rasa_url=NOWHERE,
        sim_port=port_of(sim_sock),
        base_url=f"http://127.0.0.1:{port_of(bot_sock)}",
    )
    system = await start_system(settings, sim_sock=sim_sock, bot_sock=bot_sock)
    yield system
    await stop_system(system)


def browser(system) -> aiohttp.ClientSession:
    """A phone's WeChat browser: its own cookies (loopback addresses allowed)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _staff(system, username: str, *, openid: str | None = None, active: bool = True) -> int:
    async with transaction(system.app[keys.SESSIONS]) as db:
        s = await create_staff(
            db, username=username, password=PASSWORD, role="town_staff", town=TOWN, display_name=username
        )
        s.openid = openid
        s.active = active
        await db.flush()
        return int(s.id)


async def _authorize(system, web: aiohttp.ClientSession, openid: str, *, next_: str | None = None) -> URL:
    """Start the sign-in and let the simulator's authorize page send us back: the callback URL with its code."""
    start = URL(f"{system.bot_url}/staff/oauth/start")
    if next_:
        start = start.with_query(next=next_)
    resp = await web.get(start, allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert str(location).startswith(f"{system.sim_url}/connect/oauth2/authorize?")
    assert location.fragment == "wechat_redirect"
    assert location.query["redirect_uri"] == f"{system.bot_url}/staff/oauth/callback"
    assert (
        location.query["scope"] == "snsapi_base" and location.query["appid"] == system.settings.wechat_appid
    )
    resp = await web.get(location.with_fragment(None).update_query(sim_openid=openid), allow_redirects=False)
    assert resp.status == 302
    callback = URL(resp.headers["Location"])
    assert str(callback).startswith(f"{system.bot_url}/staff/oauth/callback?")
    assert callback.query["state"] == location.query["state"] and callback.query["code"]
    return callback


async def test_bound_openid_signs_in_to_the_queue(live):
    await _staff(live, "hj1", openid="o-staff-hj1-0001")
    async with browser(live) as web:
        assert (await web.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302
        callback = await _authorize(live, web, "o-staff-hj1-0001")
        resp = await web.get(callback, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/staff/cases"
        page = await (await web.get(f"{live.bot_url}/staff/cases")).text()
        assert "诉求队列" in page and "厚街镇" in page
    async with live.app[keys.SESSIONS]() as db:
        log = (await db.exec(select(AuditLog).where(AuditLog.action == "login"))).one()
        assert log.detail == "微信登录"
    assert live.sim.calls["oauth"] == 1  # one code exchange, at the simulator


async def test_sign_in_returns_to_the_page_asked_for(live):
    await _staff(live, "hj1", openid="o-staff-hj1-0001")
    async with browser(live) as web:
        callback = await _authorize(live, web, "o-staff-hj1-0001", next_="/staff/account")
        resp = await web.get(callback, allow_redirects=False)
        assert resp.headers["Location"] == "/staff/account"
        # an off-site "next" is not followed
    async with browser(live) as web:
        callback = await _authorize(live, web, "o-staff-hj1-0001", next_="//evil.example/x")
        resp = await web.get(callback, allow_redirects=False)
        assert resp.headers["Location"] == "/staff/cases"


async def test_unbound_openid_binds_with_a_one_time_code(live):
    staff_id = await _staff(live, "hj1")
    desktop = aiohttp.ClientSession(base_url=live.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with desktop as desk:  # on the desktop: password sign-in, then the binding code
        assert (await sign_in(desk, "hj1")).status == 302
        token = await csrf(desk, "/staff/account")
        page = await (await desk.post("/staff/account/bind-code", data={"csrf_token": token})).text()
        code = re.search(r'id="bind-code">(\d{8})<', page).group(1)

    async with browser(live) as phone:
        callback = await _authorize(live, phone, "o-phone-hj1-00001")
        resp = await phone.get(callback, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/staff/oauth/bind"
        page = await (await phone.get(f"{live.bot_url}/staff/oauth/bind")).text()
        assert "这个微信还没有绑定工作账号" in page
        assert (await phone.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        resp = await phone.post(
            f"{live.bot_url}/staff/oauth/bind",
            data={"csrf_token": token, "code": code},
            allow_redirects=False,
        )
        assert resp.status == 302 and resp.headers["Location"] == "/staff/cases"
        page = await (await phone.get(f"{live.bot_url}/staff/cases")).text()
        assert "微信已绑定" in page and "诉求队列" in page
    async with live.app[keys.SESSIONS]() as db:
        assert (await db.get(Staff, staff_id)).openid == "o-phone-hj1-00001"

    # the same code cannot bind a second WeChat account
    async with browser(live) as intruder:
        callback = await _authorize(live, intruder, "o-intruder-000001")
        await intruder.get(callback, allow_redirects=False)
        page = await (await intruder.get(f"{live.bot_url}/staff/oauth/bind")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        resp = await intruder.post(
            f"{live.bot_url}/staff/oauth/bind",
            data={"csrf_token": token, "code": code},
            allow_redirects=False,
        )
        assert resp.status == 400 and "绑定码不正确或已过期" in await resp.text()
        assert (await intruder.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302
    async with live.app[keys.SESSIONS]() as db:
        assert (await db.get(Staff, staff_id)).openid == "o-phone-hj1-00001"
        assert (await db.exec(select(Staff).where(Staff.openid == "o-intruder-000001"))).first() is None

    # from now on the bound WeChat signs in directly
    async with browser(live) as phone:
        callback = await _authorize(live, phone, "o-phone-hj1-00001")
        resp = await phone.get(callback, allow_redirects=False)
        assert resp.headers["Location"] == "/staff/cases"


async def test_bind_page_without_oauth_goes_tosign_in(live):
    async with browser(live) as web:
        resp = await web.get(f"{live.bot_url}/staff/oauth/bind", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/staff/login"


async def test_bind_attempts_are_limited(live):
    staff_id = await _staff(live, "hj1")
    async with browser(live) as phone:
        callback = await _authorize(live, phone, "o-guess-0000001")
        await phone.get(callback, allow_redirects=False)
        page = await (await phone.get(f"{live.bot_url}/staff/oauth/bind")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        statuses = []
        for guess in range(6):
            resp = await phone.post(
                f"{live.bot_url}/staff/oauth/bind",
                data={"csrf_token": token, "code": f"{guess:08d}"},
                allow_redirects=False,
            )
            statuses.append(resp.status)
        assert statuses == [400] * 5 + [429]
    async with live.app[keys.SESSIONS]() as db:
        assert (await db.get(Staff, staff_id)).openid is None


async def test_forged_code_is_refused(live):
    await _staff(live, "hj1", openid="o-staff-hj1-0001")
    async with browser(live) as web:
        resp = await web.get(f"{live.bot_url}/staff/oauth/start", allow_redirects=False)
        state = URL(resp.headers["Location"]).query["state"]
        resp = await web.get(
            f"{live.bot_url}/staff/oauth/callback",
            params={"code": "0123456789abcdef0123456789abcdef", "state": state},
        )
        assert resp.status == 400 and "微信授权已失效" in await resp.text()
        assert (await web.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302


async def test_used_code_is_refused(live):
    await _staff(live, "hj1", openid="o-staff-hj1-0001")
    async with browser(live) as web:
        callback = await _authorize(live, web, "o-staff-hj1-0001")
        assert (await web.get(callback, allow_redirects=False)).headers["Location"] == "/staff/cases"
    async with browser(live) as thief:  # someone replays the code seen in the URL, with a state of their own
        resp = await thief.get(f"{live.bot_url}/staff/oauth/start", allow_redirects=False)
        state = URL(resp.headers["Location"]).query["state"]
        resp = await thief.get(callback.update_query(state=state), allow_redirects=False)
        assert resp.status == 400 and "微信授权已失效" in await resp.text()
        assert (await thief.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302
    assert live.sim.calls["oauth"] == 2


async def test_callback_without_our_state_is_refused_before_any_exchange(live):
    await _staff(live, "hj1", openid="o-staff-hj1-0001")
    code = live.sim.new_oauth_code(
        "o-staff-hj1-0001"
    )  # a valid code, but this browser never started a sign-in
    async with browser(live) as web:
        resp = await web.get(f"{live.bot_url}/staff/oauth/callback", params={"code": code, "state": "x"})
        assert resp.status == 400 and "微信授权已失效" in await resp.text()
        # started, but the state in the callback is not ours
        await web.get(f"{live.bot_url}/staff/oauth/start", allow_redirects=False)
        resp = await web.get(f"{live.bot_url}/staff/oauth/callback", params={"code": code, "state": "forged"})
        assert resp.status == 400
        assert (await web.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302
    assert live.sim.calls["oauth"] == 0


async def test_deactivated_account_cannot_sign_in_with_wechat(live):
    await _staff(live, "gone", openid="o-staff-gone-001", active=False)
    async with browser(live) as web:
        callback = await _authorize(live, web, "o-staff-gone-001")
        resp = await web.get(callback, allow_redirects=False)
        assert resp.headers["Location"] == "/staff/oauth/bind"
        assert (await web.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302


async def test_wechat_busy_is_a_temporary_error(live):
    await _staff(live, "hj1", openid="o-staff-hj1-0001")
    live.sim.add_fault("oauth", -1)
    async with browser(live) as web:
        callback = await _authorize(live, web, "o-staff-hj1-0001")
        resp = await web.get(callback, allow_redirects=False)
        assert resp.status == 502 and "微信系统繁忙" in await resp.text()
        assert (await web.get(f"{live.bot_url}/staff/cases", allow_redirects=False)).status == 302


async def test_real_wechat_authorize_page_is_on_open_weixin(tmp_path, aiohttp_client):
    """With a real AppID the authorisation page is WeChat's open.weixin.qq.com (the API host has none), and the
    callback is URL-encoded as WeChat asks."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'o.sqlite3'}"
    await migrate(url)
    client = await aiohttp_client(build_app(url, api_base="https://api.weixin.qq.com"))
    resp = await client.get("/staff/oauth/start", allow_redirects=False)
    location = resp.headers["Location"]
    assert location.startswith("https://open.weixin.qq.com/connect/oauth2/authorize?appid=")
    assert location.endswith("#wechat_redirect")
    query = urlsplit(location).query
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fstaff%2Foauth%2Fcallback&" in query
    keys_in_order = [part.split("=")[0] for part in query.split("&")]
    assert keys_in_order == ["appid", "redirect_uri", "response_type", "scope", "state"]
    assert parse_qs(query)["scope"] == ["snsapi_base"]
