"""The deadline policy table over HTTP (/staff/admin/deadlines): every stage's deadline in Chinese, admins edit it
(validated, audited old → new, CSRF), everyone else reads it, "恢复默认" puts the defaults back, and a case whose
stage starts after an edit gets its deadline from the new policy while earlier deadlines stay as they were."""

from __future__ import annotations

import html
import re
from datetime import datetime

import pytest
from sqlmodel import col, select

from bot import keys
from bot.cases.numbering import create_case
from bot.db import transaction
from bot.deadlines import sla
from bot.deadlines.workdays import CHINA
from bot.models import AuditLog, Case, SlaPolicy
from tests.factories import TOWN, add_staff
from tests.helpers import csrf, sign_in, signed_in_admin, staff_client

PAGE = "/staff/admin/deadlines"
MONDAY_10 = datetime(2024, 6, 3, 10, 0, tzinfo=CHINA)  # an ordinary working week (端午 is the week after)


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    return await staff_client(tmp_path, aiohttp_client, "sla_admin.sqlite3")


@pytest.fixture
def sessions(client):
    return client.app[keys.SESSIONS]


@pytest.fixture
async def admin(client, sessions):
    return await signed_in_admin(client, sessions)


async def _policies(sessions) -> list[sla.Policy]:
    async with sessions() as db:
        return await sla.list_policies(db)


async def _policy(sessions, kind: str, stage: str) -> sla.Policy:
    return next(p for p in await _policies(sessions) if (p.kind, p.stage) == (kind, stage))


async def _audits(sessions) -> list[AuditLog]:
    async with sessions() as db:
        return list(
            await db.exec(
                select(AuditLog)
                .where(col(AuditLog.action).startswith("admin_sla"))
                .order_by(col(AuditLog.id))
            )
        )


async def _save(client, *, token: str | None = None, **fields: str):
    token = token or await csrf(client, PAGE)
    data = {"csrf_token": token, "op": "save", **fields}
    return await client.post(PAGE, data=data, allow_redirects=False)


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


# ------------------------------------------------------------------ the page
async def test_admin_sees_every_stage_in_chinese_with_the_non_retroactive_notice(admin):
    resp = await admin.get(PAGE)
    assert resp.status == 200
    page = await resp.text()
    text = _text(page)
    for label in (
        "已提交",
        "社区已核实",
        "已受理",
        "已认领",
        "已重新打开",
        "对接爱心资源中 / 已派单 / 办理中",
        "爱心认领答复",
        "满意度回访",
        "仅微心愿",
        "仅微实事",
        "两类通用",
    ):
        assert label in text, label
    # the defaults, row by row: community verification 1 working day, completion 15 / 30, offer 24 h, survey 3 days
    rows = re.findall(r'<tr id="p-([a-z_]+)-([a-z_]+)">(.*?)</tr>', page, re.S)
    cells = {(k, s): " ".join(_text(body).split()) for k, s, body in rows}
    assert len(cells) == len(sla.DEFAULT_POLICIES)
    assert "1 工作日 提前 4 小时提醒" in cells[("any", "submitted")]
    assert "15 工作日 提前 48 小时提醒" in cells[("micro_wish", "completion")]
    assert "30 工作日 提前 72 小时提醒" in cells[("micro_project", "completion")]
    assert "24 小时 提前 4 小时提醒" in cells[("any", "offer")]
    assert "3 自然日 提前 24 小时提醒" in cells[("any", "survey")]
    assert "修改不溯及既往" in text and "恢复默认" in text
    assert (
        page.count('name="op" value="save"') == len(sla.DEFAULT_POLICIES) + 1
    )  # each row + the override form


async def test_admin_navigation_links_the_deadlines_page(admin):
    for path in ("/staff/admin/staff", "/staff/admin/categories"):
        page = await (await admin.get(path)).text()
        assert f'href="{PAGE}"' in page and "办理时限" in page, path


# ------------------------------------------------------------------ editing
async def test_edit_is_stored_shown_and_audited_old_to_new(admin, sessions):
    resp = await _save(
        admin, kind="any", stage="verified", amount="5", unit="working_days", remind_before_hours="12"
    )
    assert resp.status == 302 and resp.headers["Location"] == PAGE
    page = _text(await (await admin.get(PAGE)).text())
    assert "3工作日，提前8小时提醒 → 5工作日，提前12小时提醒" in page
    assert "默认 3工作日，提前8小时提醒" in page  # the changed row still shows what the default was
    assert await _policy(sessions, "any", "verified") == sla.Policy("any", "verified", 5, "working_days", 12)
    (entry,) = await _audits(sessions)
    assert entry.action == "admin_sla_policy" and entry.staff_id is not None
    assert "社区已核实" in entry.detail and "3工作日，提前8小时提醒 → 5工作日，提前12小时提醒" in entry.detail
    # saving the same values again changes nothing and writes no audit entry
    await _save(
        admin, kind="any", stage="verified", amount="5", unit="working_days", remind_before_hours="12"
    )
    assert len(await _audits(sessions)) == 1


