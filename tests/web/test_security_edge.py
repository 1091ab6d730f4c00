"""Web-edge security through the real app (create_app, real HTTP, real database): strict parameters, the
sign-in redirect, session revocation, masking of resident text, binding-code limits, sign-in throttling,
bounded staff edits and the hardening headers. Each test failed on the code before its fix."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import AuditLog, Case, CaseEvent, InboundMessage, Resident, Staff
from tests.factories import NOW, OTHER, PASSWORD, TOWN
from tests.helpers import app_client, csrf, login


async def _staff(client, username: str, role: str = "town_staff", town: str | None = TOWN) -> Staff:
    from bot.cases.access import create_staff

    async with transaction(client.app[keys.SESSIONS]) as db:
        return await create_staff(
            db,
            username=username,
            password=PASSWORD,
            role=role,
            town=town,
            community="新围社区" if role == "community_worker" else None,
            display_name=username,
        )


async def _case(
    client, *, desc: str = "家里老人需要轮椅", town: str = TOWN, phone: str = "13812345678"
) -> Case:
    from bot.cases.numbering import create_case

    async with transaction(client.app[keys.SESSIONS]) as db:
        r = Resident(openid=f"o-res-{desc[:2]}-{phone[-4:]}", phone=phone)
        db.add(r)
        await db.flush()
        return await create_case(
            db,
            kind="micro_wish",
            description=desc,
            town=town,
            resident_id=r.id,
            community="新围社区",
            now=NOW,
        )


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    return await app_client(db_url, tmp_path, aiohttp_client, now=NOW)


HTML = {"Accept": "text/html"}


# ---------------------------------------------------------------------------------------- defect 9: bad input
@pytest.mark.parametrize(
    "path",
    [
        "/staff/cases?page=²",
        "/staff/cases?page=٣",
        "/staff/outbox?page=99999999999999999999999999",
        "/staff/audit?page=²",
        "/staff/cases/MS20260302-0001%00",
        "/staff/cases/" + "9" * 300,
    ],
)
async def test_bad_parameters_never_answer_500(client, path):
    await _staff(client, "sup", "town_supervisor")
    await login(client, "sup", PASSWORD)
    resp = await client.get(path, headers=HTML, allow_redirects=False)
    assert resp.status in (200, 400, 404), (path, resp.status)


async def test_overlong_ids_and_unicode_digits_in_forms_are_400_not_500(client):
    await _staff(client, "adm", "admin", town=None)
    await login(client, "adm", PASSWORD)
    token = await csrf(client, "/staff/account")
    for path, data in [
        ("/staff/outbox/" + "9" * 40 + "/retry", {}),
        ("/staff/admin/staff/" + "9" * 40, {"op": "toggle"}),
        ("/staff/admin/categories", {"op": "toggle", "id": "٣"}),
        ("/staff/admin/categories", {"op": "add", "kind": "micro_wish", "name": "x", "sort": "²"}),
    ]:
        resp = await client.post(
            path, data={"csrf_token": token, **data}, headers=HTML, allow_redirects=False
        )
        assert resp.status in (302, 400, 404), (path, resp.status, (await resp.text())[:300])


# ---------------------------------------------------------------------------------------- defect 3: open redirect
@pytest.mark.parametrize(
    "next_",
    [
        "/%09/evil.example/phish",
        "/\t/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/%5Cevil.example",
        "https://evil.example/",
        " //evil.example",
        "/%2F%2Fevil.example",
    ],
)
async def test_sign_in_never_redirects_off_site(client, next_):
    await _staff(client, "amy")
    token = await csrf(client, "/staff/login")
    resp = await client.post(
        "/staff/login",
        data={"username": "amy", "password": PASSWORD, "csrf_token": token, "next": next_},
        allow_redirects=False,
    )
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location == "/staff/cases", location


async def test_sign_in_keeps_a_same_site_next(client):
    await _staff(client, "amy")
    token = await csrf(client, "/staff/login")
    resp = await client.post(
        "/staff/login",
        data={"username": "amy", "password": PASSWORD, "csrf_token": token, "next": "/staff/outbox?page=2"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/staff/outbox?page=2"


# ---------------------------------------------------------------------------------------- defect 4: revocation
def _cookie(client) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == "dgj_session")


async def _replay(client, cookie: str) -> int:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"dgj_session": cookie})
    resp = await client.get("/staff/cases", allow_redirects=False)
    return resp.status


@pytest.mark.parametrize("how", ["logout", "password", "role", "deactivate"])
async def test_an_old_session_cookie_stops_working(client, how):
    amy = await _staff(client, "amy")
    await _staff(client, "adm", "admin", town=None)
    await login(client, "amy", PASSWORD)
    stolen = _cookie(client)
    assert await _replay(client, stolen) == 200
    if how == "logout":
        token = await csrf(client, "/staff/account")
        await client.post("/staff/logout", data={"csrf_token": token}, allow_redirects=False)
    elif how == "password":
        token = await csrf(client, "/staff/account")
        resp = await client.post(
            "/staff/account/password",
            data={"csrf_token": token, "old": PASSWORD, "new": "Another1pass"},
            allow_redirects=False,
        )
        assert resp.status == 302
        assert (await client.get("/staff/cases", allow_redirects=False)).status == 200  # this device stays in
    else:
        admin = client
        admin.session.cookie_jar.clear()
        await login(admin, "adm", PASSWORD)
        token = await csrf(admin, "/staff/admin/staff")
        data = {"csrf_token": token, "op": "toggle"}
        if how == "role":
            data = {"csrf_token": token, "op": "role", "role": "town_staff", "town": OTHER}
        resp = await admin.post(f"/staff/admin/staff/{amy.id}", data=data, allow_redirects=False)
        assert resp.status == 302
    assert await _replay(client, stolen) == 302  # back to the login page


# ---------------------------------------------------------------------------------------- defect 5: masking
async def test_numbers_in_resident_text_are_masked_until_the_audited_reveal(client):
    case = await _case(client, desc="我电话一三八一二三四五六七八，身份证441900198001011234，要轮椅")
    async with transaction(client.app[keys.SESSIONS]) as db:
        db.add(
            InboundMessage(
                delivery_key="k1",
                openid="o-x",
                msg_type="text",
                text="打１３９００００１１１１找我",
                case_id=case.id,
            )
        )
        db.add(
            CaseEvent(
                case_id=case.id, actor_type="resident", kind="answer", note="我的电话13700001111", at=NOW
            )
        )
    await _staff(client, "amy")
    await login(client, "amy", PASSWORD)
    body = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    for secret in (
        "一三八一二三四五六七八",
        "441900198001011234",
        "１３９００００１１１１",
        "13700001111",
        "13812345678",
    ):
        assert secret not in body, secret
    assert "138****5678" in body and "137****1111" in body
    token = await csrf(client, f"/staff/cases/{case.case_no}")
    resp = await client.post(
        f"/staff/cases/{case.case_no}/phone", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 302  # post → redirect → get
    revealed = await (await client.get(resp.headers["Location"])).text()
    assert "13812345678" in revealed and "13700001111" in revealed
    again = await client.get(resp.headers["Location"])  # a reload is a GET: no 405, masked again
    assert again.status == 200 and "13812345678" not in await again.text()
    async with client.app[keys.SESSIONS]() as db:
        audits = (await db.exec(select(AuditLog).where(AuditLog.action == "reveal_phone"))).all()
    assert len(audits) == 1


# ---------------------------------------------------------------------------------------- defect 8: binding code
@pytest.fixture
async def oauth_client(db_url, tmp_path, aiohttp_client, aiohttp_server):
    """The app with WeChat's code exchange answered by a small stand-in: code ``code-<openid>`` → openid."""
    from aiohttp import web

    async def exchange(request: web.Request) -> web.Response:
        return web.json_response({"openid": request.query["code"].removeprefix("code-"), "access_token": "x"})

    fake = web.Application()
    fake.router.add_get("/sns/oauth2/access_token", exchange)
    server = await aiohttp_server(fake)
    return await app_client(
        db_url, tmp_path, aiohttp_client, now=NOW, wechat_api_base=str(server.make_url("")).rstrip("/")
    )


