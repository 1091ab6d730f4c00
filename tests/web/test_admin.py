"""The admin pages over HTTP: accounts (create, change role, deactivate) and categories (add, rename, deactivate);
only admins get in, and every form needs its CSRF token."""

from __future__ import annotations

import re

import aiohttp
import pytest
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import AuditLog, Case, Category, Resource, Staff
from tests.factories import OTHER, PASSWORD, TOWN, add_case, add_staff
from tests.helpers import csrf, sign_in, signed_in_admin, staff_client


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    return await staff_client(tmp_path, aiohttp_client, "admin.sqlite3")


@pytest.fixture
def sessions(client):
    return client.app[keys.SESSIONS]


@pytest.fixture
async def admin(client, sessions):
    return await signed_in_admin(client, sessions)


async def _logout(client) -> None:
    await client.post("/staff/logout", data={"csrf_token": await csrf(client, "/staff/account")})


async def _staff(sessions, username: str) -> Staff:
    async with sessions() as db:
        return (await db.exec(select(Staff).where(Staff.username == username))).one()


async def _category(sessions, kind: str, name: str) -> Category | None:
    async with sessions() as db:
        return (await db.exec(select(Category).where(Category.kind == kind, Category.name == name))).first()


async def _add_category(client, kind: str, name: str):
    token = await csrf(client, "/staff/admin/categories")
    return await client.post(
        "/staff/admin/categories", data={"csrf_token": token, "op": "add", "kind": kind, "name": name}
    )


# ------------------------------------------------------------------ only admins
ADMIN_POSTS = [
    ("/staff/admin/staff", {"username": "x1", "password": "abc12345", "role": "town_staff", "town": TOWN}),
    ("/staff/admin/categories", {"op": "add", "kind": "micro_wish", "name": "助浴"}),
]


@pytest.mark.parametrize("role", ["community_worker", "town_staff", "town_supervisor", "city_supervisor"])
async def test_only_admins_reach_the_admin_pages(client, sessions, role):
    await add_staff(sessions, "u1", role, town=None if role == "city_supervisor" else TOWN)
    victim = await add_staff(sessions, "victim", "town_staff")
    await sign_in(client, "u1")
    for path in ("/staff/admin/staff", "/staff/admin/categories"):
        assert (await client.get(path)).status == 403
    page = await (await client.get("/staff/cases")).text()
    assert "/staff/admin/staff" not in page  # no "管理" link either
    token = await csrf(client, "/staff/cases")
    for path, data in [*ADMIN_POSTS, (f"/staff/admin/staff/{victim.id}", {"op": "toggle"})]:
        resp = await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)
        assert resp.status == 403, path
    assert (await _staff(sessions, "victim")).active
    async with sessions() as db:
        assert (await db.exec(select(Staff).where(Staff.username == "x1"))).first() is None
    assert await _category(sessions, "micro_wish", "助浴") is None


