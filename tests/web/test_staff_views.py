"""The staff web view over HTTP: sign-in and lockout, CSRF, the authorisation matrix, the queue, the case page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot import keys
from bot.cases.lifecycle import TRANSITIONS
from bot.db import transaction
from bot.models import AuditLog, Case, CaseEvent, InboundMessage, Outbox, Staff
from tests.factories import NOW, OTHER, PASSWORD, TOWN, add_case, add_staff
from tests.helpers import build_app, csrf, migrated_sqlite, sign_in


@pytest.fixture
async def _l_url(tmp_path) -> str:
    url = await migrated_sqlite(tmp_path / "views.sqlite3")
    return url


@pytest.fixture
async def _l_client(_l_url, aiohttp_client):
    return await aiohttp_client(build_app(_l_url))


@pytest.fixture
def _l_sessions(_l_client):
    return _l_client.app[keys.SESSIONS]


async def _status(sessions, case_id: int) -> tuple[str, int | None]:
    async with sessions() as db:
        c = await db.get(Case, case_id)
        return c.status, c.claimed_by_id


# ------------------------------------------------------------------ sign-in
async def test_login_logout_and_redirect_to_queue(_l_client, _l_sessions):
    await add_staff(_l_sessions, "hj1", "town_staff")
    resp = await _l_client.get("/staff/cases", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login")
    resp = await sign_in(_l_client, "hj1")
    assert resp.status == 302 and resp.headers["Location"] == "/staff/cases"
    page = await (await _l_client.get("/staff/cases")).text()
    assert "诉求队列" in page and "厚街镇" in page
    token = await csrf(_l_client, "/staff/cases")
    resp = await _l_client.post("/staff/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 302
    assert (await _l_client.get("/staff/cases", allow_redirects=False)).status == 302


async def test_login_without_csrf_refused(_l_client, _l_sessions):
    await add_staff(_l_sessions, "hj1", "town_staff")
    resp = await _l_client.post(
        "/staff/login", data={"username": "hj1", "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 403


async def test_throttled_after_five_failures_from_one_address(_l_url, aiohttp_client):
    clock = {"now": NOW}
    client = await aiohttp_client(build_app(_l_url, clock=lambda: clock["now"]))
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "hj1", "town_staff")
    for _ in range(5):
        resp = await sign_in(client, "hj1", "wrong-pass1")
        assert resp.status == 401
        assert "用户名或密码错误" in await resp.text()  # no count that would tell the account exists
    resp = await sign_in(client, "hj1")  # the right password, from the same address, waits too
    assert resp.status == 401 and "尝试次数过多" in await resp.text()
    clock["now"] = NOW + timedelta(minutes=16)
    resp = await sign_in(client, "hj1")
    assert resp.status == 302


async def test_password_is_stored_with_a_kdf(_l_sessions):
    s = await add_staff(_l_sessions, "hj1", "town_staff")
    assert s.password_hash.startswith("scrypt$") and PASSWORD not in s.password_hash
    other = await add_staff(_l_sessions, "hj2", "town_staff")
    assert other.password_hash != s.password_hash  # per-user salt


# ------------------------------------------------------------------ jurisdiction and the authorisation matrix
ROLE_USERS = {
    "community_worker": "cw",
    "town_staff": "ts",
    "town_supervisor": "sup",
    "city_supervisor": "city",
    "admin": "adm",
}


async def test_queue_lists_only_own_jurisdiction(_l_client, _l_sessions):
    await add_staff(_l_sessions, "ts", "town_staff")
    await add_staff(_l_sessions, "cw", "community_worker")
    await add_staff(_l_sessions, "city", "city_supervisor", town=None)
    own = await add_case(_l_sessions, desc="厚街的轮椅")
    other_comm = await add_case(_l_sessions, desc="河田的路灯", community="河田社区")
    far = await add_case(_l_sessions, town=OTHER, desc="虎门的助听器")
    await sign_in(_l_client, "ts")
    page = await (await _l_client.get("/staff/cases")).text()
    assert (
        f'data-case="{own.case_no}"' in page
        and f'data-case="{other_comm.case_no}"' in page
        and f'data-case="{far.case_no}"' not in page
    )
    # searching for the other town's case by number finds nothing
    page = await (await _l_client.get("/staff/cases", params={"q": far.case_no})).text()
    assert f'data-case="{far.case_no}"' not in page and "没有符合条件" in page
    await _l_client.post("/staff/logout", data={"csrf_token": await csrf(_l_client, "/staff/cases")})
    await sign_in(_l_client, "cw")
    page = await (await _l_client.get("/staff/cases")).text()
    assert f'data-case="{own.case_no}"' in page and f'data-case="{other_comm.case_no}"' not in page
    await _l_client.post("/staff/logout", data={"csrf_token": await csrf(_l_client, "/staff/cases")})
    await sign_in(_l_client, "city")
    page = await (await _l_client.get("/staff/cases", params={"town": OTHER})).text()
    assert f'data-case="{far.case_no}"' in page and f'data-case="{own.case_no}"' not in page


ACTION_FORMS = {
    "verify": {},
    "accept": {},
    "reject": {"note": "不属于范围"},
    "claim": {},
    "release": {},
    "match": {},
    "start": {},
    "complete": {"note": "已送到"},
    "close": {},
    "cancel": {"note": "重复"},
    "reopen": {"note": "没修好"},
    "resume": {},
    "ask": {"question": "请问需要多宽？"},
    "note": {"note": "内部备注"},
    "edit": {"category": "助老"},
    "phone": {},
}
#: for each action, the state a case must be in for it to make sense
ACTION_STATE = {a: s for (s, a) in TRANSITIONS} | {
    "ask": "accepted",
    "note": "accepted",
    "edit": "accepted",
    "phone": "accepted",
    "verify": "submitted",
    "claim": "accepted",
}


def _allowed(role: str, action: str, own_town: bool, owner_is_me: bool) -> bool:
    if not own_town and role not in ("city_supervisor", "admin"):
        return False
    if action == "phone":
        return True
    if action in ("ask", "note"):
        return True
    if action == "edit":
        return role != "community_worker"
    rule = TRANSITIONS[(ACTION_STATE[action], action)]
    if role not in rule.roles:
        return False
    return not (
        rule.owner_only and not owner_is_me and role not in ("town_supervisor", "city_supervisor", "admin")
    )


@pytest.mark.parametrize("role", list(ROLE_USERS))
@pytest.mark.parametrize("own_town", [True, False])
async def test_authorisation_matrix(_l_client, _l_sessions, role, own_town):
    from bot.ops.seed import seed_categories

    async with transaction(_l_sessions) as db:  # "edit" picks a category from the editable table
        await seed_categories(db)
    me = await add_staff(
        _l_sessions, ROLE_USERS[role], role, town=None if role in ("city_supervisor", "admin") else TOWN
    )
    await sign_in(_l_client, ROLE_USERS[role])
    town = TOWN if own_town else OTHER
    for action, fields in ACTION_FORMS.items():
        state = ACTION_STATE[action]
        case = await add_case(
            _l_sessions,
            town=town,
            status=state,
            owner=me.id if state in ("claimed", "matching", "in_progress", "reopened") else None,
        )
        # the direct URL: another town's case is a 404 for town roles
        resp = await _l_client.get(f"/staff/cases/{case.case_no}")
        visible = own_town or role in ("city_supervisor", "admin")
        assert resp.status == (200 if visible else 404), (role, action)
        token = await csrf(_l_client, "/staff/account")
        path = f"/staff/cases/{case.case_no}/" + ("phone" if action == "phone" else "act")
        data = {"csrf_token": token, "action": action, **fields}
        async with _l_sessions() as db:
            events_before = (await db.exec(select(func.count()).select_from(CaseEvent))).one()
        resp = await _l_client.post(path, data=data, allow_redirects=False)
        async with _l_sessions() as db:
            events_after = (await db.exec(select(func.count()).select_from(CaseEvent))).one()
            stored = await db.get(Case, case.id)
        expected = _allowed(role, action, own_town or role in ("city_supervisor", "admin"), True)
        if not visible:
            assert resp.status == 404, (role, action)
            assert events_after == events_before and stored.status == state
        elif action == "phone":
            # POST → redirect → GET: the next view of the case page shows the number once
            assert resp.status == 302, (role, action)
            assert "13812345678" in await (await _l_client.get(resp.headers["Location"])).text()
        elif expected:
            assert resp.status == 302, (role, action)
            assert events_after > events_before, (role, action)
        else:
            assert resp.status == 302, (role, action)
            assert events_after == events_before and stored.status == state, (role, action)


async def test_forged_form_for_other_town_case_changes_nothing(_l_client, _l_sessions):
    ts = await add_staff(_l_sessions, "ts", "town_staff")
    await add_staff(_l_sessions, "sup", "town_supervisor")
    far_staff = await add_staff(_l_sessions, "hm", "town_staff", town=OTHER)
    own = await add_case(_l_sessions, status="accepted")
    far = await add_case(_l_sessions, town=OTHER, status="accepted")
    await sign_in(_l_client, "sup")
    token = await csrf(_l_client, "/staff/account")
    # merge into another town's case by typing its number
    resp = await _l_client.post(
        f"/staff/cases/{own.case_no}/act",
        data={"csrf_token": token, "action": "merge", "into": far.case_no, "note": "x"},
    )
    assert "找不到诉求" in await resp.text()
    # reassign to a staff member of another town by forging the select value
    resp = await _l_client.post(
        f"/staff/cases/{own.case_no}/act",
        data={"csrf_token": token, "action": "reassign", "to_staff": str(far_staff.id)},
    )
    assert "本镇街" in await resp.text()
    assert await _status(_l_sessions, own.id) == ("accepted", None)
    assert await _status(_l_sessions, far.id) == ("accepted", None)
    resp = await _l_client.post(
        f"/staff/cases/{own.case_no}/act",
        data={"csrf_token": token, "action": "reassign", "to_staff": str(ts.id)},
    )
    assert await _status(_l_sessions, own.id) == ("claimed", ts.id)


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
async def test_csrf_missing_or_wrong_refused_without_change(_l_client, _l_sessions, token):
    await add_staff(_l_sessions, "ts", "town_staff")
    case = await add_case(_l_sessions, status="accepted")
    await sign_in(_l_client, "ts")
    for path, data in [
        (f"/staff/cases/{case.case_no}/act", {"action": "claim"}),
        (f"/staff/cases/{case.case_no}/act", {"action": "ask", "question": "在吗"}),
        (f"/staff/cases/{case.case_no}/phone", {}),
        ("/staff/cases/new", {"kind": "micro_wish", "description": "x", "channel": "window", "town": TOWN}),
    ]:
        if token is not None:
            data = {**data, "csrf_token": token}
        resp = await _l_client.post(path, data=data, allow_redirects=False)
        assert resp.status == 403
    assert await _status(_l_sessions, case.id) == ("accepted", None)
    async with _l_sessions() as db:
        assert (await db.exec(select(func.count()).select_from(Outbox))).one() == 0
        assert (await db.exec(select(func.count()).select_from(Case))).one() == 1
        assert (await db.exec(select(AuditLog).where(AuditLog.action == "reveal_phone"))).first() is None


# ------------------------------------------------------------------ the case page
async def test_case_page_masks_phone_and_reveal_is_audited(_l_client, _l_sessions):
    await add_staff(_l_sessions, "ts", "town_staff")
    case = await add_case(_l_sessions, status="accepted")
    async with transaction(_l_sessions) as db:
        db.add(
            InboundMessage(
                delivery_key="m1",
                openid="o-x",
                msg_type="voice",
                text="我妈妈腿脚不好想要个轮椅",
                case_id=case.id,
                received_at=NOW,
            )
        )
        db.add(
            InboundMessage(
                delivery_key="m2",
                openid="o-x",
                msg_type="image",
                media={"url": "https://img.example/a.jpg"},
                case_id=case.id,
                received_at=NOW,
            )
        )
    await sign_in(_l_client, "ts")
    page = await (await _l_client.get(f"/staff/cases/{case.case_no}")).text()
    assert "138****5678" in page and "13812345678" not in page
    assert "我妈妈腿脚不好想要个轮椅" in page and "https://img.example/a.jpg" in page and "语音" in page
    assert 'id="act-claim"' in page and 'id="act-complete"' not in page
    token = await csrf(_l_client, f"/staff/cases/{case.case_no}")
    resp = await _l_client.post(f"/staff/cases/{case.case_no}/phone", data={"csrf_token": token})
    assert "13812345678" in await resp.text()
    async with _l_sessions() as db:
        log = (await db.exec(select(AuditLog).where(AuditLog.action == "reveal_phone"))).one()
        assert log.case_id == case.id and "13812345678" not in log.detail


async def test_claim_conflict_answers_409_naming_the_owner(_l_client, _l_sessions):
    other = await add_staff(_l_sessions, "zhang", "town_staff")
    await add_staff(_l_sessions, "ts", "town_staff")
    case = await add_case(_l_sessions, status="accepted")
    await sign_in(_l_client, "ts")
    token = await csrf(_l_client, f"/staff/cases/{case.case_no}")  # the page showed the claim button
    async with transaction(_l_sessions) as db:  # meanwhile a colleague claims it
        c = await db.get(Case, case.id)
        c.status, c.claimed_by_id = "claimed", other.id
    resp = await _l_client.post(
        f"/staff/cases/{case.case_no}/act", data={"csrf_token": token, "action": "claim"}
    )
    assert resp.status == 409
    assert "已由zhang认领" in await resp.text()
    assert await _status(_l_sessions, case.id) == ("claimed", other.id)


async def test_double_submitted_form_acts_once(_l_client, _l_sessions):
    await add_staff(_l_sessions, "ts", "town_staff")
    case = await add_case(_l_sessions, status="claimed")
    async with transaction(_l_sessions) as db:
        c = await db.get(Case, case.id)
        c.claimed_by_id = (await db.exec(select(Staff.id).where(Staff.username == "ts"))).one()
    await sign_in(_l_client, "ts")
    token = await csrf(_l_client, f"/staff/cases/{case.case_no}")
    data = {"csrf_token": token, "action": "ask", "question": "门有多宽？", "rk": "abc-ask"}
    for _ in range(2):
        resp = await _l_client.post(f"/staff/cases/{case.case_no}/act", data=data)
        assert resp.status == 200
    async with _l_sessions() as db:
        rows = list(await db.exec(select(Outbox).where(Outbox.case_id == case.id)))
        assert len(rows) == 1 and "门有多宽" in rows[0].text
        assert (await db.get(Case, case.id)).awaiting_resident


async def test_queue_filters_highlight_and_paginate(_l_client, _l_sessions):
    me = await add_staff(_l_sessions, "ts", "town_staff")
    late = await add_case(_l_sessions, status="accepted", deadline=NOW - timedelta(hours=1), desc="超时的事")
    soon = await add_case(
        _l_sessions, status="accepted", deadline=NOW + timedelta(hours=3), desc="快到期的事"
    )
    mine = await add_case(_l_sessions, status="claimed", owner=me.id, desc="我的事")
    for i in range(22):
        await add_case(_l_sessions, status="submitted", desc=f"普通的事{i}", kind="micro_project")
    await sign_in(_l_client, "ts")
    page = await (await _l_client.get("/staff/cases", params={"due": "overdue"})).text()
    assert (
        f'data-case="{late.case_no}"' in page
        and f'data-case="{soon.case_no}"' not in page
        and 'class="qrow overdue"' in page
    )
    page = await (await _l_client.get("/staff/cases", params={"due": "soon"})).text()
    assert (
        f'data-case="{soon.case_no}"' in page
        and f'data-case="{late.case_no}"' not in page
        and "即将到期" in page
    )
    page = await (await _l_client.get("/staff/cases", params={"mine": "1"})).text()
    assert f'data-case="{mine.case_no}"' in page and f'data-case="{late.case_no}"' not in page
    page = await (await _l_client.get("/staff/cases", params={"unclaimed": "1", "kind": "micro_wish"})).text()
    assert (
        f'data-case="{late.case_no}"' in page
        and f'data-case="{mine.case_no}"' not in page
        and "普通的事" not in page
    )
    page = await (await _l_client.get("/staff/cases", params={"q": "快到期"})).text()
    assert f'data-case="{soon.case_no}"' in page and f'data-case="{late.case_no}"' not in page
    first = await (await _l_client.get("/staff/cases")).text()
    assert first.count('class="qrow') == 20 and "下一页" in first
    second = await (await _l_client.get("/staff/cases", params={"page": "2"})).text()
    assert second.count('class="qrow') == 5 and "上一页" in second
    assert not set(re.findall(r"MS\d{8}-\d{4}", first)) & set(re.findall(r"MS\d{8}-\d{4}", second))


async def test_staff_creates_hotline_case_with_bind_code(_l_client, _l_sessions):
    await add_staff(_l_sessions, "ts", "town_staff")
    await sign_in(_l_client, "ts")
    token = await csrf(_l_client, "/staff/cases/new")
    resp = await _l_client.post(
        "/staff/cases/new",
        data={
            "csrf_token": token,
            "channel": "hotline_12345",
            "kind": "micro_project",
            "description": "村口路灯不亮",
            "town": TOWN,
            "contact_phone": "13900001111",
        },
    )
    body = await resp.text()
    assert resp.status == 200 and "绑定码" in body and "村口路灯不亮" in body and "12345热线" in body
    async with _l_sessions() as db:
        c = (await db.exec(select(Case))).one()
        assert c.channel == "hotline_12345" and c.bind_code and c.bind_code in body
    resp = await _l_client.post(
        "/staff/cases/new",
        data={
            "csrf_token": token,
            "channel": "window",
            "kind": "micro_wish",
            "description": "x",
            "town": OTHER,
        },
    )
    assert resp.status == 400 and "本镇街" in await resp.text()


async def test_audit_page_for_supervisors_only(_l_client, _l_sessions):
    await add_staff(_l_sessions, "ts", "town_staff")
    await add_staff(_l_sessions, "sup", "town_supervisor")
    await add_staff(_l_sessions, "hm", "town_supervisor", town=OTHER)
    case = await add_case(_l_sessions, status="accepted")
    await sign_in(_l_client, "ts")
    token = await csrf(_l_client, "/staff/account")
    await _l_client.post(f"/staff/cases/{case.case_no}/act", data={"csrf_token": token, "action": "claim"})
    assert (await _l_client.get("/staff/audit")).status == 403
    for user, sees in (("sup", True), ("hm", False)):
        await _l_client.post("/staff/logout", data={"csrf_token": await csrf(_l_client, "/staff/account")})
        await sign_in(_l_client, user)
        page = await (await _l_client.get("/staff/audit")).text()
        assert ("诉求：认领" in page and case.case_no in page) is sees  # the log reads in Chinese


async def test_resident_signed_link_shows_only_own_cases(_l_client, _l_sessions):
    from bot.cases.lifecycle import my_cases_url

    mine = await add_case(_l_sessions, status="accepted", desc="我的轮椅")
    theirs = await add_case(_l_sessions, status="accepted", desc="别人的助听器")
    settings = _l_client.app[keys.SETTINGS]
    link = my_cases_url(base_url="", link_secret=settings.link_secret, resident_id=mine.resident_id, now=NOW)
    page = await (await _l_client.get(link)).text()
    assert mine.case_no in page and theirs.case_no not in page
    token = link.split("t=")[1]
    resp = await _l_client.get(f"/my/cases/{theirs.case_no}", params={"t": token})
    assert resp.status == 404
    resp = await _l_client.get(f"/my/cases/{mine.case_no}", params={"t": token})
    assert resp.status == 200 and "已提交" in await resp.text()
    resp = await _l_client.get("/my/cases", params={"t": token[:-2] + "xx"})
    assert resp.status == 403


@pytest.mark.parametrize("days", [-400, 0, 400])
async def test_the_residents_link_expires_on_the_apps_clock(_l_url, aiohttp_client, days):
    """Signed and checked on the app's clock, wherever it stands against the wall (the link was signed and checked
    on the wall clock, the vote link checked on the wall and signed on the app's)."""
    from bot.cases.lifecycle import my_cases_url

    clock = {"now": NOW + timedelta(days=days)}
    client = await aiohttp_client(build_app(_l_url, clock=lambda: clock["now"]))
    mine = await add_case(client.app[keys.SESSIONS], status="accepted", desc="我的轮椅")
    secret = client.app[keys.SETTINGS].link_secret
    link = my_cases_url(base_url="", link_secret=secret, resident_id=mine.resident_id, now=clock["now"])
    assert (await client.get(link)).status == 200
    clock["now"] += timedelta(days=6, hours=23)
    assert (await client.get(link)).status == 200
    clock["now"] += timedelta(hours=2)  # seven days and an hour: expired
    assert (await client.get(link)).status == 403


async def test_admin_manages_accounts(_l_client, _l_sessions):
    await add_staff(_l_sessions, "adm", "admin", town=None)
    await add_staff(_l_sessions, "ts", "town_staff")
    await sign_in(_l_client, "ts")
    assert (await _l_client.get("/staff/admin/staff")).status == 403
    await _l_client.post("/staff/logout", data={"csrf_token": await csrf(_l_client, "/staff/account")})
    await sign_in(_l_client, "adm")
    token = await csrf(_l_client, "/staff/admin/staff")
    resp = await _l_client.post(
        "/staff/admin/staff",
        data={
            "csrf_token": token,
            "username": "new1",
            "password": "abc12345",
            "role": "town_staff",
            "town": OTHER,
        },
    )
    assert "已创建账号 new1" in await resp.text()
    async with _l_sessions() as db:
        assert (await db.exec(select(Staff).where(Staff.username == "new1"))).one().town == OTHER