async def _oauth_openid(client, openid: str) -> None:
    """A fresh browser (no cookie) goes through /staff/oauth/start and the callback as ``openid``."""
    client.session.cookie_jar.clear()
    resp = await client.get("/staff/oauth/start", allow_redirects=False)
    state = re.search(r"state=([^&#]+)", resp.headers["Location"]).group(1)
    resp = await client.get(f"/staff/oauth/callback?code=code-{openid}&state={state}", allow_redirects=False)
    assert resp.headers["Location"].endswith("/staff/oauth/bind"), resp.headers.get("Location")


async def test_wechat_binding_attempts_are_counted_on_the_server(oauth_client):
    from bot.cases.access import new_bind_code

    client = oauth_client
    amy = await _staff(client, "amy")
    async with transaction(client.app[keys.SESSIONS]) as db:
        code = await new_bind_code(db, staff=await db.get(Staff, amy.id), now=NOW)
    results = []
    for _ in range(5):  # each guess in a new OAuth flow with a new cookie: the cookie cannot reset the count
        await _oauth_openid(client, "o-attacker")
        token = await csrf(client, "/staff/oauth/bind")
        resp = await client.post("/staff/oauth/bind", data={"csrf_token": token, "code": "00000000"})
        results.append(resp.status)
    await _oauth_openid(client, "o-attacker")
    token = await csrf(client, "/staff/oauth/bind")
    resp = await client.post("/staff/oauth/bind", data={"csrf_token": token, "code": code})
    assert results == [400] * 5
    assert resp.status == 429  # even the right code is refused once the limit is reached
    async with client.app[keys.SESSIONS]() as db:
        assert (await db.get(Staff, amy.id)).openid is None


