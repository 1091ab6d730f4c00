"""Every WeChat error code through the simulator over real HTTP on 127.0.0.1: dispatcher + client together."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot import db
from bot.cases.flags import flag_unreachable
from bot.cases.numbering import create_case
from bot.delivery.dispatcher import PHONE_FLAG, DeliveryConfig, dispatch_due
from bot.delivery.outbox import enqueue
from bot.delivery.wechat_api import WeChatAPI
from bot.models import Case, CaseEvent, Outbox, Resident
from tests.helpers import migrated_sqlite
from wechat_sim.server import SIM_STATE, create_sim_app

APPID = "wx00000000simulator"
SECRET = "sim-secret"


@pytest.fixture
async def _d_env(tmp_path: Any) -> Any:
    url = await migrated_sqlite(tmp_path / "sim.sqlite3")
    engine = db.make_engine(url)
    sim = create_sim_app(
        token="t",
        appid=APPID,
        aes_key=None,
        mode="plain",
        webhook_url="http://127.0.0.1:9/wechat",
        secret=SECRET,
    )
    server = TestServer(sim, host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    base = str(server.make_url("")).rstrip("/")
    api = WeChatAPI(session=http, base_url=base, appid=APPID, secret=SECRET)
    env = {
        "sessions": db.make_sessions(engine),
        "api": api,
        "state": sim[SIM_STATE],
        "base": base,
        "http": http,
    }
    yield env
    await http.close()
    await server.close()
    await engine.dispose()


async def _sim(env: Any, method: str, path: str, body: Any = None) -> Any:
    async with env["http"].request(method, env["base"] + path, json=body) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


def _now() -> datetime:
    return datetime.now(UTC)


async def _resident(env: Any, openid: str, *, window: bool = True) -> Resident:
    async with db.transaction(env["sessions"]) as s:
        r = Resident(openid=openid, last_interaction_at=_now() - timedelta(hours=1) if window else None)
        s.add(r)
    return r


async def _queue(env: Any, openid: str, text: str, case_id: int | None = None) -> None:
    async with db.transaction(env["sessions"]) as s:
        await enqueue(s, openid=openid, kind="progress", text=text, case_id=case_id, now=_now())


async def _dispatch(env: Any, now: datetime | None = None) -> Any:
    cfg = DeliveryConfig(
        rng=random.Random(3), base_url="http://127.0.0.1:8080", on_unreachable=flag_unreachable
    )
    return await dispatch_due(
        sessions=env["sessions"], api=env["api"], now=now or _now(), concurrency=4, config=cfg
    )


async def _rows(env: Any) -> list[Outbox]:
    async with env["sessions"]() as s:
        return list((await s.exec(select(Outbox).order_by(Outbox.id))).all())


async def test_one_token_for_many_messages(_d_env: Any) -> None:
    await _resident(_d_env, "o-many")
    for i in range(40):
        await _queue(_d_env, "o-many" if i < 5 else f"o-tpl-{i}", f"消息{i}")
    stats = await _dispatch(_d_env)
    assert stats.sent == 40
    calls = await _sim(_d_env, "GET", "/_sim/calls")
    assert calls.get("stable_token", 0) + calls.get("token", 0) == 1
    sent = await _sim(_d_env, "GET", "/_sim/sent")
    assert len(sent) == 40
    assert sorted(m["channel"] for m in sent).count("custom") == 5


@pytest.mark.parametrize("how", ["40001", "42001"])
async def test_invalid_or_expired_token_refreshed_once(_d_env: Any, how: str) -> None:
    await _resident(_d_env, "o-t")
    await _queue(_d_env, "o-t", "第一条")
    await _dispatch(_d_env)
    if how == "40001":
        await _sim(_d_env, "POST", "/_sim/faults", {"endpoint": "custom", "errcode": 40001, "times": 1})
    else:
        await _sim(_d_env, "POST", "/_sim/tokens/expire")
    await _queue(_d_env, "o-t", "第二条")
    stats = await _dispatch(_d_env)
    assert stats.sent == 1
    calls = await _sim(_d_env, "GET", "/_sim/calls")
    assert calls["stable_token"] == 2
    assert [m["content"] for m in await _sim(_d_env, "GET", "/_sim/sent")] == ["第一条", "第二条"]


async def test_45015_outside_window_falls_back_to_template(_d_env: Any) -> None:
    await _sim(_d_env, "POST", "/_sim/config", {"enforce_window": True})
    await _resident(_d_env, "o-w")  # we believe the window is open; WeChat says it is not
    await _queue(_d_env, "o-w", "您的诉求已受理\n请耐心等待")
    stats = await _dispatch(_d_env)
    assert stats.sent == 1 and stats.via_template == 1
    (msg,) = await _sim(_d_env, "GET", "/_sim/sent")
    assert msg["channel"] == "template" and msg["openid"] == "o-w"
    assert msg["url"] == "http://127.0.0.1:8080/"
    calls = await _sim(_d_env, "GET", "/_sim/calls")
    assert calls["custom"] == 1


async def test_45047_quota_used_falls_back_to_template(_d_env: Any) -> None:
    await _sim(_d_env, "POST", "/_sim/config", {"enforce_window": True, "window_quota": 2})
    await _sim(_d_env, "POST", "/_sim/interaction", {"openid": "o-q"})
    await _resident(_d_env, "o-q")
    for i in range(4):
        await _queue(_d_env, "o-q", f"第{i}条")
    cfg = DeliveryConfig(rng=random.Random(3))
    await dispatch_due(sessions=_d_env["sessions"], api=_d_env["api"], now=_now(), concurrency=1, config=cfg)
    channels = [m["channel"] for m in await _sim(_d_env, "GET", "/_sim/sent")]
    assert channels == ["custom", "custom", "template", "template"]
    assert (await _sim(_d_env, "GET", "/_sim/calls"))["custom"] == 3  # one 45047, then no more tries


async def test_43004_unsubscribed_stops_and_asks_staff_to_phone(_d_env: Any) -> None:
    r = await _resident(_d_env, "o-u")
    async with db.transaction(_d_env["sessions"]) as s:
        case = await create_case(
            s, kind="micro_project", description="路灯坏了", town="虎门镇", resident_id=r.id, now=_now()
        )
    await _sim(_d_env, "POST", "/_sim/subscription", {"openid": "o-u", "subscribed": False})
    await _queue(_d_env, "o-u", "进度", case_id=case.id)
    stats = await _dispatch(_d_env)
    assert stats.unreachable == 1
    assert await _sim(_d_env, "GET", "/_sim/sent") == []
    (row,) = await _rows(_d_env)
    assert row.status == "unreachable" and row.last_error and row.last_error.startswith("43004")
    async with _d_env["sessions"]() as s:
        c = await s.get(Case, case.id)
        assert c is not None and c.flag == PHONE_FLAG
        events = (await s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
        assert any("请电话联系" in e.note for e in events)
        res = (await s.exec(select(Resident).where(Resident.openid == "o-u"))).one()
        assert res.subscribed is False
    assert (await _dispatch(_d_env, _now() + timedelta(days=1))).claimed == 0  # never tried again


async def test_busy_then_success_after_backoff(_d_env: Any) -> None:
    await _resident(_d_env, "o-b")
    await _sim(_d_env, "POST", "/_sim/faults", {"endpoint": "custom", "errcode": -1, "times": 1})
    await _queue(_d_env, "o-b", "稍后送达")
    now = _now()
    stats = await _dispatch(_d_env, now)
    assert stats.retried == 1
    (row,) = await _rows(_d_env)
    assert row.status == "pending" and row.last_error and row.last_error.startswith("-1")
    assert row.next_attempt_at > now
    await _dispatch(_d_env, row.next_attempt_at)
    (row,) = await _rows(_d_env)
    assert row.status == "sent"
    assert [m["content"] for m in await _sim(_d_env, "GET", "/_sim/sent")] == ["稍后送达"]


async def test_network_error_parks_as_failed_after_attempts(_d_env: Any) -> None:
    dead = WeChatAPI(
        session=_d_env["http"], base_url="http://127.0.0.1:9", appid=APPID, secret=SECRET, timeout=2
    )
    await _queue(_d_env, "o-n", "发不出去")
    cfg = DeliveryConfig(rng=random.Random(3), max_attempts=2)
    now = _now()
    for _ in range(2):
        await dispatch_due(sessions=_d_env["sessions"], api=dead, now=now, concurrency=1, config=cfg)
        (row,) = await _rows(_d_env)
        now = row.next_attempt_at
    assert row.status == "failed" and row.last_error and "network" in row.last_error


async def test_slow_api_is_waited_for(_d_env: Any) -> None:
    await _resident(_d_env, "o-s")
    await _sim(
        _d_env, "POST", "/_sim/faults", {"endpoint": "custom", "errcode": 0, "times": 1, "delay_ms": 300}
    )
    await _queue(_d_env, "o-s", "慢一点")
    assert (await _dispatch(_d_env)).sent == 1
