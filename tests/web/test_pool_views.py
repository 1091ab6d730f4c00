"""The pool pages over HTTP (the real app factory): jurisdiction, import with a validation report (all or nothing),
re-import, export, edit/deactivate, bind code, offering from the case page, batch assignment, volunteer pages."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import col, select

import bot.pool as pool
from bot import keys
from bot.app import create_app
from bot.cases.actors import Actor
from bot.db import migrate, transaction
from bot.delivery.links import sign_link
from bot.models import Case, Offer, Outbox, Resource, Staff
from bot.settings import Settings
from tests.factories import NOW, OTHER, PASSWORD, TOWN, mk_resource, mk_staff, mk_wish

HEADER = "编号,类型,名称,电话,服务类别,物品服务,所在镇街,服务镇街\n"


@pytest.fixture(autouse=True)
def _fresh_cache():
    pool.POOL_CACHE.clear()
    yield
    pool.POOL_CACHE.clear()


@pytest.fixture
async def client(db_url, tmp_path, aiohttp_client):
    await migrate(db_url)
    settings = Settings(
        environment="test",
        database_url=db_url,
        session_secret="s" * 40,
        link_secret="l" * 40,
        scheduler_enabled=False,
        rasa_url="http://127.0.0.1:9",
        data_dir=tmp_path,
        base_url="http://bot.test",
    )
    app = create_app(settings, clock=lambda: NOW, run_migrations=False, with_scheduler=False)
    return await aiohttp_client(app)


def _sessions(client):
    return client.app[keys.SESSIONS]


async def _csrf(client, path: str) -> str:
    body = await (await client.get(path)).text()
    m = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert m, body[:300]
    return m.group(1)


async def _login(client, username: str) -> str:
    token = await _csrf(client, "/staff/login")
    resp = await client.post(
        "/staff/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 302
    return token


async def _count(client) -> int:
    async with _sessions(client)() as db:
        return (await db.exec(select(func.count()).select_from(Resource))).one()


async def _seed_pool(client):
    async with transaction(_sessions(client)) as db:
        await mk_staff(db, "hj")
        await mk_staff(db, "hm", town=OTHER)
        await mk_staff(db, "city", role="city_supervisor", town=None)
        await mk_resource(db, "HJ1", name="厚街爱心米店")
        await mk_resource(db, "HM1", town=OTHER, name="虎门五金行")
        await mk_resource(db, "CW1", town=OTHER, served=[], name="全市助残协会")


async def test_jurisdiction_on_pool_pages(client):
    await _seed_pool(client)
    await _login(client, "hj")
    body = await (await client.get("/staff/pool")).text()
    assert "厚街爱心米店" in body and "全市助残协会" in body and "虎门五金行" not in body
    assert (await client.get("/staff/pool/HM1")).status == 404
    assert (await client.get("/staff/pool/CW1")).status == 200
    # a city-wide resource based in another town is visible but not editable by 厚街 staff
    token = await _csrf(client, "/staff/pool/CW1")
    resp = await client.post("/staff/pool/CW1/active", data={"csrf_token": token, "active": "0"})
    assert "只能停用本镇街" in await resp.text()
    async with _sessions(client)() as db:
        assert (await db.exec(select(Resource).where(Resource.key == "CW1"))).one().active
    resp = await client.post(
        "/staff/pool/export.csv", data={"csrf_token": await _csrf(client, "/staff/pool")}
    )
    csv = (await resp.read()).decode("utf-8-sig")
    assert "HJ1" in csv and "CW1" in csv and "HM1" not in csv


async def test_city_supervisor_sees_every_resource_and_filters(client):
    await _seed_pool(client)
    await _login(client, "city")
    body = await (await client.get("/staff/pool")).text()
    assert all(n in body for n in ("厚街爱心米店", "虎门五金行", "全市助残协会"))
    body = await (await client.get("/staff/pool", params={"town": "虎门"})).text()
    assert "虎门五金行" in body and "厚街爱心米店" not in body
    body = await (await client.get("/staff/pool", params={"q": "米店"})).text()
    assert "厚街爱心米店" in body and "虎门五金行" not in body


async def test_community_workers_and_strangers_are_kept_out(client):
    await _seed_pool(client)
    resp = await client.get("/staff/pool", allow_redirects=False)
    assert resp.status == 302 and "/staff/login" in resp.headers["Location"]
    async with transaction(_sessions(client)) as db:
        await mk_staff(db, "cw", role="community_worker")
    await _login(client, "cw")
    assert (await client.get("/staff/pool")).status == 403


BROKEN = [
    ("wrong columns", "编号,名字\nX1,张三\n", "缺少必填列"),
    ("bad phone", HEADER + "X1,热心市民,张三,12345,助老,,厚街,\n", "电话号码格式不正确"),
    ("unknown town", HEADER + "X1,热心市民,张三,13800138000,助老,,火星镇,\n", "未知镇街"),
    (
        "duplicate keys",
        HEADER + "X1,热心市民,张三,13800138000,助老,,厚街,\nX1,热心市民,李四,13800138001,助老,,厚街,\n",
        "重复",
    ),
]


@pytest.mark.parametrize(("label", "content", "problem"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_broken_import_shows_the_report_and_writes_nothing(client, label, content, problem):
    await _seed_pool(client)
    await _login(client, "hj")
    before = await _count(client)
    # one good row first: it must not be half-imported
    if content.startswith(HEADER):
        content = HEADER + "GOOD1,热心市民,王五,13800138009,助老,,厚街,\n" + content[len(HEADER) :]
    token = await _csrf(client, "/staff/pool/import")
    form = {"csrf_token": token, "file": io.BytesIO(content.encode("utf-8"))}
    resp = await client.post("/staff/pool/import", data=_multipart(form, "pool.csv"))
    body = await resp.text()
    assert resp.status == 400
    assert problem in body and "整个文件未导入" in body and "<td>" in body
    assert await _count(client) == before


def _multipart(fields: dict, filename: str):
    import aiohttp

    data = aiohttp.FormData()
    for k, v in fields.items():
        if hasattr(v, "read"):
            data.add_field(k, v, filename=filename)
        else:
            data.add_field(k, v)
    return data


async def test_import_then_reimport_updates_by_key(client):
    await _seed_pool(client)
    await _login(client, "hj")
    first = (
        HEADER
        + "N1,热心市民,张三,138 0013 8000,助老,上门探访,厚街,\nN2,爱心企业,莞香米业,0769-22223333,生活物资,米面油,厚街镇,全市\n"
    )
    token = await _csrf(client, "/staff/pool/import")
    resp = await client.post(
        "/staff/pool/import",
        data=_multipart({"csrf_token": token, "file": io.BytesIO(first.encode())}, "a.csv"),
    )
    assert resp.status == 200 and "新增2条" in await resp.text()
    second = HEADER + "N1,热心市民,张三丰,13800138000,助老,上门探访,厚街,\n"
    token = await _csrf(client, "/staff/pool/import")
    resp = await client.post(
        "/staff/pool/import",
        data=_multipart({"csrf_token": token, "file": io.BytesIO(second.encode())}, "b.csv"),
    )
    assert "更新1条" in await resp.text()
    async with _sessions(client)() as db:
        rows = (await db.exec(select(Resource).where(col(Resource.key).in_(["N1", "N2"])))).all()
    by_key = {r.key: r for r in rows}
    assert len(rows) == 2 and by_key["N1"].name == "张三丰" and by_key["N1"].phone == "13800138000"
    assert by_key["N2"].towns_served == [] and by_key["N2"].phone == "0769-22223333"


async def test_town_staff_cannot_import_another_towns_resources(client):
    await _seed_pool(client)
    await _login(client, "hj")
    content = HEADER + "Z1,热心市民,张三,13800138000,助老,,虎门,\n"
    token = await _csrf(client, "/staff/pool/import")
    resp = await client.post(
        "/staff/pool/import",
        data=_multipart({"csrf_token": token, "file": io.BytesIO(content.encode())}, "z.csv"),
    )
    assert resp.status == 400 and "只能导入本镇街" in await resp.text()
    async with _sessions(client)() as db:
        assert (await db.exec(select(Resource).where(Resource.key == "Z1"))).first() is None


async def test_import_without_csrf_is_refused(client):
    await _seed_pool(client)
    await _login(client, "hj")
    content = HEADER + "Q1,热心市民,张三,13800138000,助老,,厚街,\n"
    resp = await client.post(
        "/staff/pool/import", data=_multipart({"file": io.BytesIO(content.encode())}, "q.csv")
    )
    assert resp.status == 403
    async with _sessions(client)() as db:
        assert (await db.exec(select(Resource).where(Resource.key == "Q1"))).first() is None


async def test_xlsx_export_round_trips_through_import(client):
    await _seed_pool(client)
    await _login(client, "city")
    resp = await client.post(
        "/staff/pool/export.xlsx", data={"csrf_token": await _csrf(client, "/staff/pool")}
    )
    assert resp.status == 200 and "spreadsheetml" in resp.headers["Content-Type"]
    data = await resp.read()
    token = await _csrf(client, "/staff/pool/import")
    resp = await client.post(
        "/staff/pool/import", data=_multipart({"csrf_token": token, "file": io.BytesIO(data)}, "p.xlsx")
    )
    assert resp.status == 200 and "更新3条" in await resp.text()
    assert await _count(client) == 3


async def test_edit_deactivate_and_errors_go_back_into_the_form(client):
    await _seed_pool(client)
    await _login(client, "hj")
    token = await _csrf(client, "/staff/pool/HJ1")
    form = {
        "csrf_token": token,
        "name": "厚街爱心米店",
        "contact": "陈老板",
        "phone": "not-a-phone",
        "kind": "enterprise",
        "categories": "生活物资",
        "items": "米面油",
        "home_town": TOWN,
        "towns_served": "厚街、道滘",
        "capacity_open": "3",
        "capacity_month": "6",
        "max_fund": "",
        "available": "1",
    }
    resp = await client.post("/staff/pool/HJ1/edit", data=form)
    assert resp.status == 400 and "电话号码格式不正确" in await resp.text()
    form["phone"] = "13800001234"
    resp = await client.post("/staff/pool/HJ1/edit", data=form)
    assert resp.status == 200 and "已保存" in await resp.text()
    async with _sessions(client)() as db:
        r = (await db.exec(select(Resource).where(Resource.key == "HJ1"))).one()
    assert r.kind == "enterprise" and r.towns_served == ["厚街镇", "道滘镇"] and r.capacity_open == 3
    resp = await client.post("/staff/pool/HJ1/active", data={"csrf_token": token, "active": "0"})
    assert "已停用" in await resp.text()
    async with _sessions(client)() as db:
        assert not (await db.exec(select(Resource).where(Resource.key == "HJ1"))).one().active


async def test_bind_code_from_the_page_binds_the_volunteers_wechat(client):
    await _seed_pool(client)
    await _login(client, "hj")
    token = await _csrf(client, "/staff/pool/HJ1")
    body = await (await client.post("/staff/pool/HJ1/bind-code", data={"csrf_token": token})).text()
    code = re.search(r"志愿者绑定 (\d{6})", body).group(1)
    async with transaction(_sessions(client)) as db:
        wrong = await pool.volunteer_chat(db, openid="o-new-vol", text="志愿者绑定 000000", now=NOW)
        assert "不正确" in wrong
        ok = await pool.volunteer_chat(db, openid="o-new-vol", text=f"志愿者绑定 {code}", now=NOW)
        assert "绑定成功" in ok
    async with transaction(_sessions(client)) as db:  # one-time
        again = await pool.volunteer_chat(db, openid="o-other", text=f"志愿者绑定 {code}", now=NOW)
        assert "不正确" in again
    async with _sessions(client)() as db:
        assert (await db.exec(select(Resource).where(Resource.key == "HJ1"))).one().openid == "o-new-vol"


async def test_bind_code_expires(client):
    await _seed_pool(client)
    async with transaction(_sessions(client)) as db:
        r = (await db.exec(select(Resource).where(Resource.key == "HJ1"))).one()
        code = await pool.new_volunteer_bind_code(db, resource=r, now=NOW)
    async with transaction(_sessions(client)) as db:
        late = await pool.volunteer_chat(
            db, openid="o-late", text=f"志愿者绑定{code}", now=NOW + timedelta(hours=26)
        )
    assert "过期" in late


async def test_case_panel_and_offer_from_the_case_page(client):
    await _seed_pool(client)
    async with transaction(_sessions(client)) as db:
        hj = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        case = await mk_wish(db, owner=hj.id)
        other = await mk_wish(db, town=OTHER)
    async with _sessions(client)() as db:
        panel = await pool.candidates_panel(db, case=await db.get(Case, case.id), staff=hj, now=NOW)
    assert [c["key"] for c in panel["candidates"]] == ["HJ1", "CW1"]
    assert panel["can_offer"] and [label for label, _ in panel["candidates"][0]["components"]][:3] == [
        "类别匹配",
        "物品匹配",
        "距离",
    ]
    await _login(client, "hj")
    token = await _csrf(client, "/staff/pool")
    resp = await client.post(f"/staff/cases/{other.case_no}/offer", data={"csrf_token": token})
    assert resp.status == 404  # another town's case
    resp = await client.post(
        f"/staff/cases/{case.case_no}/offer", data={"csrf_token": token, "mode": "top_k", "k": "2"}
    )
    assert resp.status == 200
    async with _sessions(client)() as db:
        offers = (await db.exec(select(Offer).where(Offer.case_id == case.id))).all()
        assert len(offers) == 2 and (await db.get(Case, case.id)).status == "matching"
        assert (await db.exec(select(Offer).where(Offer.case_id == other.id))).all() == []


async def test_batch_page_proposes_and_sends(client):
    await _seed_pool(client)
    async with transaction(_sessions(client)) as db:
        await mk_resource(db, "HJ2", name="厚街轮椅站", capacity_open=1)
        cases = [await mk_wish(db, status="accepted") for _ in range(2)]
        await mk_wish(db, town=OTHER, status="accepted")
    await _login(client, "hj")
    body = await (await client.get("/staff/batch", params={"run": "1"})).text()
    assert "待对接 2 个心愿" in body and 'id="solver-total"' in body
    picks = re.findall(r'name="pick" value="([^"]+)"', body)
    assert len(picks) == 2 and all(p.split("|")[0] in {c.case_no for c in cases} for p in picks)
    token = await _csrf(client, "/staff/batch")
    resp = await client.post("/staff/batch/send", data=[("csrf_token", token), *[("pick", p) for p in picks]])
    assert "已发出2个邀请" in await resp.text()
    async with _sessions(client)() as db:
        n = (await db.exec(select(func.count()).select_from(Offer))).one()
    assert n == 2


async def test_volunteer_offer_page_accept_shows_phone_only_after(client):
    await _seed_pool(client)
    async with transaction(_sessions(client)) as db:
        hj = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        case = await mk_wish(db, owner=hj.id, phone="13912345678")
        out = await pool.offer(db, case=case, actor=Actor.of_staff(hj), now=NOW, keys=["HJ1"])
    token = sign_link("l" * 40, "offer", out.sent[0].id, now=NOW.timestamp())
    resp = await client.get(f"/offer/{token}")  # the dispatcher's link shape redirects to the page
    body = await resp.text()
    assert resp.status == 200 and "13912345678" not in body and "139****5678" in body and "接受" in body
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    resp = await client.post(f"/v/offer/{token}/answer", data={"csrf_token": csrf, "answer": "accept"})
    body = await resp.text()
    assert "感谢认领" in body and "13912345678" in body and "新围村三巷8号" in body
    resp = await client.post(
        f"/v/offer/{token}/progress", data={"csrf_token": csrf, "stage": "done", "photo_url": ""}
    )
    assert "已记录完成" in await resp.text()
    async with _sessions(client)() as db:
        assert (await db.get(Case, case.id)).status == "completed"
    # a forged or altered token is refused
    assert (await client.get(f"/v/offer/{token[:-2]}xx")).status == 403
    tasks = sign_link("l" * 40, "tasks", out.sent[0].resource_id, now=NOW.timestamp())
    body = await (await client.get("/v/tasks", params={"t": tasks})).text()
    assert case.case_no in body and "已完成" in body
    assert (
        await client.get("/v/tasks", params={"t": token})
    ).status == 403  # an offer token is not a tasks token


async def test_offer_message_link_resolves_to_the_offer_page(client):
    """The outbox row's marker becomes /offer/<token> through the dispatcher's resolver."""
    from bot.delivery.dispatcher import DeliveryConfig, message_text

    await _seed_pool(client)
    async with transaction(_sessions(client)) as db:
        hj = (await db.exec(select(Staff).where(Staff.username == "hj"))).one()
        r = (await db.exec(select(Resource).where(Resource.key == "HJ1"))).one()
        r.openid = "o-hj1"
        case = await mk_wish(db, owner=hj.id)
        await pool.offer(db, case=case, actor=Actor.of_staff(hj), now=NOW, keys=["HJ1"])
    async with _sessions(client)() as db:
        row = (await db.exec(select(Outbox).where(Outbox.openid == "o-hj1"))).one()
    text = message_text(row, config=DeliveryConfig(base_url="http://bot.test", link_secret="l" * 40), now=NOW)
    path = re.search(r"http://bot\.test(/offer/\S+)", text).group(1)
    body = await (await client.get(path)).text()
    assert case.case_no in body and "接受，我来帮忙" in body