async def test_signed_out_admin_pages_go_tosign_in(client, sessions):
    resp = await client.get("/staff/admin/staff", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login")
    resp = await client.post(
        "/staff/admin/categories",
        data={"op": "add", "kind": "micro_wish", "name": "助浴"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert await _category(sessions, "micro_wish", "助浴") is None


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_admin_forms_needcsrf(admin, sessions, token):
    other = await add_staff(sessions, "ts", "town_staff")
    async with transaction(sessions) as db:
        db.add(Category(kind="micro_wish", name="助学"))
    cat = await _category(sessions, "micro_wish", "助学")
    extra = {"csrf_token": token} if token else {}
    forms = [
        *ADMIN_POSTS,
        (f"/staff/admin/staff/{other.id}", {"op": "toggle"}),
        (f"/staff/admin/staff/{other.id}", {"op": "role", "role": "town_supervisor", "town": TOWN}),
        ("/staff/admin/categories", {"op": "rename", "id": str(cat.id), "name": "教育"}),
        ("/staff/admin/categories", {"op": "toggle", "id": str(cat.id)}),
    ]
    for path, data in forms:
        resp = await admin.post(path, data={**extra, **data}, allow_redirects=False)
        assert resp.status == 403, (path, data)
    after = await _staff(sessions, "ts")
    assert after.active and after.role == "town_staff"
    cat = await _category(sessions, "micro_wish", "助学")
    assert cat is not None and cat.active
    assert await _category(sessions, "micro_wish", "助浴") is None
    async with sessions() as db:
        assert (await db.exec(select(AuditLog).where(AuditLog.action.startswith("admin_")))).first() is None


# ------------------------------------------------------------------ accounts
async def test_create_account_and_sign_in_with_it(admin, sessions):
    token = await csrf(admin, "/staff/admin/staff")
    resp = await admin.post(
        "/staff/admin/staff",
        data={
            "csrf_token": token,
            "username": "cw1",
            "display_name": "社区小王",
            "password": "abc12345",
            "role": "community_worker",
            "town": "厚街",
            "community": "新围社区",
        },
    )
    page = await resp.text()
    assert "已创建账号 cw1" in page and "社区小王" in page
    created = await _staff(sessions, "cw1")
    assert (created.role, created.town, created.community) == ("community_worker", TOWN, "新围社区")
    async with sessions() as db:
        log = (await db.exec(select(AuditLog).where(AuditLog.action == "admin_create_staff"))).one()
        assert "cw1" in log.detail
    await admin.post("/staff/logout", data={"csrf_token": await csrf(admin, "/staff/account")})
    assert (await sign_in(admin, "cw1", "abc12345")).status == 302


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"username": "adm", "password": "abc12345", "role": "town_staff", "town": TOWN}, "用户名已存在"),
        ({"username": "n1", "password": "short1", "role": "town_staff", "town": TOWN}, "密码至少需要8位"),
        (
            {"username": "n1", "password": "abcdefgh", "role": "town_staff", "town": TOWN},
            "密码需同时包含字母和数字",
        ),
        ({"username": "n1", "password": "abc12345", "role": "town_staff", "town": ""}, "请选择正确的镇街"),
        (
            {"username": "n1", "password": "abc12345", "role": "community_worker", "town": TOWN},
            "需填写所在村",
        ),
        ({"username": "n1", "password": "abc12345", "role": "superuser", "town": TOWN}, "角色不正确"),
    ],
)
async def test_create_account_errors_go_back_into_the_form(admin, sessions, form, error):
    token = await csrf(admin, "/staff/admin/staff")
    resp = await admin.post(
        "/staff/admin/staff", data={"csrf_token": token, "display_name": "表单里的名字", **form}
    )
    page = await resp.text()
    assert resp.status == 400 and error in page
    assert 'value="表单里的名字"' in page  # what was typed is kept
    async with sessions() as db:
        assert len((await db.exec(select(Staff))).all()) == 1


async def test_change_role_takes_effect_at_once(admin, client, sessions):
    ts = await add_staff(sessions, "ts", "town_staff")
    token = await csrf(admin, "/staff/admin/staff")
    resp = await admin.post(
        f"/staff/admin/staff/{ts.id}",
        data={
            "csrf_token": token,
            "op": "role",
            "role": "town_supervisor",
            "town": TOWN,
        },
    )
    assert f"ts：镇街工作人员 {TOWN} → 镇街负责人 {TOWN}" in await resp.text()
    assert (await _staff(sessions, "ts")).role == "town_supervisor"
    async with sessions() as db:
        log = (await db.exec(select(AuditLog).where(AuditLog.action == "admin_staff_role"))).one()
        assert "ts" in log.detail and "→" in log.detail
    await _logout(client)
    await sign_in(client, "ts")
    assert (await client.get("/staff/audit")).status == 200  # supervisors read the audit log
    await _logout(client)
    # moved to another town: sees that town's cases, no longer the old one's
    await sign_in(client, "adm")
    token = await csrf(client, "/staff/admin/staff")
    await client.post(
        f"/staff/admin/staff/{ts.id}",
        data={"csrf_token": token, "op": "role", "role": "town_staff", "town": OTHER},
    )
    here, there = await add_case(sessions), await add_case(sessions, town=OTHER)
    await _logout(client)
    await sign_in(client, "ts")
    assert (await client.get("/staff/audit")).status == 403
    page = await (await client.get("/staff/cases")).text()
    assert there.case_no in page and here.case_no not in page
    assert (await client.get(f"/staff/cases/{here.case_no}")).status == 404


