"""The statistics dashboard, the exports (统计表, 档案留存) and the notices editor over HTTP."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from sqlmodel import select

from bot.db import transaction
from bot.models import AuditLog, CaseEvent, Notice, Resident
from bot.web.views import stats
from tests.factories import OTHER as B
from tests.factories import PASSWORD, add_staff
from tests.factories import TOWN as A
from tests.factories import add_rows as add
from tests.factories import case_row as mk
from tests.helpers import csrf, sign_in, stats_app

NOW = datetime(2026, 3, 18, 4, 0, tzinfo=UTC)
RANGE = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    return await aiohttp_client(await stats_app(tmp_path, NOW))


@pytest.fixture
def sessions(client):
    from bot import keys

    return client.app[keys.SESSIONS]


async def seed(sessions):
    """A: 3 cases (one completed, with a phone in its description and a timeline), B: 2 cases."""
    async with transaction(sessions) as db:
        r = Resident(openid="o-stats-1", phone="13912345678")
        db.add(r)
        await db.flush()
        rid = r.id
    a1, a2, a3, b1, b2 = await add(
        sessions,
        mk(
            status="completed",
            completed=NOW - timedelta(days=1),
            description="老人要轮椅，电话13800001111",
            created=NOW - timedelta(days=5),
        ),
        mk(status="submitted", category="助学", description="孩子需要书包"),
        mk(status="in_progress", kind="micro_project", category="照明", item="路灯"),
        mk(town=B, status="submitted"),
        mk(town=B, status="submitted"),
    )
    a1.contact_phone = "13800001111"
    a2.resident_id = rid
    async with transaction(sessions) as db:
        for c in (a1, a2):
            db.add(c)
        db.add(
            CaseEvent(
                case_id=a1.id,
                at=NOW - timedelta(days=5),
                actor_type="resident",
                kind="transition",
                to_status="submitted",
                note="通过微信公众号提交",
            )
        )
        db.add(
            CaseEvent(
                case_id=a1.id,
                at=NOW - timedelta(days=1),
                actor_type="staff",
                actor_name="阿强",
                kind="transition",
                from_status="in_progress",
                to_status="completed",
                note="已送达，家属电话13800001111",
            )
        )
    return a1, a2, a3, b1, b2


def fig(html: str, ident: str) -> str:
    m = re.search(rf'id="{ident}">([^<]*)<', html)
    assert m, ident
    return m.group(1)


# ------------------------------------------------------------------ dashboard and jurisdiction
async def test_town_staff_sees_own_town_even_when_asking_for_another(client, sessions):
    await seed(sessions)
    await add_staff(sessions, "ht1", "town_staff", town=A)
    await sign_in(client, "ht1")
    for query in (RANGE, {**RANGE, "town": B}):
        resp = await client.get("/staff/stats", params=query)
        html = await resp.text()
        assert resp.status == 200
        assert fig(html, "scope") == A
        assert fig(html, "fig-total") == "3"
        assert fig(html, "fig-completed") == "1"
        assert B not in html  # no other town's figures, not even in a town picker


async def test_city_supervisor_chooses_a_town_or_the_city(client, sessions):
    await seed(sessions)
    await add_staff(sessions, "city1", "city_supervisor", town=None)
    await sign_in(client, "city1")
    html = await (await client.get("/staff/stats", params=RANGE)).text()
    assert fig(html, "scope") == "全市" and fig(html, "fig-total") == "5"
    assert 'id="by-town"' in html
    html = await (await client.get("/staff/stats", params={**RANGE, "town": B})).text()
    assert fig(html, "scope") == B and fig(html, "fig-total") == "2"


async def test_stats_need_sign_in(client, sessions):
    for path in ("/staff/stats", "/staff/notices"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login")
    for path in ("/staff/stats/export.xlsx", "/staff/archive.xlsx"):  # exports are POST forms
        resp = await client.post(path, data=RANGE, allow_redirects=False)
        assert resp.status == 403 and "请先登录" in await resp.text()


# ------------------------------------------------------------------ exports
def workbook(body: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(body))


async def post_export(client, path: str, params: dict[str, str]):
    """Exports are POST forms with the statistics page's CSRF token (they write an audit row)."""
    return await client.post(path, data={**params, "csrf_token": await csrf(client, "/staff/stats")})


async def test_stats_export_opens_and_holds_the_figures(client, sessions):
    await seed(sessions)
    await add_staff(sessions, "ht2", "town_staff", town=A)
    await sign_in(client, "ht2")
    resp = await post_export(client, "/staff/stats/export.xlsx", {**RANGE, "town": B})
    assert resp.status == 200
    assert resp.content_type == stats.XLSX
    wb = workbook(await resp.read())
    summary = {row[0]: row[1] for row in wb["概况"].iter_rows(values_only=True)}
    assert summary["范围"] == A and summary["诉求总数"] == 3 and summary["期间办结"] == 1
    by_status = dict(list(wb["按状态"].iter_rows(values_only=True))[1:])
    assert by_status == {"已提交": 1, "已办结": 1, "办理中": 1}
    async with sessions() as db:
        logs = list(await db.exec(select(AuditLog).where(AuditLog.action == "stats_export")))
    assert len(logs) == 1 and A in logs[0].detail