async def test_full_width_digits_from_a_chinese_keyboard_are_accepted(admin, sessions):
    resp = await _save(
        admin, kind="any", stage="offer", amount="３６", unit="hours", remind_before_hours="６"
    )
    assert resp.status == 302
    assert await _policy(sessions, "any", "offer") == sla.Policy("any", "offer", 36, "hours", 6)


INVALID = [
    ({"amount": "0"}, "时限须为正整数"),
    ({"amount": "-1"}, "时限须为正整数"),
    ({"amount": "1.5"}, "时限须为正整数"),
    ({"amount": "三"}, "时限须为正整数"),
    ({"amount": ""}, "时限须为正整数"),
    ({"amount": "61"}, "时限最长60工作日"),
    ({"amount": "721", "unit": "hours", "remind_before_hours": "4"}, "时限最长720小时"),
    ({"unit": "weeks"}, "单位须为工作日、工作小时、小时或自然日"),
    ({"remind_before_hours": "0"}, "提前提醒小时数须为正整数"),
    ({"remind_before_hours": "721"}, "提前提醒最多720小时"),
    ({"amount": "1", "remind_before_hours": "18"}, "提前提醒须短于时限本身"),
    ({"amount": "24", "unit": "hours", "remind_before_hours": "24"}, "提前提醒须短于时限本身"),
    ({"stage": "offer", "kind": "micro_wish"}, "两类诉求通用，不能单独设置"),
    ({"stage": "nonsense"}, "阶段不正确"),
    ({"kind": "everyone"}, "诉求类型不正确"),
]


@pytest.mark.parametrize(("bad", "message"), INVALID)
async def test_invalid_input_is_refused_with_the_reason_and_nothing_changes(admin, sessions, bad, message):
    before = await _policies(sessions)
    fields = {
        "kind": "any",
        "stage": "submitted",
        "amount": "2",
        "unit": "working_days",
        "remind_before_hours": "4",
        **bad,
    }
    resp = await _save(admin, **fields)
    assert resp.status == 400
    page = await resp.text()
    assert message in _text(page) and "未保存" in page
    if fields["amount"] and fields["kind"] == "any" and fields["stage"] == "submitted":
        # the edited row's form comes back open with what was typed
        assert f'value="{html.escape(fields["amount"])}"' in page
    assert await _policies(sessions) == before
    assert await _audits(sessions) == []


async def test_every_wrong_field_is_reported_at_once(admin, sessions):
    resp = await _save(admin, kind="any", stage="claimed", amount="x", unit="weeks", remind_before_hours="-3")
    text = _text(await resp.text())
    assert resp.status == 400
    assert "时限须为正整数" in text and "单位须为" in text and "提前提醒小时数须为正整数" in text


# ------------------------------------------------------------------ who may do what
@pytest.mark.parametrize("role", ["community_worker", "town_staff", "town_supervisor", "city_supervisor"])
async def test_other_roles_read_the_table_but_cannot_change_it(client, sessions, role):
    await add_staff(sessions, "u1", role, town=None if role == "city_supervisor" else TOWN)
    await sign_in(client, "u1")
    resp = await client.get(PAGE)
    assert resp.status == 200
    page = await resp.text()
    assert "社区已核实" in page and "时限由系统管理员设置" in page
    assert 'value="save"' not in page and 'value="restore"' not in page and "/staff/admin/staff" not in page
    before = await _policies(sessions)
    token = await csrf(client, "/staff/cases")
    for data in (
        {
            "op": "save",
            "kind": "any",
            "stage": "submitted",
            "amount": "9",
            "unit": "working_days",
            "remind_before_hours": "4",
        },
        {"op": "restore"},
        {"op": "delete", "kind": "micro_project", "stage": "submitted"},
    ):
        resp = await client.post(PAGE, data={"csrf_token": token, **data}, allow_redirects=False)
        assert resp.status == 403, data
    assert await _policies(sessions) == before
    assert await _audits(sessions) == []