@pytest.mark.parametrize(
    ("form", "error", "expect_role"),
    [
        ({"role": "community_worker", "town": TOWN, "community": ""}, "需填写所在村", "town_staff"),
        ({"role": "town_staff", "town": "火星镇"}, "请选择正确的镇街", "town_staff"),
        ({"role": "emperor", "town": TOWN}, "角色不正确", "town_staff"),
        ({"role": "city_supervisor", "town": ""}, None, "city_supervisor"),
    ],
)
async def test_change_role_validation(admin, sessions, form, error, expect_role):
    ts = await add_staff(sessions, "ts", "town_staff")
    token = await csrf(admin, "/staff/admin/staff")
    page = await (
        await admin.post(f"/staff/admin/staff/{ts.id}", data={"csrf_token": token, "op": "role", **form})
    ).text()
    after = await _staff(sessions, "ts")
    assert after.role == expect_role
    if error:
        assert error in page and after.town == TOWN
    else:
        assert after.town is None


async def test_admin_cannot_change_or_deactivate_self(admin, sessions):
    me = await _staff(sessions, "adm")
    token = await csrf(admin, "/staff/admin/staff")
    page = await (
        await admin.post(f"/staff/admin/staff/{me.id}", data={"csrf_token": token, "op": "toggle"})
    ).text()
    assert "不能停用自己的账号" in page
    page = await (
        await admin.post(
            f"/staff/admin/staff/{me.id}",
            data={"csrf_token": token, "op": "role", "role": "town_staff", "town": TOWN},
        )
    ).text()
    assert "不能修改自己的角色" in page
    me = await _staff(sessions, "adm")
    assert me.active and me.role == "admin"


