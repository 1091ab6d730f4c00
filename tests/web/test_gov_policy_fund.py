"""Policy first and help given directly, through the real app over HTTP on a migrated SQLite file: a wish routed
to a policy, granted, closed and counted; refused and back to matching; a wish paid for by the town with the fund
ledger updated, the resident told truthfully who helped, and the balance never below zero without a supervisor."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot import keys
from bot.db import transaction
from bot.models import Case, CaseEvent, FundAccount, FundEntry, Outbox, PolicyReferral, WelfarePolicy
from tests.factories import NOW, TOWN, add_case, add_staff
from tests.helpers import build_app, csrf, sign_in


@pytest.fixture
async def client(db_url, aiohttp_client):
    """The whole app on a fresh migrated database: SQLite, and PostgreSQL when it runs."""
    return await aiohttp_client(build_app(db_url))


@pytest.fixture
def sessions(client):
    return client.app[keys.SESSIONS]


async def _post(client, case_no: str, path: str, data: dict[str, str]) -> str:
    """Post a form of the case page; returns the flash message shown on the page it redirects to."""
    token = await csrf(client, f"/staff/cases/{case_no}")
    resp = await client.post(f"/staff/cases/{case_no}/{path}", data={**data, "csrf_token": token})
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def _messages(sessions, case_id: int) -> list[str]:
    async with sessions() as db:
        rows = await db.exec(
            select(Outbox)
            .where(Outbox.case_id == case_id, Outbox.recipient_type == "resident")
            .order_by(col(Outbox.id))
        )
        return [r.text for r in rows.all()]


async def _case(sessions, case_id: int) -> Case:
    async with sessions() as db:
        c = await db.get(Case, case_id)
        assert c is not None
        return c


async def _policy_id(sessions, name: str) -> int:
    async with sessions() as db:
        row = (await db.exec(select(WelfarePolicy).where(WelfarePolicy.name == name))).one()
        assert row.id is not None
        return row.id


async def _claimed_wish(sessions, owner_id: int, desc: str) -> Case:
    c = await add_case(sessions, status="claimed", owner=owner_id, desc=desc)
    async with transaction(sessions) as db:
        row = await db.get(Case, c.id)
        row.category = "助残"
    return c


async def test_catalogue_is_seeded_and_the_case_page_suggests_the_policy(client, sessions):
    staff = await add_staff(sessions, "hj-staff", "town_staff")
    c = await _claimed_wish(sessions, staff.id, "我妈走不了路，想要一辆轮椅")
    assert (await sign_in(client, "hj-staff")).status == 302
    async with sessions() as db:
        names = {p.name for p in (await db.exec(select(WelfarePolicy))).all()}
    for expected in ("最低生活保障", "临时救助", "残疾人辅助器具适配", "学生资助", "医疗救助", "就业援助"):
        assert expected in names
    page = await (await client.get(f"/staff/cases/{c.case_no}")).text()
    assert 'id="policy-suggestions"' in page
    suggestions = page.split('id="policy-suggestions"')[1].split("</ul>")[0]
    assert "残疾人辅助器具适配" in suggestions and "轮椅" in suggestions  # the word that suggested it
    assert "学生资助" not in suggestions
    assert 'id="route-policy-form"' in page


async def test_wish_routed_to_a_policy_granted_closed_and_counted(client, sessions):
    staff = await add_staff(sessions, "hj-staff", "town_staff")
    c = await _claimed_wish(sessions, staff.id, "我妈走不了路，想要一辆轮椅")
    assert (await sign_in(client, "hj-staff")).status == 302
    fuju = await _policy_id(sessions, "残疾人辅助器具适配")
    page = await _post(
        client, c.case_no, "policy", {"op": "route", "policy_id": str(fuju), "applied_for": "适配轮椅一辆"}
    )
    assert "已转镇街残联办理" in page
    routed = await _case(sessions, c.id)
    assert routed.status == "policy"
    assert (
        routed.stage_deadline is not None and routed.stage_deadline > NOW
    )  # the policy stage's own deadline
    async with sessions() as db:
        ref = (await db.exec(select(PolicyReferral).where(PolicyReferral.case_id == c.id))).one()
    assert (ref.department, ref.applied_for, ref.outcome) == ("镇街残联", "适配轮椅一辆", "pending")
    assert ref.deadline == routed.stage_deadline
    told = await _messages(sessions, c.id)
    assert any("残疾人辅助器具适配" in t and "镇街残联" in t and "适配轮椅一辆" in t for t in told), told

    page = await _post(client, c.case_no, "policy", {"op": "grant", "note": "残联已上门适配轮椅"})
    assert "政策已落实" in page
    done = await _case(sessions, c.id)
    assert done.status == "completed" and done.completed_at is not None
    told = await _messages(sessions, c.id)
    assert any("政府政策帮您解决" in t and "残联已上门适配轮椅" in t for t in told), told
    assert not any("爱心人士" in t for t in told)

    token = await csrf(client, f"/staff/cases/{c.case_no}")
    await client.post(f"/staff/cases/{c.case_no}/act", data={"action": "close", "csrf_token": token})
    assert (await _case(sessions, c.id)).status == "closed"
    async with sessions() as db:
        ref = (await db.exec(select(PolicyReferral).where(PolicyReferral.case_id == c.id))).one()
        events = (await db.exec(select(CaseEvent).where(CaseEvent.case_id == c.id))).all()
    assert ref.outcome == "granted" and ref.decided_at is not None
    assert [e.data.get("action") for e in events if e.kind == "transition"][-3:] == [
        "route_policy",
        "policy_grant",
        "close",
    ]


async def test_policy_refused_goes_back_to_matching(client, sessions):
    staff = await add_staff(sessions, "hj-staff", "town_staff")
    c = await _claimed_wish(sessions, staff.id, "孩子上学交不起学费")
    assert (await sign_in(client, "hj-staff")).status == 302
    xs = await _policy_id(sessions, "学生资助")
    await _post(
        client, c.case_no, "policy", {"op": "route", "policy_id": str(xs), "applied_for": "申请减免学费"}
    )
    page = await _post(client, c.case_no, "policy", {"op": "refuse", "note": "不在资助范围"})
    assert "政策未获批" in page
    back = await _case(sessions, c.id)
    assert back.status == "matching"
    async with sessions() as db:
        ref = (await db.exec(select(PolicyReferral).where(PolicyReferral.case_id == c.id))).one()
    assert ref.outcome == "refused" and ref.outcome_note == "不在资助范围"
    told = await _messages(sessions, c.id)
    assert any("没有获批" in t and "继续为您联系" in t for t in told), told
    # an outcome cannot be recorded twice
    page = await _post(client, c.case_no, "policy", {"op": "grant", "note": "又批了"})
    assert "没有在等政策办理结果" in page
    assert (await _case(sessions, c.id)).status == "matching"


async def test_wish_fulfilled_by_the_town_updates_the_ledger_and_names_the_town(client, sessions):
    lead = await add_staff(sessions, "hj-lead", "town_supervisor")
    await add_staff(sessions, "hj-staff", "town_staff")
    c = await _claimed_wish(sessions, lead.id, "想要一辆轮椅")
    other = await _claimed_wish(sessions, lead.id, "想要一张护理床")
    assert (await sign_in(client, "hj-lead")).status == 302
    token = await csrf(client, "/staff/funds")
    resp = await client.post(
        "/staff/funds", data={"source": "town", "amount": "1000", "note": "第一季度拨款", "csrf_token": token}
    )
    assert "余额 1,000.00 元" in await resp.text()

    page = await _post(
        client, c.case_no, "fund", {"source": "town", "amount": "350.50", "what": "购买轮椅一辆"}
    )
    assert "余额 649.50 元" in page
    assert (await _case(sessions, c.id)).status == "in_progress"
    told = await _messages(sessions, c.id)
    assert any(f"由{TOWN}社会事务局帮您解决" in t and "购买轮椅一辆" in t for t in told), told
    assert not any("爱心人士" in t for t in told)
    async with sessions() as db:
        acct = (
            await db.exec(select(FundAccount).where(FundAccount.town == TOWN, FundAccount.source == "town"))
        ).one()
        entries = (await db.exec(select(FundEntry).order_by(col(FundEntry.id)))).all()
    assert acct.balance_fen == 64_950
    assert [(e.kind, e.amount_fen, e.balance_after_fen, e.case_id) for e in entries] == [
        ("allocation", 100_000, 100_000, None),
        ("spending", 35_050, 64_950, c.id),
    ]
    ledger = await (await client.get("/staff/funds")).text()
    assert "649.50" in ledger and "350.50" in ledger and c.case_no in ledger

    # more than the balance: refused for a town worker, and nothing moved
    assert (await sign_in(client, "hj-staff")).status == 302
    async with transaction(sessions) as db:
        row = await db.get(Case, other.id)
        row.claimed_by_id = None
        row.status = "accepted"
    token = await csrf(client, f"/staff/cases/{other.case_no}")
    await client.post(f"/staff/cases/{other.case_no}/act", data={"action": "claim", "csrf_token": token})
    page = await _post(client, other.case_no, "fund", {"source": "town", "amount": "800", "what": "护理床"})
    assert "余额不足" in page
    assert (await _case(sessions, other.id)).status == "claimed"
    page = await _post(
        client, other.case_no, "fund", {"source": "town", "amount": "800", "what": "护理床", "overdraft": "1"}
    )
    assert "只有镇街负责人可以批准" in page
    # the supervisor approves the overdraft: recorded on the ledger line
    assert (await sign_in(client, "hj-lead")).status == 302
    page = await _post(
        client,
        other.case_no,
        "fund",
        {"source": "charity", "amount": "800", "what": "护理床", "overdraft": "1"},
    )
    assert "余额 -800.00 元" in page
    async with sessions() as db:
        last = (await db.exec(select(FundEntry).order_by(col(FundEntry.id).desc()))).first()
    assert last.approved_by_id == lead.id and last.source == "charity"
    told = await _messages(sessions, other.id)
    assert any(f"由{TOWN}慈善会帮您解决" in t for t in told), told


async def test_admins_edit_the_catalogue_and_others_cannot(client, sessions):
    await add_staff(sessions, "adm", "admin", town=None)
    await add_staff(sessions, "hj-staff", "town_staff")
    fuju = await _policy_id(sessions, "残疾人辅助器具适配")
    form = {
        "id": str(fuju),
        "name": "残疾人辅助器具适配",
        "department": "市残联康复部",
        "qualifies": "持证残疾人",
        "gives": "免费适配基本型辅助器具",
        "how_to_apply": "向村（社区）或镇街残联申请",
        "documents": "残疾人证、身份证",
        "categories": "助残",
        "keywords": "轮椅，拐杖, 助听器",
        "active": "1",
    }
    assert (await sign_in(client, "hj-staff")).status == 302
    page = await (await client.get("/staff/policies")).text()
    assert "最低生活保障" in page and "修改" not in page  # staff read the catalogue; only admins edit it
    token = await csrf(client, "/staff/policies")
    resp = await client.post("/staff/policies", data={**form, "csrf_token": token}, allow_redirects=False)
    assert resp.status == 403
    assert (await sign_in(client, "adm")).status == 302
    token = await csrf(client, "/staff/policies")
    page = await (
        await client.post("/staff/policies", data={**form, "department": "", "csrf_token": token})
    ).text()
    assert "请填写主管部门" in page
    page = await (await client.post("/staff/policies", data={**form, "csrf_token": token})).text()
    assert "已保存「残疾人辅助器具适配」" in page and "市残联康复部" in page
    async with sessions() as db:
        row = await db.get(WelfarePolicy, fuju)
    assert (row.department, row.keywords, row.categories) == (
        "市残联康复部",
        ["轮椅", "拐杖", "助听器"],
        ["助残"],
    )
    page = await (
        await client.post("/staff/policies", data={**form, "id": "999999", "csrf_token": token})
    ).text()
    assert "没有这项政策" in page
    resp = await client.post(
        "/staff/policies", data={**form, "id": "x", "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 302  # a malformed id is a message on the page, never a 500
