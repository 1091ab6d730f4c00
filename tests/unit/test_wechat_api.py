"""The WeChat client against a small in-test fake (unit layer; the simulator tests live in test_delivery_sim.py)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.delivery.wechat_api import WeChatAPI, WeChatError, WeChatUnavailable
from tests.helpers import TEST_REDIS_URL


class _DFake:
    """Issues tokens, accepts sends, fails on demand."""

    def __init__(self, *, stable: bool = True) -> None:
        self.stable = stable
        self.calls: Counter[str] = Counter()
        self.valid: set[str] = set()
        self.fail: list[int] = []  # errcodes for the next sends
        self.sent: list[dict[str, Any]] = []
        self.token_delay = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self.token)
        if self.stable:
            app.router.add_post("/cgi-bin/stable_token", self.token)
        app.router.add_post("/cgi-bin/message/custom/send", self.send)
        app.router.add_post("/cgi-bin/message/template/send", self.send)
        app.router.add_get("/sns/oauth2/access_token", self.oauth)
        return app

    async def token(self, request: web.Request) -> web.Response:
        self.calls[request.path] += 1
        await asyncio.sleep(self.token_delay)
        value = secrets.token_hex(8)
        self.valid = {value}  # the old token dies at once (worst case)
        return web.json_response({"access_token": value, "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        self.calls["send"] += 1
        if request.query.get("access_token") not in self.valid:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential rid: x"})
        if self.fail:
            code = self.fail.pop(0)
            if code == 500:
                return web.Response(status=502, text="bad gateway")
            return web.json_response({"errcode": code, "errmsg": f"err {code} rid: 1-2-3"})
        self.sent.append({"path": request.path, **(await request.json())})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": len(self.sent)})

    async def oauth(self, request: web.Request) -> web.Response:
        if request.query.get("code") == "good":
            return web.json_response({"access_token": "x", "openid": "o-staff-1", "expires_in": 7200})
        return web.json_response({"errcode": 40029, "errmsg": "invalid code"})


@pytest.fixture
async def _d_fake() -> Any:
    fake = _DFake()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield fake, http, str(server.make_url("")).rstrip("/")
    await server.close()


def _api(http: aiohttp.ClientSession, base: str, **kw: Any) -> WeChatAPI:
    return WeChatAPI(session=http, base_url=base, appid="wx-test", secret="s", **kw)


async def test_one_token_for_many_messages(_d_fake: Any) -> None:
    fake, http, base = _d_fake
    api = _api(http, base)
    await asyncio.gather(*(api.send_text(f"o{i}", f"你好{i}") for i in range(30)))
    assert fake.calls["/cgi-bin/stable_token"] == 1
    assert len(fake.sent) == 30
    assert {m["text"]["content"] for m in fake.sent} == {f"你好{i}" for i in range(30)}


async def test_token_refreshed_once_on_40001_for_many_messages(_d_fake: Any) -> None:
    fake, http, base = _d_fake
    api = _api(http, base)
    await api.send_text("o1", "a")
    fake.valid = set()  # WeChat forgets the token: every send gets 40001
    await asyncio.gather(*(api.send_text(f"o{i}", "b") for i in range(20)))
    assert fake.calls["/cgi-bin/stable_token"] == 2
    assert len(fake.sent) == 21


async def test_token_refreshed_before_expiry() -> None:
    fake = _DFake()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    now = [datetime(2025, 6, 3, 9, tzinfo=UTC)]
    async with aiohttp.ClientSession() as http:
        api = _api(http, str(server.make_url("")).rstrip("/"), clock=lambda: now[0])
        await api.send_text("o", "1")
        now[0] += timedelta(minutes=100)
        await api.send_text("o", "2")
        assert fake.calls["/cgi-bin/stable_token"] == 1
        now[0] += timedelta(minutes=16)  # within five minutes of the two-hour expiry
        await api.send_text("o", "3")
        assert fake.calls["/cgi-bin/stable_token"] == 2
    await server.close()


async def test_falls_back_to_token_endpoint_without_stable_token() -> None:
    fake = _DFake(stable=False)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        api = _api(http, str(server.make_url("")).rstrip("/"))
        await api.send_template("o", "TPL", {"thing1": "轮椅已送达"}, "http://x/case")
        await api.send_text("o", "x")
    assert fake.calls["/cgi-bin/token"] == 1
    assert fake.sent[0]["data"] == {"thing1": {"value": "轮椅已送达"}}
    assert fake.sent[0]["url"] == "http://x/case"
    await server.close()


@pytest.mark.parametrize(
    ("code", "prop"),
    [(45015, "window_closed"), (45047, "window_closed"), (43004, "unsubscribed"), (-1, "retryable")],
)
async def test_error_classes(_d_fake: Any, code: int, prop: str) -> None:
    fake, http, base = _d_fake
    api = _api(http, base)
    fake.fail = [code]
    with pytest.raises(WeChatError) as info:
        await api.send_text("o", "x")
    assert info.value.errcode == code
    assert getattr(info.value, prop) is True
    assert "rid" not in info.value.short()


async def test_http_error_and_unreachable_are_unavailable(_d_fake: Any) -> None:
    fake, http, base = _d_fake
    api = _api(http, base)
    fake.fail = [500]
    with pytest.raises(WeChatUnavailable):
        await api.send_text("o", "x")
    dead = _api(http, "http://127.0.0.1:9", timeout=2)
    with pytest.raises(WeChatUnavailable) as info:
        await dead.send_text("o", "x")
    assert info.value.retryable


async def test_oauth(_d_fake: Any) -> None:
    _fake, http, base = _d_fake
    api = _api(http, base)
    assert await api.oauth_openid("good") == "o-staff-1"
    with pytest.raises(WeChatError):
        await api.oauth_openid("bad")


def _redis_url() -> str:
    return TEST_REDIS_URL


@pytest.mark.redis
async def test_two_processes_share_one_token_through_redis(_d_fake: Any) -> None:
    import redis.asyncio as redis_mod

    fake, http, base = _d_fake
    # reachability is checked by tests/conftest.py require_redis (the `redis` marker)
    r1 = redis_mod.from_url(_redis_url())
    r2 = redis_mod.from_url(_redis_url())
    appid = f"wx-{secrets.token_hex(4)}"
    fake.token_delay = 0.2
    a = WeChatAPI(session=http, base_url=base, appid=appid, secret="s", redis=r1)
    b = WeChatAPI(session=http, base_url=base, appid=appid, secret="s", redis=r2)
    try:
        ta, tb = await asyncio.gather(a.access_token(), b.access_token())
        assert ta == tb
        assert fake.calls["/cgi-bin/stable_token"] == 1
        await asyncio.gather(*(x.send_text("o", "hi") for x in (a, b) for _ in range(5)))
        assert len(fake.sent) == 10
        stored = json.loads(await r1.get(f"wechat:access_token:{appid}"))
        assert stored["value"] == ta
    finally:
        await r1.delete(f"wechat:access_token:{appid}")
        await r1.aclose()
        await r2.aclose()
