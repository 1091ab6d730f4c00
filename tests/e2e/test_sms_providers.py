"""Both SMS adapters against the simulator on a real port: signed requests accepted and recorded, wrong keys and
injected provider errors classified (retry later, unreachable number, failed), delivery receipts pushed back."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.delivery.sms import AliyunSms, TencentSms, render
from wechat_sim.server import create_sim_app
from wechat_sim.sms import SIM_SMS


@pytest.fixture
async def sim(aiohttp_server: Any) -> Any:
    app = create_sim_app(
        token="t", appid="wxsim", aes_key=None, mode="plain", webhook_url="http://127.0.0.1:9/", secret="s"
    )
    return await aiohttp_server(app)


def _providers(sim: Any, http: aiohttp.ClientSession, *, wrong: bool = False) -> list[Any]:
    state = sim.app[SIM_SMS]
    base = str(sim.make_url("")).rstrip("/")
    return [
        TencentSms(
            session=http,
            secret_id=state.tencent_secret_id,
            secret_key=state.tencent_secret_key + ("x" if wrong else ""),
            app_id="1400000000",
            sign_name="大莞家",
            template_ids={"progress": "100001"},
            base_url=f"{base}/sms/tencent",
        ),
        AliyunSms(
            session=http,
            access_key_id=state.aliyun_key_id,
            access_key_secret=state.aliyun_key_secret + ("x" if wrong else ""),
            sign_name="大莞家",
            template_ids={"progress": "SMS_100001"},
            base_url=f"{base}/sms/aliyun",
        ),
    ]


async def test_both_providers_send_and_push_receipts(sim: Any, aiohttp_server: Any) -> None:
    receipts: list[Any] = []

    async def receipt(request: web.Request) -> web.Response:
        receipts.append(await request.json())
        return web.json_response({"result": 0, "errmsg": "OK"})

    receiver = web.Application()
    receiver.router.add_post("/receipt", receipt)
    rx = await aiohttp_server(receiver)
    sim.app[SIM_SMS].receipt_url = str(rx.make_url("/receipt"))
    async with aiohttp.ClientSession() as http:
        for provider in _providers(sim, http):
            result = await provider.send(
                phone="13826951234", template="progress", params=["MS20261205-0001", "已受理"], ref="c1"
            )
            assert result.outcome == "sent", result
            assert result.message_id
    sent = sim.app[SIM_SMS].sent
    assert [(s.provider, s.phone, s.template_id, s.params) for s in sent] == [
        ("tencent", "13826951234", "100001", ["MS20261205-0001", "已受理"]),
        ("aliyun", "13826951234", "SMS_100001", ["MS20261205-0001", "已受理"]),
    ]
    for _ in range(50):
        if len(receipts) == 2:
            break
        await asyncio.sleep(0.05)
    assert receipts[0][0]["report_status"] == "SUCCESS" and receipts[0][0]["sid"] == sent[0].message_id
    assert receipts[1][0]["success"] is True and receipts[1][0]["biz_id"] == sent[1].message_id
    assert (
        render("progress", ["MS20261205-0001", "已受理"])
        == "您的诉求MS20261205-0001有新进展：已受理。详情请拨12345或回复本短信。"
    )


async def test_a_wrong_key_fails_and_nothing_is_sent(sim: Any) -> None:
    async with aiohttp.ClientSession() as http:
        results = [
            await p.send(phone="13826951234", template="progress", params=["a", "b"], ref="r")
            for p in _providers(sim, http, wrong=True)
        ]
    assert [(r.outcome, r.code) for r in results] == [
        ("failed", "AuthFailure.SignatureFailure"),
        ("failed", "SignatureDoesNotMatch"),
    ]
    assert sim.app[SIM_SMS].sent == []


@pytest.mark.parametrize(
    ("provider", "code", "outcome"),
    [
        ("tencent", "LimitExceeded.PhoneNumberDailyLimit", "retry"),
        ("tencent", "FailedOperation.PhoneNumberInBlacklist", "unreachable"),
        ("tencent", "InternalError.Timeout", "retry"),
        ("tencent", "FailedOperation.TemplateIncorrectOrUnapproved", "failed"),
        ("aliyun", "isv.BUSINESS_LIMIT_CONTROL", "retry"),
        ("aliyun", "isv.MOBILE_NUMBER_ILLEGAL", "unreachable"),
        ("aliyun", "isv.AMOUNT_NOT_ENOUGH", "failed"),
    ],
)
async def test_provider_errors_are_classified(sim: Any, provider: str, code: str, outcome: str) -> None:
    sim.app[SIM_SMS].faults.append({"provider": provider, "code": code, "times": 1})
    async with aiohttp.ClientSession() as http:
        adapter = next(p for p in _providers(sim, http) if p.name == provider)
        first = await adapter.send(phone="13826951234", template="progress", params=["a", "b"], ref="r")
        again = await adapter.send(phone="13826951234", template="progress", params=["a", "b"], ref="r")
    assert (first.outcome, first.code) == (outcome, code)
    assert again.outcome == "sent"  # the fault was armed once


async def test_an_invalid_number_is_unreachable(sim: Any) -> None:
    async with aiohttp.ClientSession() as http:
        results = [
            await p.send(phone="12345", template="progress", params=["a", "b"], ref="r")
            for p in _providers(sim, http)
        ]
    assert [r.outcome for r in results] == ["unreachable", "unreachable"]


async def test_network_failure_is_retried_later() -> None:
    async with aiohttp.ClientSession() as http:
        t = TencentSms(
            session=http,
            secret_id="a",
            secret_key="b",
            app_id="1",
            sign_name="s",
            template_ids={},
            base_url="http://127.0.0.1:9",
        )
        assert (
            await t.send(phone="13826951234", template="progress", params=["a", "b"], ref="r")
        ).outcome == "retry"