# ---------------------------------------------------------------------------------------- defect 10: sign-in
async def _try(client, username: str, password: str) -> tuple[int, str]:
    token = await csrf(client, "/staff/login")
    resp = await client.post(
        "/staff/login", data={"username": username, "password": password, "csrf_token": token}
    )
    body = await resp.text()
    m = re.search(r'class="err[^"]*"[^>]*>([^<]*)<', body)
    return resp.status, m.group(1) if m else body


async def test_unknown_and_known_users_get_the_same_answer(client):
    await _staff(client, "amy")
    assert await _try(client, "amy", "wrong-pass1") == await _try(client, "nobody", "wrong-pass1")


async def test_an_outsider_cannot_lock_the_owner_out(client):
    from bot import keys as k

    await _staff(client, "amy")
    for _ in range(8):  # an outsider hammers the account from their address
        status, _ = await _try(client, "amy", "guess-1234")
    assert status == 401
    outsider_text = (await _try(client, "amy", PASSWORD))[1]
    assert (
        "尝试次数过多" in outsider_text
    )  # the outsider's own address is throttled, even with the right password
    # the owner, from another address (behind the trusted proxy), still gets in
    client.app[k.SETTINGS].trusted_proxies = ["127.0.0.1/32"]
    token = await csrf(client, "/staff/login")
    resp = await client.post(
        "/staff/login",
        data={"username": "amy", "password": PASSWORD, "csrf_token": token},
        headers={"X-Forwarded-For": "203.0.113.7"},
        allow_redirects=False,
    )
    assert resp.status == 302
    async with client.app[keys.SESSIONS]() as db:
        row = (await db.exec(select(Staff).where(Staff.username == "amy"))).one()
    assert row.failed_logins == 0 and row.locked_until is None


async def test_failed_sign_ins_are_counted_in_sql(client):
    await _staff(client, "amy")
    for _ in range(3):
        await _try(client, "amy", "guess-1234")
    async with client.app[keys.SESSIONS]() as db:
        row = (await db.exec(select(Staff).where(Staff.username == "amy"))).one()
    assert row.failed_logins == 3


# ---------------------------------------------------------------------------------------- defect 11: hotline codes
async def test_hotline_binding_codes_expire_and_have_an_attempt_limit(client):
    from datetime import timedelta

    from bot.cases.lifecycle import BindError, bind_case
    from bot.cases.numbering import create_case

    sessions = client.app[keys.SESSIONS]
    async with transaction(sessions) as db:
        old = await create_case(
            db,
            kind="micro_wish",
            description="热线",
            town=TOWN,
            resident_id=None,
            now=NOW - timedelta(days=31),
        )
        fresh = await create_case(
            db, kind="micro_wish", description="热线", town=TOWN, resident_id=None, now=NOW
        )
        guesser = Resident(openid="o-guesser")
        owner = Resident(openid="o-owner")
        db.add_all([guesser, owner])
    async with transaction(sessions) as db:
        with pytest.raises(BindError, match="过期"):
            await bind_case(db, code=old.bind_code, resident=owner, now=NOW)
    answers = []
    for i in range(5):
        async with transaction(sessions) as db:
            try:
                await bind_case(db, code=f"ZZZZZ{i}", resident=guesser, now=NOW)
            except BindError as exc:
                answers.append(str(exc))
    async with transaction(sessions) as db:  # the sixth try, even with the right code, waits
        with pytest.raises(BindError, match="次数过多"):
            await bind_case(db, code=fresh.bind_code, resident=guesser, now=NOW)
    assert len(answers) == 5
    async with transaction(sessions) as db:  # another resident is not affected
        bound = await bind_case(db, code=fresh.bind_code, resident=owner, now=NOW)
    assert bound.id == fresh.id


