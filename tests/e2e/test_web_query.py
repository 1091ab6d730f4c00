"""诉求查询 on the web for residents without WeChat, through the real app and the SMS simulator on real ports: the
code arrives by SMS and opens the case; a wrong phone or number gets the same page and no SMS; codes expire and
allow five tries; the form is rate-limited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from sqlmodel import func, select

from bot.cases.numbering import create_case
from bot.db import transaction
from bot.models import AuditLog
from tests.helpers import running_system
from wechat_sim.sms import SIM_SMS

PHONE = "13826951234"


@asynccontextmanager
async def _browser(system: Any) -> AsyncIterator[None]:
    """A client that keeps the session cookie of a 127.0.0.1 site, as a browser does."""
    plain = system.http
    system.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        yield
    finally:
        await system.http.close()
        system.http = plain


async def _case(system: Any, phone: str = PHONE) -> str:
    from bot import keys

    async with transaction(system.app[keys.SESSIONS]) as s:
        case = await create_case(
            s,
            kind="micro_wish",
            description=f"想要一辆轮椅，电话{phone}",
            now=system.clock(),
            town="厚街镇",
            resident_id=None,
            channel="hotline_12345",
            contact_phone=phone,
        )
        return case.case_no


async def _token(system: Any, path: str = "/query") -> str:
    html = await (await system.http.get(system.bot_url + path)).text()
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:300]
    return m.group(1)


async def _ask(system: Any, case_no: str, phone: str) -> tuple[int, str]:
    csrf = await _token(system)
    resp = await system.http.post(
        system.bot_url + "/query", data={"csrf_token": csrf, "case_no": case_no, "phone": phone}
    )
    return resp.status, await resp.text()


async def _sms_codes(system: Any) -> list[str]:
    return [s.params[0] for s in system.sim_app[SIM_SMS].sent if s.phone == PHONE]


async def _wait_codes(system: Any, n: int) -> list[str]:
    import asyncio

    for _ in range(100):
        codes = await _sms_codes(system)
        if len(codes) >= n:
            return codes
        await asyncio.sleep(0.02)
    return await _sms_codes(system)


async def test_a_resident_without_wechat_queries_a_case_by_sms_code(sqlite_url: str, tmp_path: Path) -> None:
    async with running_system(sqlite_url, tmp_path) as system, _browser(system):
        case_no = await _case(system)
        status, page = await _ask(system, case_no.lower(), "138 2695 1234")
        assert status == 200 and "验证码已经用短信发到这个手机" in page and "138****1234" in page
        [code] = await _wait_codes(system, 1)
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        wrong = await system.http.post(
            system.bot_url + "/query/verify",
            data={"csrf_token": csrf, "token": token, "code": "000000" if code != "000000" else "111111"},
        )
        assert wrong.status == 400 and "验证码不对" in await wrong.text()
        ok = await system.http.post(
            system.bot_url + "/query/verify", data={"csrf_token": csrf, "token": token, "code": code}
        )
        shown = await ok.text()
        assert ok.status == 200 and case_no in shown and "已提交" in shown
        assert PHONE not in shown and "138****1234" in shown  # the resident's words are shown masked
        # the code is single-use
        again = await system.http.post(
            system.bot_url + "/query/verify", data={"csrf_token": csrf, "token": token, "code": code}
        )
        assert again.status == 400
        from bot import keys

        async with system.app[keys.SESSIONS]() as s:
            audits = (
                await s.exec(select(func.count()).select_from(AuditLog).where(AuditLog.action == "web_query"))
            ).one()
        assert audits == 1


async def test_a_wrong_phone_or_number_reveals_nothing(sqlite_url: str, tmp_path: Path) -> None:
    async with running_system(sqlite_url, tmp_path) as system, _browser(system):
        case_no = await _case(system)
        answers = [
            await _ask(system, case_no, "13900000000"),
            await _ask(system, "MS20990101-0001", PHONE),
        ]
        for status, page in answers:
            assert status == 200 and "验证码已经用短信发到这个手机" in page
        assert "139****0000" in answers[0][1]  # only what the visitor typed, masked
        assert system.sim_app[SIM_SMS].sent == []
        # whatever code is tried, a non-matching request never opens anything
        page = answers[1][1]
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        for guess in ("000000", "123456", "999999"):
            resp = await system.http.post(
                system.bot_url + "/query/verify", data={"csrf_token": csrf, "token": token, "code": guess}
            )
            assert resp.status == 400
        resp = await system.http.get(system.bot_url + "/query/case", allow_redirects=False)
        assert resp.status == 303


async def test_codes_expire_and_the_form_is_rate_limited(sqlite_url: str, tmp_path: Path) -> None:
    async with running_system(sqlite_url, tmp_path) as system, _browser(system):
        # the limits count in fixed one-hour windows: start one minute into a window so no step crosses into the next
        into_hour = system.clock().timestamp() % 3600
        system.clock.advance(seconds=3600 - into_hour + 60)
        system.sim_app[SIM_SMS].clock = lambda: (
            system.clock().timestamp()
        )  # the provider shares the shifted time
        case_no = await _case(system)
        status, page = await _ask(system, case_no, PHONE)
        [code] = await _wait_codes(system, 1)
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        system.clock.advance(minutes=6)
        late = await system.http.post(
            system.bot_url + "/query/verify", data={"csrf_token": csrf, "token": token, "code": code}
        )
        assert late.status == 400
        statuses = [(await _ask(system, case_no, PHONE))[0] for _ in range(5)]
        assert statuses[:4] == [200, 200, 200, 200] and statuses[4] == 429  # five per case number an hour
        system.clock.advance(hours=1, minutes=1)
        assert (await _ask(system, case_no, PHONE))[0] == 200


async def test_hostile_input_gets_a_clear_answer(sqlite_url: str, tmp_path: Path) -> None:
    async with running_system(sqlite_url, tmp_path) as system, _browser(system):
        for case_no, phone in [
            ("=cmd|x", PHONE),
            ("MS" + "9" * 300, PHONE),
            ("MS20261205-0001", "１３８２６９５１２３４x"),
            ("", ""),
        ]:
            status, page = await _ask(system, case_no, phone)
            assert status == 400 and ("诉求编号" in page or "手机号" in page)
        csrf = await _token(system)
        resp = await system.http.post(
            system.bot_url + "/query/verify", data={"csrf_token": csrf, "token": "x" * 5000, "code": "²²²"}
        )
        assert resp.status == 400
        resp = await system.http.post(
            system.bot_url + "/query", data={"case_no": "MS20261205-0001", "phone": PHONE}
        )
        assert resp.status == 403  # no CSRF token