async def test_signed_out_goes_to_login_and_cannot_post(client, sessions):
    resp = await client.get(PAGE, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login")
    resp = await client.post(PAGE, data={"op": "restore"}, allow_redirects=False)
    assert resp.status == 403


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_forms_without_a_valid_csrf_token_are_refused(admin, sessions, token):
    async with transaction(sessions) as db:
        await sla.save_policy(
            db, kind="any", stage="claimed", amount=9, unit="working_days", remind_before_hours=24
        )
    before = await _policies(sessions)
    extra = {"csrf_token": token} if token else {}
    for data in (
        {
            "op": "save",
            "kind": "any",
            "stage": "submitted",
            "amount": "9",
            "unit": "working_days",
            "remind_before_hours": "4",
        },
        {"op": "restore"},
    ):
        resp = await admin.post(PAGE, data={**extra, **data}, allow_redirects=False)
        assert resp.status == 403, data
    assert await _policies(sessions) == before
    assert await _audits(sessions) == []


# ------------------------------------------------------------------ effect on deadlines
@pytest.mark.parametrize(
    ("amount", "unit", "deadline"),
    [
        ("3", "working_days", datetime(2024, 6, 6, 18, 0, tzinfo=CHINA)),  # Thursday 18:00
        ("5", "working_hours", datetime(2024, 6, 3, 15, 0, tzinfo=CHINA)),  # Monday 15:00
        ("30", "hours", datetime(2024, 6, 4, 16, 0, tzinfo=CHINA)),  # Tuesday 16:00
        ("2", "days", datetime(2024, 6, 5, 10, 0, tzinfo=CHINA)),  # Wednesday 10:00
    ],
)
async def test_a_case_after_the_edit_gets_the_new_deadline_earlier_ones_keep_theirs(
    admin, sessions, amount, unit, deadline
):
    async with transaction(sessions) as db:
        before = await create_case(
            db, kind="micro_wish", description="轮椅", town=TOWN, resident_id=None, now=MONDAY_10
        )
    assert before.stage_deadline == datetime(2024, 6, 4, 18, 0, tzinfo=CHINA)  # the default: 1 working day

    resp = await _save(
        admin, kind="any", stage="submitted", amount=amount, unit=unit, remind_before_hours="1"
    )
    assert resp.status == 302

    async with transaction(sessions) as db:
        case = await create_case(
            db, kind="micro_wish", description="助听器", town=TOWN, resident_id=None, now=MONDAY_10
        )
        await sla.restart_clock(db, case=case, from_status=None, to_status="submitted", now=MONDAY_10)
    async with sessions() as db:
        fresh = await db.get(Case, case.id)
        old = await db.get(Case, before.id)
    assert fresh.stage_deadline == deadline
    assert old.stage_deadline == datetime(2024, 6, 4, 18, 0, tzinfo=CHINA)  # not retroactive


async def test_a_per_kind_override_governs_only_that_kind_and_can_be_removed(admin, sessions):
    resp = await _save(
        admin,
        kind="micro_project",
        stage="verified",
        amount="10",
        unit="working_days",
        remind_before_hours="24",
    )
    assert resp.status == 302
    page = _text(await (await admin.get(PAGE)).text())
    assert "（无） → 10工作日，提前24小时提醒" in page
    assert "删除（改按通用时限）" in page

    async def review_deadline(kind: str) -> datetime | None:
        async with transaction(sessions) as db:
            case = await create_case(
                db, kind=kind, description="路灯坏了", town=TOWN, resident_id=None, now=MONDAY_10
            )
            case.status = "verified"
            await sla.restart_clock(
                db, case=case, from_status="submitted", to_status="verified", now=MONDAY_10
            )
            return case.stage_deadline

    assert await review_deadline("micro_project") == datetime(
        2024, 6, 18, 18, 0, tzinfo=CHINA
    )  # 10 wd; 端午 (6-10) off
    assert await review_deadline("micro_wish") == datetime(
        2024, 6, 6, 18, 0, tzinfo=CHINA
    )  # the general 3 wd

    token = await csrf(admin, PAGE)
    resp = await admin.post(
        PAGE,
        data={"csrf_token": token, "op": "delete", "kind": "micro_project", "stage": "verified"},
        allow_redirects=False,
    )
    assert resp.status == 302
    assert await review_deadline("micro_project") == datetime(2024, 6, 6, 18, 0, tzinfo=CHINA)
    details = [a.detail for a in await _audits(sessions)]
    assert len(details) == 2 and "按两类通用的时限" in details[1] and "仅微实事" in details[1]


async def test_restore_defaults_undoes_edits_and_overrides_and_audits_each(admin, sessions):
    await _save(
        admin, kind="any", stage="submitted", amount="2", unit="working_days", remind_before_hours="6"
    )
    await _save(admin, kind="any", stage="survey", amount="5", unit="days", remind_before_hours="48")
    await _save(
        admin, kind="micro_wish", stage="claimed", amount="4", unit="working_days", remind_before_hours="8"
    )
    assert len(await _audits(sessions)) == 3

    token = await csrf(admin, PAGE)
    resp = await admin.post(PAGE, data={"csrf_token": token, "op": "restore"}, allow_redirects=False)
    assert resp.status == 302
    page = _text(await (await admin.get(PAGE)).text())
    assert "已恢复默认，3项时限有改动" in page
    assert {(p.kind, p.stage): p for p in await _policies(sessions)} == {
        (p.kind, p.stage): p for p in sla.DEFAULT_POLICIES
    }
    async with sessions() as db:
        rows = list(await db.exec(select(SlaPolicy)))
    assert {(r.kind, r.stage) for r in rows} == {(p.kind, p.stage) for p in sla.DEFAULT_POLICIES}
    restored = [a.detail for a in await _audits(sessions) if a.action == "admin_sla_restore"]
    assert len(restored) == 3
    assert any("2工作日，提前6小时提醒 → 1工作日，提前4小时提醒" in d for d in restored)
    assert any("仅微心愿" in d and "按两类通用的时限" in d for d in restored)

    # nothing left to restore: no change, no audit entry
    token = await csrf(admin, PAGE)
    await admin.post(PAGE, data={"csrf_token": token, "op": "restore"}, allow_redirects=False)
    assert "没有改动" in _text(await (await admin.get(PAGE)).text())
    assert len(await _audits(sessions)) == 6