@pytest.mark.parametrize(("role", "town", "masked"), [("town_supervisor", A, True), ("admin", None, False)])
async def test_archive_export_has_cases_timelines_and_masks_phones(client, sessions, role, town, masked):
    a1, a2, a3, _, _ = await seed(sessions)
    await add_staff(sessions, "arch", role, town=town)
    await sign_in(client, "arch")
    resp = await post_export(client, "/staff/archive.xlsx", {**RANGE, "town": A})
    assert resp.status == 200
    wb = workbook(await resp.read())
    cases = list(wb["诉求"].iter_rows(values_only=True))
    header, rows = cases[0], {r[0]: dict(zip(cases[0], r, strict=True)) for r in cases[1:]}
    assert header[0] == "编号"
    assert set(rows) == {a1.case_no, a2.case_no, a3.case_no}
    events = list(wb["时间线"].iter_rows(values_only=True))[1:]
    assert [(e[0], e[6]) for e in events] == [(a1.case_no, "已提交"), (a1.case_no, "已办结")]
    if masked:
        assert rows[a1.case_no]["联系电话"] == "138****1111"
        assert rows[a2.case_no]["联系电话"] == "139****5678"  # the resident's own number, masked too
        assert "13800001111" not in rows[a1.case_no]["诉求内容"]
        assert "138****1111" in rows[a1.case_no]["诉求内容"]
        assert "13800001111" not in events[1][7]
    else:
        assert rows[a1.case_no]["联系电话"] == "13800001111"
        assert rows[a2.case_no]["联系电话"] == "13912345678"
        assert "13800001111" in events[1][7]
    async with sessions() as db:
        logs = list(await db.exec(select(AuditLog).where(AuditLog.action == "archive_export")))
    assert len(logs) == 1 and "共3件" in logs[0].detail


async def test_town_supervisor_archive_never_holds_another_town(client, sessions):
    await seed(sessions)
    await add_staff(sessions, "sup", "town_supervisor", town=B)
    await sign_in(client, "sup")
    wb = workbook(await (await post_export(client, "/staff/archive.xlsx", {**RANGE, "town": A})).read())
    towns = {r[6] for r in list(wb["诉求"].iter_rows(values_only=True))[1:]}
    assert towns == {B}


@pytest.mark.parametrize("role", ["town_staff", "community_worker"])
async def test_archive_refused_to_non_supervisors(client, sessions, role):
    await seed(sessions)
    await add_staff(sessions, "nosup", role, town=A)
    await sign_in(client, "nosup")
    resp = await client.post("/staff/archive.xlsx", data=RANGE)
    assert resp.status == 403
    async with sessions() as db:
        assert not list(await db.exec(select(AuditLog).where(AuditLog.action == "archive_export")))


# ------------------------------------------------------------------ notices
async def post_notice(client, path: str, **data):
    token = await csrf(client, "/staff/notices")
    return await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)


async def test_supervisor_publishes_a_notice_the_public_reads(client, sessions):
    await add_staff(sessions, "tsup", "town_supervisor", town=A)
    await sign_in(client, "tsup")
    resp = await post_notice(
        client, "/staff/notices", title="2026年微实事征集", body="欢迎提出建议\n第二行", town=B
    )
    assert resp.status == 302
    async with sessions() as db:
        n = (await db.exec(select(Notice))).one()
    assert n.town == A  # a town supervisor publishes for their own town whatever the form says
    html = await (await client.get("/public/notices")).text()
    assert "2026年微实事征集" in html
    page = await (await client.get(f"/public/notices/{n.id}")).text()
    assert "欢迎提出建议\n第二行" in page
    resp = await post_notice(client, f"/staff/notices/{n.id}/edit", title="已修改的标题", body="新正文")
    assert resp.status == 302
    assert "已修改的标题" in await (await client.get("/public/notices")).text()
    async with sessions() as db:
        actions = [a.action for a in await db.exec(select(AuditLog).order_by(AuditLog.id))]
    assert "notice_publish" in actions and "notice_edit" in actions


async def test_notice_rules(client, sessions):
    async with transaction(sessions) as db:
        db.add(Notice(title="虎门公告", body="x", town=B, published_at=NOW))
    await add_staff(sessions, "tsup2", "town_supervisor", town=A)
    await add_staff(sessions, "tstaff", "town_staff", town=A)
    await sign_in(client, "tsup2")
    async with sessions() as db:
        other = (await db.exec(select(Notice))).one()
    # another town's notice: not found, unchanged
    assert (await client.get(f"/staff/notices/{other.id}/edit")).status == 404
    resp = await post_notice(client, f"/staff/notices/{other.id}/edit", title="改掉", body="y")
    assert resp.status == 404
    # an empty title goes back into the form
    resp = await post_notice(client, "/staff/notices", title=" ", body="正文")
    assert resp.status == 400 and "请填写标题" in await resp.text()
    # no CSRF token: refused
    resp = await client.post("/staff/notices", data={"title": "t", "body": "b"}, allow_redirects=False)
    assert resp.status == 403
    async with sessions() as db:
        rows = list(await db.exec(select(Notice)))
    assert [(n.title, n.town) for n in rows] == [("虎门公告", B)]
    # town staff may not publish at all
    await client.post("/staff/logout", data={"csrf_token": await csrf(client, "/staff/notices")})
    client.session.cookie_jar.clear()
    await sign_in(client, "tstaff", PASSWORD)
    assert (await client.get("/staff/notices")).status == 403


async def test_future_notice_not_public_yet(client, sessions):
    async with transaction(sessions) as db:
        db.add(Notice(title="明天发布的公告", body="x", town=None, published_at=NOW + timedelta(days=1)))
    assert "明天发布的公告" not in await (await client.get("/public/notices")).text()
