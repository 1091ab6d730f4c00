"""The open API (/api/v1) through the real app over HTTP on a real database: keys, scopes, jurisdiction,
idempotent create, masking, cursor pagination, hostile parameters, audit, rate limit, signed and retried
callbacks with a dead-letter replay."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import col, func, select

from bot.api import callbacks
from bot.api.clients import create_client, revoke
from bot.cases.lifecycle import Actor, transition
from bot.cases.numbering import create_case
from bot.db import make_engine, make_sessions, transaction
from bot.models import ApiCallback, ApiClient, AuditLog, Case
from tests.helpers import app_client

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 China time
HOUJIE, HUMEN = "厚街镇", "虎门镇"


async def _key(db_url: str, name: str, scopes: list[str], town: str | None = None) -> tuple[str, int]:
    engine = make_engine(db_url)
    try:
        async with transaction(make_sessions(engine)) as s:
            client, key = await create_client(s, name=name, scopes=scopes, town=town, now=NOW)
            assert client.id is not None
            return key, client.id
    finally:
        await engine.dispose()


async def _db(db_url: str, fn: Any) -> Any:
    engine = make_engine(db_url)
    try:
        async with transaction(make_sessions(engine)) as s:
            return await fn(s)
    finally:
        await engine.dispose()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


NEW = {
    "external_id": "12345-0001",
    "kind": "micro_project",
    "town": HOUJIE,
    "description": "路灯坏了三天，晚上很黑",
}


@pytest.fixture
async def api(db_url: str, tmp_path: Any, aiohttp_client: Any) -> Any:
    return await app_client(db_url, tmp_path, aiohttp_client, now=NOW)


async def test_create_is_idempotent_on_the_external_id(api: Any, db_url: str) -> None:
    key, _ = await _key(db_url, "12345热线", ["cases:read", "cases:write"])
    first = await api.post("/api/v1/cases", json=NEW, headers=_auth(key))
    assert first.status == 201, await first.text()
    body = await first.json()
    assert (
        body["case_no"].startswith("MS")
        and body["external_id"] == "12345-0001"
        and body["status"] == "submitted"
    )
    assert first.headers["Location"] == f"/api/v1/cases/{body['case_no']}"
    again = await api.post("/api/v1/cases", json={**NEW, "description": "重复提交"}, headers=_auth(key))
    assert again.status == 200 and (await again.json())["case_no"] == body["case_no"]
    count = await _db(db_url, lambda s: s.exec(select(func.count()).select_from(Case)))
    assert count.one() == 1
    case = await _db(db_url, lambda s: s.exec(select(Case)))
    assert case.one().channel == "api"


async def test_a_town_key_sees_and_creates_only_its_town(api: Any, db_url: str) -> None:
    key, _ = await _key(db_url, "厚街一网统管", ["cases:read", "cases:write"], town=HOUJIE)

    async def other(s: Any) -> str:
        c = await create_case(
            s, kind="micro_wish", description="想要轮椅", town=HUMEN, resident_id=None, now=NOW
        )
        return c.case_no

    humen_no = await _db(db_url, other)
    refused = await api.post("/api/v1/cases", json={**NEW, "town": HUMEN}, headers=_auth(key))
    assert refused.status == 422
    assert refused.content_type == "application/problem+json"
    assert (await refused.json())["errors"][0]["field"] == "town"
    assert (await api.get(f"/api/v1/cases/{humen_no}", headers=_auth(key))).status == 404
    assert (await api.get(f"/api/v1/cases/{humen_no}/timeline", headers=_auth(key))).status == 404
    assert (await api.post("/api/v1/cases", json=NEW, headers=_auth(key))).status == 201
    listed = await (await api.get("/api/v1/cases", headers=_auth(key))).json()
    assert [c["town"] for c in listed["items"]] == [HOUJIE]


async def test_scopes_revocation_and_bad_keys(api: Any, db_url: str) -> None:
    reader, reader_id = await _key(db_url, "只读", ["cases:read"])
    assert (await api.post("/api/v1/cases", json=NEW, headers=_auth(reader))).status == 403
    assert (await api.get("/api/v1/cases", headers=_auth(reader))).status == 200
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": reader},
        _auth(reader[:-1] + ("x" if reader[-1] != "x" else "y")),
    ):
        resp = await api.get("/api/v1/cases", headers=headers)
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json())["status"] == 401
    await _db(db_url, lambda s: revoke(s, client_id=reader_id, now=NOW))
    assert (await api.get("/api/v1/cases", headers=_auth(reader))).status == 401


async def test_resident_data_masked_unless_the_key_may_read_it(api: Any, db_url: str) -> None:
    writer, _ = await _key(db_url, "热线", ["cases:read", "cases:write"])
    pii, _ = await _key(db_url, "热线回访", ["cases:read", "cases:pii"])
    body = {
        **NEW,
        "description": "我电话13826951234 身份证441900199001011234",
        "contact_phone": "13826951234",
    }
    case_no = (await (await api.post("/api/v1/cases", json=body, headers=_auth(writer))).json())["case_no"]
    masked = await (await api.get(f"/api/v1/cases/{case_no}", headers=_auth(writer))).json()
    assert "13826951234" not in json.dumps(masked) and "199001011234" not in json.dumps(masked)
    assert masked["contact_phone"] == "138****1234"
    full = await (await api.get(f"/api/v1/cases/{case_no}", headers=_auth(pii))).json()
    assert full["contact_phone"] == "13826951234" and "13826951234" in full["description"]


async def test_cursor_pagination_visits_every_case_once(api: Any, db_url: str) -> None:
    key, _ = await _key(db_url, "翻页", ["cases:read", "cases:write"])
    made = set()
    for i in range(5):
        resp = await api.post("/api/v1/cases", json={**NEW, "external_id": f"p{i}"}, headers=_auth(key))
        made.add((await resp.json())["case_no"])
    seen: list[str] = []
    url = "/api/v1/cases?limit=2"
    while url:
        page = await (await api.get(url, headers=_auth(key))).json()
        seen += [c["case_no"] for c in page["items"]]
        url = f"/api/v1/cases?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert sorted(seen) == sorted(made) and len(seen) == 5


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cases?limit=²",
        "/api/v1/cases?limit=0",
        "/api/v1/cases?limit=99999999999999999999",
        "/api/v1/cases?cursor=%00%ff",
        "/api/v1/cases?cursor=Yzk5OTk5OTk5OTk5OTk5OTk5",
        "/api/v1/cases?updated_since=2026-13-45",
        "/api/v1/cases?updated_since=2026-12-01",
        "/api/v1/cases?status=%3Dcmd",
        "/api/v1/cases?kind=<script>",
        "/api/v1/cases?bogus=1",
        "/api/v1/cases/" + "9" * 400,
        "/api/v1/cases/%E2%80%AE/timeline",
        "/api/v1/subscriptions/99999999999999999999",
    ],
)
async def test_hostile_parameters_get_a_problem_never_a_500(api: Any, db_url: str, path: str) -> None:
    key, _ = await _key(db_url, "模糊", ["cases:read", "cases:write", "webhooks"])
    resp = await (
        api.delete(path, headers=_auth(key)) if "subscriptions" in path else api.get(path, headers=_auth(key))
    )
    assert resp.status in (400, 404), await resp.text()
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1,2]", 400),
        (json.dumps({**NEW, "kind": "other"}).encode(), 422),
        (json.dumps({**NEW, "description": "x" * 2001}).encode(), 422),
        (json.dumps({**NEW, "description": "a\x00b"}).encode(), 422),
        (json.dumps({**NEW, "external_id": 12}).encode(), 422),
        (json.dumps({**NEW, "contact_phone": "call me"}).encode(), 422),
        (json.dumps({**NEW, "category": "不存在的类别"}).encode(), 422),
        (b"{" + b" " * 70_000 + b"}", 413),
    ],
)
async def test_bad_bodies_are_refused_and_write_nothing(
    api: Any, db_url: str, body: bytes, status: int
) -> None:
    key, _ = await _key(db_url, "写入", ["cases:write"])
    resp = await api.post(
        "/api/v1/cases", data=body, headers={**_auth(key), "Content-Type": "application/json"}
    )
    assert resp.status == status, await resp.text()
    count = await _db(db_url, lambda s: s.exec(select(func.count()).select_from(Case)))
    assert count.one() == 0


async def test_notes_reach_the_timeline_and_every_call_is_audited(api: Any, db_url: str) -> None:
    key, _ = await _key(db_url, "12345平台", ["cases:read", "cases:write"])
    case_no = (await (await api.post("/api/v1/cases", json=NEW, headers=_auth(key))).json())["case_no"]
    note = await api.post(
        f"/api/v1/cases/{case_no}/notes",
        json={"text": "热线已回访", "external_status": "已转办"},
        headers=_auth(key),
    )
    assert note.status == 201
    events = (await (await api.get(f"/api/v1/cases/{case_no}/timeline", headers=_auth(key))).json())["events"]
    assert [e["to_status"] for e in events if e["kind"] == "transition"] == ["submitted"]
    assert events[-1]["note"] == "热线已回访" and events[-1]["external_status"] == "已转办"
    rows = await _db(db_url, lambda s: s.exec(select(AuditLog).where(AuditLog.action == "api_call")))
    details = [r.detail for r in rows.all()]
    assert len(details) == 3 and all(d.startswith("12345平台: ") for d in details)


async def test_calls_beyond_the_rate_limit_get_429(db_url: str, tmp_path: Any, aiohttp_client: Any) -> None:
    api = await app_client(db_url, tmp_path, aiohttp_client, now=NOW, api_calls_per_minute=3)
    key, _ = await _key(db_url, "限速", ["cases:read"])
    statuses = [(await api.get("/api/v1/cases", headers=_auth(key))).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_openapi_document_and_local_docs(api: Any) -> None:
    spec = await (await api.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.1") and "/v1/cases" in spec["paths"]
    docs = await (await api.get("/api/docs")).text()
    assert "/api/v1/cases" in docs and "http" not in docs.split("<body>")[0].replace("http-equiv", "")


async def test_callbacks_are_signed_retried_parked_and_replayed(
    api: Any, db_url: str, aiohttp_server: Any
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    fail = {"left": 2}

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        if fail["left"] > 0:
            fail["left"] -= 1
            return web.Response(status=500)
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    server = await aiohttp_server(receiver)
    key, _ = await _key(db_url, "回调", ["cases:read", "cases:write", "webhooks"])
    sub = await (
        await api.post(
            "/api/v1/subscriptions", json={"url": str(server.make_url("/hook"))}, headers=_auth(key)
        )
    ).json()
    case_no = (await (await api.post("/api/v1/cases", json=NEW, headers=_auth(key))).json())["case_no"]

    async def verify(s: Any) -> None:
        case = (await s.exec(select(Case).where(Case.case_no == case_no))).one()
        await transition(
            s,
            case=case,
            action="verify",
            actor=Actor("staff", 1, "镇街", "town_staff", HOUJIE),
            note=None,
            now=NOW,
        )

    await _db(db_url, verify)
    engine = make_engine(db_url)
    sessions = make_sessions(engine)
    try:
        async with transaction(sessions) as s:
            assert await callbacks.collect(s, now=NOW) == 2  # the creation and the verification
        http = api.session
        t = NOW
        for _ in range(3):
            await callbacks.dispatch(sessions=sessions, http=http, now=t)
            t += timedelta(minutes=15)
        bodies = [json.loads(b) for _, b in received]
        assert {b["to_status"] for b in bodies} == {"submitted", "verified"}
        for headers, raw in received:
            ts = headers["X-DGJ-Timestamp"]
            mac = hmac.new(sub["secret"].encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
            assert headers["X-DGJ-Signature"] == f"sha256={mac}"
        rows = (await _db(db_url, lambda s: s.exec(select(ApiCallback).order_by(col(ApiCallback.id))))).all()
        assert [r.status for r in rows] == ["sent", "sent"]
        assert sum(r.attempts for r in rows) == 4  # two failures, then one success each
        async with transaction(sessions) as s:  # nothing new: collecting again writes nothing
            assert await callbacks.collect(s, now=t) == 0
        # a receiver that never answers 2xx: the row is parked as dead after every retry, then replayed
        fail["left"] = 100
        await _db(db_url, lambda s: _reopen_first(s, t))
        for _ in range(callbacks.MAX_ATTEMPTS):
            await callbacks.dispatch(sessions=sessions, http=http, now=t)
            t += timedelta(hours=7)
        async with transaction(sessions) as s:
            dead = await callbacks.dead_letters(s)
            assert len(dead) == 1 and dead[0]["error"] == "HTTP 500"
            assert await callbacks.replay(s, callback_id=dead[0]["id"], now=t)
        fail["left"] = 0
        await callbacks.dispatch(sessions=sessions, http=http, now=t)
        async with transaction(sessions) as s:
            assert await callbacks.dead_letters(s) == []
    finally:
        await engine.dispose()


async def _reopen_first(s: Any, now: datetime) -> None:
    row = (await s.exec(select(ApiCallback).order_by(col(ApiCallback.id)))).first()
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now


async def test_admins_create_and_revoke_keys_and_replay_dead_callbacks_on_a_page(
    db_url: str, tmp_path: Any, aiohttp_client: Any
) -> None:
    from bot.cases.access import create_staff
    from tests.helpers import csrf, login

    client = await app_client(db_url, tmp_path, aiohttp_client, now=NOW)

    async def staff(s: Any) -> None:
        await create_staff(s, username="admin1", password="Passw0rd!x", role="admin", town=None)
        await create_staff(s, username="houjie1", password="Passw0rd!x", role="town_staff", town=HOUJIE)

    await _db(db_url, staff)
    await login(client, "houjie1", "Passw0rd!x")
    assert (await client.get("/staff/admin/api-keys", allow_redirects=False)).status in (403, 404)
    await client.post("/staff/logout", data={"csrf_token": await csrf(client, "/staff/cases")})
    client.session.cookie_jar.clear()
    await login(client, "admin1", "Passw0rd!x")
    token = await csrf(client, "/staff/admin/api-keys")
    page = await client.post(
        "/staff/admin/api-keys",
        data={
            "csrf_token": token,
            "op": "create",
            "name": "12345热线",
            "scope": ["cases:read", "cases:write"],
            "town": "",
        },
    )
    html = await page.text()
    key = html.split('id="new-key"')[1].split("<code>")[1].split("</code>")[0]
    assert (await client.get("/api/v1/cases", headers=_auth(key))).status == 200
    client_id = (
        await _db(db_url, lambda s: s.exec(select(ApiClient.id).where(ApiClient.name == "12345热线")))
    ).one()
    done = await client.post(
        "/staff/admin/api-keys", data={"csrf_token": token, "op": "revoke", "id": str(client_id)}
    )
    assert done.status == 200 and "已吊销" in await done.text()
    assert (await client.get("/api/v1/cases", headers=_auth(key))).status == 401
    bad = await client.post("/staff/admin/api-keys", data={"csrf_token": token, "op": "replay", "id": "²"})
    assert bad.status == 400
    actions = [r.action for r in (await _db(db_url, lambda s: s.exec(select(AuditLog)))).all()]
    assert "api_key_create" in actions and "api_key_revoke" in actions


async def test_a_case_carries_its_community_id_checked_against_the_towns_registry(
    api: Any, db_url: str
) -> None:
    from bot.models import Community

    key, _ = await _key(db_url, "12345热线", ["cases:read", "cases:write"])

    async def registry(s: Any) -> dict[tuple[str, str], int]:
        rows = (await s.exec(select(Community).where(col(Community.town).in_([HOUJIE, HUMEN])))).all()
        return {(c.town, c.name): c.id for c in rows}

    ids = await _db(db_url, registry)
    xinwei, taiping = ids[(HOUJIE, "新围社区")], ids[(HUMEN, "太平社区")]

    made = await api.post(
        "/api/v1/cases",
        json={**NEW, "community_id": xinwei, "community": "随便写的名字"},
        headers=_auth(key),
    )
    assert made.status == 201, await made.text()
    body = await made.json()
    assert (body["community_id"], body["community"]) == (xinwei, "新围社区")  # the registry's name wins
    read = await (await api.get(f"/api/v1/cases/{body['case_no']}", headers=_auth(key))).json()
    assert (read["community_id"], read["community"]) == (xinwei, "新围社区")
    listed = await (await api.get("/api/v1/cases", headers=_auth(key))).json()
    assert [c["community_id"] for c in listed["items"]] == [xinwei]
    by_name = await api.post(
        "/api/v1/cases", json={**NEW, "external_id": "by-name", "community": "新围"}, headers=_auth(key)
    )
    assert (await by_name.json())["community_id"] == xinwei  # a name still finds its registry row
    bare = await api.post("/api/v1/cases", json={**NEW, "external_id": "bare"}, headers=_auth(key))
    assert (await bare.json())["community_id"] is None

    async def deactivate(s: Any) -> int:
        c = (
            await s.exec(select(Community).where(Community.town == HOUJIE, Community.name != "新围社区"))
        ).first()
        c.active = False
        return c.id

    inactive = await _db(db_url, deactivate)
    for n, bad in enumerate([taiping, inactive, 999_999, 0, -3, 2**40, "12", True, 1.5, [xinwei]]):
        resp = await api.post(
            "/api/v1/cases", json={**NEW, "external_id": f"bad-{n}", "community_id": bad}, headers=_auth(key)
        )
        assert resp.status == 422, (bad, await resp.text())
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["errors"][0]["field"] == "community_id", problem
        assert "村（社区）" in problem["detail"], problem
    count = await _db(db_url, lambda s: s.exec(select(func.count()).select_from(Case)))
    assert count.one() == 3  # nothing written by a refused one
    spec = await (await api.get("/api/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert schemas["Case"]["properties"]["community_id"]["type"] == ["integer", "null"]
    assert schemas["NewCase"]["properties"]["community_id"]["minimum"] == 1
