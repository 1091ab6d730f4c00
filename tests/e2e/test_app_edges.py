"""The real app's edges: health and readiness, and hostile WeChat requests that must leave no row behind."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot import keys
from bot.models import InboundMessage, Resident
from tests.helpers import NOWHERE, System, pg_dsn, running_system


async def _inbound_rows(system: System) -> int:
    async with system.app[keys.SESSIONS]() as s:
        return (await s.exec(select(func.count()).select_from(InboundMessage))).scalar_one()


@pytest.mark.rasa
async def test_ready_and_not_degraded_with_rasa_up(chat: System) -> None:
    async with chat.http.get(f"{chat.bot_url}/healthz") as resp:
        assert resp.status == 200
    async with chat.http.get(f"{chat.bot_url}/readyz") as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["ready"] is True and body["checks"]["nlu"]["ok"] is True and body["degraded"] is False


@pytest.mark.postgres
async def test_readyz_is_503_when_the_database_is_gone(pg_template, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    url = await pg_template.copy()
    name = url.rsplit("/", 1)[1]
    async with running_system(url, tmp_path) as system:
        async with system.http.get(f"{system.bot_url}/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["degraded"] is True  # Rasa is not running in this test
        conn = await asyncpg.connect(pg_dsn())
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()
        async with system.http.get(f"{system.bot_url}/readyz") as resp:
            body = await resp.json()
        assert resp.status == 503 and body["ready"] is False and body["checks"]["database"]["ok"] is False
        async with system.http.get(f"{system.bot_url}/healthz") as live:
            assert live.status == 200  # the process lives; only readiness says no


@pytest.fixture
async def plain_system(sqlite_url: str, tmp_path):  # type: ignore[no-untyped-def]
    """Plaintext mode: the signature covers only token, timestamp and nonce, so the body itself is on trial."""
    async with running_system(sqlite_url, tmp_path, wechat_encoding_aes_key="") as system:
        yield system


@pytest.mark.parametrize(
    ("label", "body", "status"),
    [
        ("malformed", b"<xml><ToUserName>", 400),
        (
            "billion laughs",
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<xml><Encrypt>&lol2;</Encrypt></xml>",
            400,
        ),
        ("not utf-8", "<xml><Encrypt>\u4f60\u597d</Encrypt></xml>".encode("gbk"), 400),
        ("oversize", b"<xml>" + b"a" * 200_000 + b"</xml>", 413),
    ],
)
async def test_hostile_bodies_get_a_status_and_leave_no_row(
    plain_system: System, label: str, body: bytes, status: int
) -> None:
    user = plain_system.user()
    params, _ = user.sign_request("<xml></xml>")  # a valid signature: only the body is at fault
    reply = await user.send_raw(params, body)
    assert reply.status == status, label
    assert await _inbound_rows(plain_system) == 0
    async with plain_system.app[keys.SESSIONS]() as s:
        assert (await s.exec(select(func.count()).select_from(Resident))).scalar_one() == 0


async def test_forged_signature_is_refused_with_no_side_effect(keyword_system: System) -> None:
    user = keyword_system.user()
    from wechat_sim import protocol

    xml = protocol.text_message(**user._common(), content="我想要轮椅", msg_id=1)
    params, body = user.sign_request(xml)
    forged = {**params, "msg_signature": "0" * 40, "signature": "0" * 40}
    reply = await user.send_raw(forged, body)
    assert reply.status == 403
    assert await _inbound_rows(keyword_system) == 0


@pytest.mark.parametrize(
    ("send", "expect"),
    [
        (lambda u: u.send_link("社区活动", "周末义剪", "http://example.invalid/a"), "文字"),
        (lambda u: u.send_video(), "文字"),
        (lambda u: u.send_video(short=True), "文字"),
        (lambda u: u.send_event("CLICK", "MENU_PROGRESS"), "还没有提交过"),
        (lambda u: u.send_event("CLICK", "MENU_HELP"), "微心愿"),
        (lambda u: u.send_event("CLICK", "NO_SUCH_KEY"), "微心愿"),
        (lambda u: u.send_event("VIEW", "http://example.invalid/"), None),
        (lambda u: u.send_event("LOCATION", lat=22.94, lon=113.67, precision=30), None),
        (lambda u: u.send_event("TEMPLATESENDJOBFINISH", status="success", msg_id=77), None),
        (lambda u: u.send_event("subscribe"), "欢迎"),
        (lambda u: u.send_event("SCAN", "qrscene_1"), "欢迎"),
    ],
)
async def test_every_message_type_gets_a_sensible_answer(keyword_system: System, send, expect) -> None:  # type: ignore[no-untyped-def]
    user = keyword_system.user()
    reply = await send(user)
    assert reply.status == 200
    if expect is None:
        assert reply.text is None  # "success": nothing to say
    else:
        assert reply.text and expect in reply.text
    assert await _inbound_rows(keyword_system) == 1  # recorded once


async def test_a_failing_dialogue_answers_kindly_and_keeps_the_message(
    keyword_system: System, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import bot.conversation.inbound

    async def broken(turn):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in the dialogue")

    monkeypatch.setattr(bot.conversation.inbound, "respond", broken)
    user = keyword_system.user()
    reply = await user.send_text("我想要一辆轮椅")
    assert reply.status == 200 and reply.text == bot.conversation.inbound.SORRY
    async with keyword_system.app[keys.SESSIONS]() as s:
        [row] = (await s.exec(select(InboundMessage))).scalars().all()
    assert row.reply_mode == "failed" and row.text == "我想要一辆轮椅"  # kept, marked for staff
    again = await user.resend()  # WeChat's retry gets the same answer, not a second attempt
    assert again.text in (bot.conversation.inbound.SORRY, None)


async def test_metrics_count_what_happened(keyword_system: System) -> None:
    user = keyword_system.user()
    await user.send_text("我想要一辆轮椅住在厚街")
    await user.resend()
    async with keyword_system.http.get(f"{keyword_system.bot_url}/metrics") as resp:
        body = await resp.text()
    assert resp.status == 200
    assert 'dgj_inbound_messages_total{msg_type="text"} 1.0' in body
    assert "dgj_inbound_duplicates_total 1.0" in body
    assert 'dgj_nlu_parse_seconds_count{source="keyword"} 1.0' in body
    assert 'dgj_replies_total{mode="passive"} 1.0' in body


async def test_metrics_token_is_required_when_configured(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_system(sqlite_url, tmp_path, metrics_token="m" * 24) as system:
        async with system.http.get(f"{system.bot_url}/metrics") as resp:
            assert resp.status == 401
        async with system.http.get(
            f"{system.bot_url}/metrics", headers={"Authorization": "Bearer wrong"}
        ) as resp:
            assert resp.status == 401
        async with system.http.get(
            f"{system.bot_url}/metrics", headers={"Authorization": "Bearer " + "m" * 24}
        ) as resp:
            assert resp.status == 200 and "dgj_outbox_rows" in await resp.text()


async def test_readyz_reports_a_wechat_outage_without_leaving_rotation(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import webhooks

    # WeChat's API is unreachable (a closed port); a late reply must go out through it and fails
    async with running_system(sqlite_url, tmp_path, wechat_api_base=NOWHERE) as system:
        object.__setattr__(system.app[webhooks.WEBHOOK_CONFIG], "reply_budget", 0.0)
        user = system.user()
        await user.send_text("你好")
        for _ in range(50):
            async with system.http.get(f"{system.bot_url}/readyz") as resp:
                body = await resp.json()
            if not body["checks"]["wechat_api"]["ok"]:
                break
            await asyncio.sleep(0.1)
        assert resp.status == 200 and body["ready"] is True and body["degraded"] is True
        assert "network" in body["checks"]["wechat_api"]["last_error"]
        async with system.app[keys.SESSIONS]() as s:
            from bot.models import Outbox

            [row] = (await s.exec(select(Outbox))).scalars().all()
        assert (
            row.status == "pending" and row.attempts == 1 and row.last_error
        )  # kept for a retry, not dropped