async def test_deactivate_ends_sessions_and_sign_in(admin, client, sessions):
    ts = await add_staff(sessions, "ts", "town_staff")
    # the staff member's own phone, already signed in (its own cookies)
    other = aiohttp.ClientSession(
        base_url=str(client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    async with other:
        await _deactivate_while_signed_in(admin, other, sessions, ts)


async def _deactivate_while_signed_in(admin, other, sessions, ts) -> None:
    await sign_in(other, "ts")
    assert (await other.get("/staff/cases")).status == 200
    token = await csrf(admin, "/staff/admin/staff")
    page = await (
        await admin.post(f"/staff/admin/staff/{ts.id}", data={"csrf_token": token, "op": "toggle"})
    ).text()
    assert "ts：停用" in page and re.search(r"ts · 已停用", page)
    assert not (await _staff(sessions, "ts")).active
    resp = await other.get("/staff/cases", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login")
    assert (await sign_in(other, "ts")).status == 401
    # and back again
    await admin.post(f"/staff/admin/staff/{ts.id}", data={"csrf_token": token, "op": "toggle"})
    assert (await _staff(sessions, "ts")).active
    assert (await sign_in(other, "ts")).status == 302
    async with sessions() as db:
        details = [
            a.detail for a in await db.exec(select(AuditLog).where(AuditLog.action == "admin_staff_toggle"))
        ]
        assert details == ["ts 停用", "ts 启用"]


async def test_reset_password(admin, client, sessions):
    ts = await add_staff(sessions, "ts", "town_staff")
    token = await csrf(admin, "/staff/admin/staff")
    await admin.post(
        f"/staff/admin/staff/{ts.id}", data={"csrf_token": token, "op": "password", "password": "newpass123"}
    )
    await _logout(client)
    assert (await sign_in(client, "ts", PASSWORD)).status == 401
    assert (await sign_in(client, "ts", "newpass123")).status == 302


# ------------------------------------------------------------------ categories
async def test_add_category_offered_to_staff(admin, sessions):
    page = await (await _add_category(admin, "micro_wish", "助浴")).text()
    assert "已添加类别 助浴" in page
    cat = await _category(sessions, "micro_wish", "助浴")
    assert cat is not None and cat.active
    case = await add_case(sessions, status="accepted")
    page = await (await admin.get(f"/staff/cases/{case.case_no}")).text()
    assert '<option value="助浴"' in page
    # the same name twice, an empty name or an unknown kind: refused
    for kind, name in (("micro_wish", "助浴"), ("micro_wish", "  "), ("nonsense", "别的")):
        page = await (await _add_category(admin, kind, name)).text()
        assert "类别名称为空、类型不对或已存在" in page
    async with sessions() as db:
        assert len((await db.exec(select(Category))).all()) == 1


async def test_rename_category_everywhere(admin, sessions):
    await _add_category(admin, "micro_wish", "助老")
    await _add_category(admin, "micro_project", "助老")  # same name, other kind: untouched
    cat = await _category(sessions, "micro_wish", "助老")
    wish = await add_case(sessions)
    project = await add_case(sessions, kind="micro_project")
    async with transaction(sessions) as db:
        for c in (wish, project):
            row = await db.get(Case, c.id)
            row.category = "助老"
        db.add(
            Resource(
                key="r1", kind="organisation", name="长者服务社", home_town=TOWN, categories=["助老", "助残"]
            )
        )
    token = await csrf(admin, "/staff/admin/categories")
    page = await (
        await admin.post(
            "/staff/admin/categories",
            data={"csrf_token": token, "op": "rename", "id": str(cat.id), "name": "助老服务"},
        )
    ).text()
    assert "类别“助老”已改名为“助老服务”（同步修改1件诉求）" in page
    async with sessions() as db:
        assert (await db.get(Category, cat.id)).name == "助老服务"
        assert (await db.get(Case, wish.id)).category == "助老服务"
        assert (await db.get(Case, project.id)).category == "助老"
        resource = (await db.exec(select(Resource))).one()
        assert resource.categories == ["助老服务", "助残"]
    page = await (await admin.get("/staff/cases", params={"category": "助老服务"})).text()
    assert wish.case_no in page and project.case_no not in page
    # a name that already exists in the kind: refused, nothing changes
    await _add_category(admin, "micro_wish", "助残")
    page = await (
        await admin.post(
            "/staff/admin/categories",
            data={"csrf_token": token, "op": "rename", "id": str(cat.id), "name": "助残"},
        )
    ).text()
    assert "已有同名类别“助残”" in page
    async with sessions() as db:
        assert (await db.get(Category, cat.id)).name == "助老服务"
        assert (await db.get(Case, wish.id)).category == "助老服务"


async def test_deactivate_category_hides_it_from_new_choices(admin, sessions):
    await _add_category(admin, "micro_wish", "助学")
    cat = await _category(sessions, "micro_wish", "助学")
    case = await add_case(sessions, status="accepted")
    async with transaction(sessions) as db:
        (await db.get(Case, case.id)).category = "助学"
    token = await csrf(admin, "/staff/admin/categories")
    page = await (
        await admin.post(
            "/staff/admin/categories", data={"csrf_token": token, "op": "toggle", "id": str(cat.id)}
        )
    ).text()
    assert "助学：停用" in page and "助学（已停用）" in page
    page = await (await admin.get(f"/staff/cases/{case.case_no}")).text()
    assert '<option value="助学"' not in page  # no longer offered
    assert "助学" in page  # the case keeps its category
    await admin.post("/staff/admin/categories", data={"csrf_token": token, "op": "toggle", "id": str(cat.id)})
    assert (await _category(sessions, "micro_wish", "助学")).active
    resp = await admin.post(
        "/staff/admin/categories",
        data={"csrf_token": token, "op": "toggle", "id": "99999"},
        allow_redirects=False,
    )
    assert resp.status == 404