# ---------------------------------------------------------------------------------------- defect 12: bounded edits
@pytest.mark.parametrize(
    "field,value",
    [("community", "村" * 5000), ("category", "不存在的类别"), ("category", "助" * 40), ("note", "x" * 5000)],
)
async def test_staff_edits_are_bounded(client, field, value):
    case = await _case(client)
    await _staff(client, "amy")
    await login(client, "amy", PASSWORD)
    token = await csrf(client, f"/staff/cases/{case.case_no}")
    action = "note" if field == "note" else "edit"
    resp = await client.post(
        f"/staff/cases/{case.case_no}/act",
        data={"csrf_token": token, "action": action, field: value},
        headers=HTML,
    )
    assert resp.status == 200  # back on the case page with the reason
    async with client.app[keys.SESSIONS]() as db:
        after = await db.get(Case, case.id)
        events = (await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    assert after.community == case.community and after.category == case.category
    assert all(value not in (e.note or "") for e in events)


# ---------------------------------------------------------------------------------------- defect 13: logs
def test_no_logging_call_prints_an_openid_or_a_delivery_key():
    """Every logging call in the packages: an openid, a delivery key (it holds the openid) or a phone number
    goes to the log only through a pseudonym or a mask."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("bot", "webhooks", "matching", "reference"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr not in ("debug", "info", "warning", "error", "exception", "critical"):
                    continue
                if not (isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger")):
                    continue
                for arg in node.args[1:]:
                    text = ast.unparse(arg)
                    if re.search(
                        r"openid|delivery\.key|delivery_key|phone|from_user", text
                    ) and not re.search(r"pseudonym|_short|mask", text):
                        offenders.append(f"{path.relative_to(root)}:{node.lineno}: {text}")
    assert offenders == []


# ---------------------------------------------------------------------------------------- defect 14: hardening
async def test_security_headers_and_no_inline_script(client):
    resp = await client.get("/staff/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors" in csp and "Strict-Transport-Security" not in resp.headers  # plain HTTP here
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "bot" / "web" / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        # allowed: a same-origin script file (script-src 'self') and a JSON data block, which never executes
        for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", text, flags=re.S):
            external = re.search(r"\bsrc=", attrs) and not body.strip()
            data = 'type="application/json"' in attrs
            assert external or data, (path, attrs, body[:80])
        assert "javascript:" not in text and " on" + "click=" not in text, path


async def test_hsts_with_secure_cookies(db_url, tmp_path, aiohttp_client):
    client = await app_client(db_url, tmp_path, aiohttp_client, now=NOW, cookie_secure=True)
    resp = await client.get("/staff/login")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


def test_production_requires_secure_cookies():
    from pydantic import ValidationError

    from bot.settings import Settings

    real = {
        "wechat_token": "tok-3f9a1c",
        "wechat_secret": "sec-7b2e90d4",
        "session_secret": "s" * 40,
        "link_secret": "l" * 40,
        "rasa_token": "r-88d1e0c2",
        "base_url": "https://dgj.example.cn",
    }
    with pytest.raises(ValidationError, match="COOKIE_SECURE"):
        Settings(environment="production", **real)
    Settings(environment="production", cookie_secure=True, **real)


async def test_readyz_tells_outsiders_only_ok_or_degraded(client):
    inside = await (await client.get("/readyz")).json()  # loopback: the details
    assert "checks" in inside
    spoofed = await (await client.get("/readyz", headers={"X-Forwarded-For": "203.0.113.9"})).json()
    assert "checks" in spoofed  # no trusted proxy configured: the header is ignored, the peer is loopback
    client.app[keys.SETTINGS].trusted_proxies = ["127.0.0.1/32"]
    outside = await client.get("/readyz", headers={"X-Forwarded-For": "203.0.113.9"})
    body = await outside.json()
    assert set(body) == {"status"} and body["status"] in ("ok", "degraded")
    assert "api" not in await outside.text() and "base" not in await outside.text()
    metrics = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert metrics.status == 403


async def test_audit_log_records_the_client_behind_a_trusted_proxy(client):
    case = await _case(client)
    await _staff(client, "amy")
    client.app[keys.SETTINGS].trusted_proxies = ["127.0.0.1/32"]
    xff = {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}  # the client wrote the first entry itself
    token = await csrf(client, "/staff/login")
    await client.post(
        "/staff/login", data={"username": "amy", "password": PASSWORD, "csrf_token": token}, headers=xff
    )
    token = await csrf(client, f"/staff/cases/{case.case_no}")
    await client.post(f"/staff/cases/{case.case_no}/phone", data={"csrf_token": token}, headers=xff)
    async with client.app[keys.SESSIONS]() as db:
        ips = {a.ip for a in (await db.exec(select(AuditLog))).all()}
    assert ips == {"203.0.113.5"}
