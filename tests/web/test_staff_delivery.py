"""Delivery made visible to staff: the messages of a case, failed and unreachable ones with a retry button, the
/staff/outbox page, the flags (电话联系 / 低分回访 / 无人认领) with their queue filter and clearing, the stage deadline.

Most tests run the staff routes in process (SQLite); the last one runs the whole system with the WeChat simulator
over real HTTP: an unsubscribed resident (43004) → flag and "无法送达" on the case page → the resident follows
the account again → "重新发送" delivers the message → staff clear the flag after phoning."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import AuditLog, Case, CaseEvent, Outbox, Resident, Resource
from tests.factories import NOW, OTHER, PASSWORD, TOWN, add_case, add_staff
from tests.helpers import (
    NOWHERE,
    bound_socket,
    csrf,
    make_settings,
    port_of,
    settle,
    sign_in,
    staff_client,
    start_system,
    stop_system,
)


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    return await staff_client(tmp_path, aiohttp_client, "delivery.sqlite3")


@pytest.fixture
def sessions(client):
    return client.app[keys.SESSIONS]


async def _outbox(
    sessions,
    case: Case | None,
    *,
    status: str,
    recipient: str = "resident",
    openid=None,
    error: str | None = None,
    kind: str = "progress",
    channel: str | None = None,
) -> Outbox:
    async with transaction(sessions) as db:
        if openid is None:
            resident = await db.get(Resident, case.resident_id)
            openid = resident.openid
        row = Outbox(
            openid=openid,
            recipient_type=recipient,
            kind=kind,
            text=f"{kind} 消息内容",
            status=status,
            last_error=error,
            case_id=case.id if case else None,
            attempts=6 if error else 1,
            channel=channel,
            created_at=NOW,
            next_attempt_at=NOW,
        )
        db.add(row)
        await db.flush()
        return row


async def _logout(client) -> None:
    await client.post("/staff/logout", data={"csrf_token": await csrf(client, "/staff/account")})


def _section(page: str, ident: str) -> str:
    m = re.search(rf'<section class="card" id="{ident}">(.*?)</section>', page, re.S)
    assert m, page[:300]
    return m.group(1)


def _outbox_ids(page: str) -> set[int]:
    return {int(x) for x in re.findall(r'data-outbox="(\d+)"', page)}


# ------------------------------------------------------------------ the case page lists its messages
async def test_case_page_lists_messages_and_explains_failures(client, sessions):
    me = await add_staff(sessions, "ts", "town_staff")
    case = await add_case(sessions)
    async with transaction(sessions) as db:
        db.add(
            Resource(key="r1", kind="enterprise", name="厚街爱心米行", home_town=TOWN, openid="o-volunteer-1")
        )
        staff = await db.get(type(me), me.id)
        staff.openid = "o-staff-ts-0001"
    sent = await _outbox(sessions, case, status="sent", channel="custom")
    gone = await _outbox(sessions, case, status="unreachable", error="43004 require subscribe")
    busy = await _outbox(
        sessions,
        case,
        status="failed",
        recipient="staff",
        openid="o-staff-ts-0001",
        error="-1 system error",
        kind="reminder",
    )
    offer = await _outbox(
        sessions, case, status="pending", recipient="volunteer", openid="o-volunteer-1", kind="offer"
    )
    other_case = await add_case(sessions)
    elsewhere = await _outbox(sessions, other_case, status="failed", error="-1 system error")

    await sign_in(client, "ts")
    page = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    panel = _section(page, "deliveries")
    assert _outbox_ids(panel) == {sent.id, gone.id, busy.id, offer.id}  # only this case's messages
    assert elsewhere.id not in _outbox_ids(panel)
    assert "2条未送达" in panel
    # what, to whom (masked), channel, status, the reason in plain Chinese
    assert "办理进度" in panel and "办理提醒" in panel and "认领邀请" in panel
    assert "居民 138****5678" in panel and "13812345678" not in panel
    assert "工作人员 ts" in panel and "志愿者 厚街爱心米行" in panel
    assert "客服消息" in panel and "已发送" in panel and "待发送" in panel
    assert "无法送达" in panel and "对方已取消关注公众号" in panel
    assert "发送失败" in panel and "微信系统繁忙" in panel
    assert "43004" not in panel  # no raw error codes for staff
    # retry buttons only on the failed and unreachable ones, and those rows stand out
    assert set(map(int, re.findall(r'id="retry-(\d+)"', panel))) == {gone.id, busy.id}
    assert re.search(rf'class="dl dl-bad" data-outbox="{gone.id}"', panel)
    assert re.search(rf'class="dl" data-outbox="{sent.id}"', panel)


async def test_retry_requeues_and_is_audited(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    case = await add_case(sessions)
    row = await _outbox(sessions, case, status="failed", error="-1 system error")
    await sign_in(client, "ts")
    path = f"/staff/cases/{case.case_no}"
    token = await csrf(client, path)
    resp = await client.post(
        f"/staff/outbox/{row.id}/retry", data={"csrf_token": token, "next": path}, allow_redirects=False
    )
    assert resp.status == 302 and resp.headers["Location"] == path
    await settle(client.app)  # the retry also sends at once; WeChat is unreachable here
    page = await (await client.get(path)).text()
    assert "已重新排队发送" in page
    assert f'id="retry-{row.id}"' not in page and "待发送" in _section(page, "deliveries")
    async with sessions() as db:
        again = await db.get(Outbox, row.id)
        # requeued (attempts from 0), then the immediate send failed once against the closed port: pending again
        assert (again.status, again.attempts) == ("pending", 1) and again.next_attempt_at >= NOW
        log = (await db.exec(select(AuditLog).where(AuditLog.action == "outbox_retry"))).one()
        assert log.case_id == case.id and "发送失败" in log.detail


@pytest.mark.parametrize("token", [None, "forged"])
async def test_retry_without_csrf_changes_nothing(client, sessions, token):
    await add_staff(sessions, "ts", "town_staff")
    case = await add_case(sessions)
    row = await _outbox(sessions, case, status="unreachable", error="43004 require subscribe")
    await sign_in(client, "ts")
    data = {"csrf_token": token} if token else {}
    resp = await client.post(f"/staff/outbox/{row.id}/retry", data=data, allow_redirects=False)
    assert resp.status == 403
    async with sessions() as db:
        assert (await db.get(Outbox, row.id)).status == "unreachable"


async def test_retry_of_another_towns_message_is_404(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    far = await add_case(sessions, town=OTHER)
    row = await _outbox(sessions, far, status="failed", error="-1 system error")
    await sign_in(client, "ts")
    token = await csrf(client, "/staff/outbox")
    resp = await client.post(
        f"/staff/outbox/{row.id}/retry", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 404
    async with sessions() as db:
        assert (await db.get(Outbox, row.id)).status == "failed"
        assert (await db.exec(select(AuditLog).where(AuditLog.action == "outbox_retry"))).first() is None


async def test_retry_of_a_sent_message_is_refused(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    case = await add_case(sessions)
    row = await _outbox(sessions, case, status="sent", channel="template")
    await sign_in(client, "ts")
    token = await csrf(client, "/staff/outbox")
    resp = await client.post(f"/staff/outbox/{row.id}/retry", data={"csrf_token": token})
    assert "这条消息已发送，不需要重新发送" in await resp.text()
    async with sessions() as db:
        assert (await db.get(Outbox, row.id)).status == "sent"


# ------------------------------------------------------------------ /staff/outbox: who sees which failures
async def test_outbox_page_scope_by_role(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    await add_staff(sessions, "cw", "community_worker")
    sup = await add_staff(sessions, "sup", "town_supervisor")
    await add_staff(sessions, "city", "city_supervisor", town=None)
    far_staff = await add_staff(sessions, "hm", "town_staff", town=OTHER)
    async with transaction(sessions) as db:
        for s, openid in ((sup, "o-sup-000001"), (far_staff, "o-hm-0000001")):
            row = await db.get(type(s), s.id)
            row.openid = openid
    own = await add_case(sessions)
    other_comm = await add_case(sessions, community="河田社区")
    far = await add_case(sessions, town=OTHER)
    f_own = await _outbox(sessions, own, status="failed", error="-1 system error")
    f_comm = await _outbox(sessions, other_comm, status="unreachable", error="43004 require subscribe")
    f_far = await _outbox(sessions, far, status="failed", error="-1 system error")
    ok_own = await _outbox(sessions, own, status="sent")
    digest_own = await _outbox(
        sessions,
        None,
        status="failed",
        recipient="staff",
        openid="o-sup-000001",
        kind="digest",
        error="45047 out of response count limit",
    )
    digest_far = await _outbox(
        sessions,
        None,
        status="failed",
        recipient="staff",
        openid="o-hm-0000001",
        kind="digest",
        error="-1 system error",
    )
    expected = {
        "cw": {f_own.id},
        "ts": {f_own.id, f_comm.id},
        "sup": {f_own.id, f_comm.id, digest_own.id},
        "city": {f_own.id, f_comm.id, f_far.id, digest_own.id, digest_far.id},
    }
    for user, ids in expected.items():
        await sign_in(client, user)
        page = await (await client.get("/staff/outbox")).text()
        assert _outbox_ids(page) == ids, user
        assert ok_own.id not in _outbox_ids(page)
        assert set(map(int, re.findall(r'id="retry-(\d+)"', page))) == ids
        await _logout(client)
    # the supervisor may retry the town's digest; the town's other staff may not even see it
    await sign_in(client, "ts")
    token = await csrf(client, "/staff/outbox")
    resp = await client.post(
        f"/staff/outbox/{digest_own.id}/retry", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 404
    await _logout(client)
    await sign_in(client, "sup")
    page = await (await client.get("/staff/outbox")).text()
    assert "每日待办" in page and "客服消息已超过微信的条数限制" in page and own.case_no in page
    token = await csrf(client, "/staff/outbox")
    resp = await client.post(
        f"/staff/outbox/{digest_own.id}/retry", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 302
    await settle(client.app)
    async with sessions() as db:
        assert (await db.get(Outbox, digest_own.id)).status == "pending"


async def test_outbox_page_needs_sign_in(client, sessions):
    resp = await client.get("/staff/outbox", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login")


# ------------------------------------------------------------------ flags
async def _flag(sessions, case: Case, flag: str, status: str | None = None) -> None:
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        c.flag = flag
        if status:
            c.status = status


async def test_queue_flag_badges_and_filter(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    phone = await add_case(sessions, desc="要打电话的")
    low = await add_case(sessions, desc="评价很低的")
    none_left = await add_case(sessions, desc="没人认领的")
    plain = await add_case(sessions, desc="普通的")
    far = await add_case(sessions, town=OTHER, desc="虎门的")
    await _flag(sessions, phone, "phone_needed")
    await _flag(sessions, low, "low_score", status="closed")  # a low score comes after the case is finished
    await _flag(sessions, none_left, "match_exhausted", status="matching")
    await _flag(sessions, far, "phone_needed")
    await sign_in(client, "ts")
    page = await (await client.get("/staff/cases")).text()
    chips = dict(re.findall(r'data-flag="(\w+)">[^<]*<b>(\d+)</b>', page))
    assert chips == {"phone_needed": "1", "low_score": "1", "match_exhausted": "1"}  # not the other town's
    row = re.search(rf'data-case="{phone.case_no}">(.*?)</li>', page, re.S).group(1)
    assert "请电话联系居民" in row
    for flag, case, label in (
        ("phone_needed", phone, "请电话联系居民"),
        ("low_score", low, "低分回访"),
        ("match_exhausted", none_left, "无人认领，需人工处理"),
    ):
        page = await (await client.get("/staff/cases", params={"flag": flag})).text()
        listed = set(re.findall(r'data-case="([^"]+)"', page))
        assert listed == {case.case_no}, flag
        assert f"正在查看：{label}" in page
    assert plain.case_no not in listed and far.case_no not in listed
    # an unknown flag is ignored: the ordinary queue
    page = await (await client.get("/staff/cases", params={"flag": "nonsense"})).text()
    assert plain.case_no in page and "正在查看" not in page


async def test_clear_flag_with_note_writes_the_timeline(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    case = await add_case(sessions)
    await _flag(sessions, case, "phone_needed")
    await sign_in(client, "ts")
    path = f"/staff/cases/{case.case_no}"
    page = await (await client.get(path)).text()
    assert 'id="flag"' in page and "请电话联系居民" in page
    token = await csrf(client, path)
    # a note is required
    resp = await client.post(f"{path}/flag", data={"csrf_token": token, "flag": "phone_needed", "note": "  "})
    assert "请写明处理情况" in await resp.text()
    async with sessions() as db:
        assert (await db.get(Case, case.id)).flag == "phone_needed"
    resp = await client.post(
        f"{path}/flag",
        data={"csrf_token": token, "flag": "phone_needed", "note": "已电话联系，居民知道进度了"},
    )
    page = await resp.text()
    assert 'id="flag"' not in page and "已处理“请电话联系居民”" in page
    timeline = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', page, re.S).group(1)
    assert "已处理“请电话联系居民”：已电话联系，居民知道进度了" in timeline and "ts" in timeline
    async with sessions() as db:
        assert (await db.get(Case, case.id)).flag is None
        event = (await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()[-1]
        assert event.data == {"flag_cleared": "phone_needed"} and event.actor_name == "ts"
        log = (await db.exec(select(AuditLog).where(AuditLog.action == "case_clear_flag"))).one()
        assert log.case_id == case.id
    # clearing again: nothing to clear
    resp = await client.post(f"{path}/flag", data={"csrf_token": token, "note": "再来一次"})
    assert "没有待处理的标记" in await resp.text()


async def test_clear_flag_refused_by_url_for_another_town_and_withoutcsrf(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    far = await add_case(sessions, town=OTHER)
    own = await add_case(sessions)
    await _flag(sessions, far, "low_score")
    await _flag(sessions, own, "low_score")
    await sign_in(client, "ts")
    token = await csrf(client, "/staff/cases")
    resp = await client.post(
        f"/staff/cases/{far.case_no}/flag", data={"csrf_token": token, "note": "x"}, allow_redirects=False
    )
    assert resp.status == 404
    resp = await client.post(f"/staff/cases/{own.case_no}/flag", data={"note": "x"}, allow_redirects=False)
    assert resp.status == 403
    async with sessions() as db:
        assert (await db.get(Case, far.id)).flag == "low_score"
        assert (await db.get(Case, own.id)).flag == "low_score"


async def test_clear_flag_refused_when_the_flag_changed_meanwhile(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    case = await add_case(sessions)
    await _flag(sessions, case, "low_score")
    await sign_in(client, "ts")
    path = f"/staff/cases/{case.case_no}"
    token = await csrf(client, path)
    await _flag(sessions, case, "phone_needed")  # the page was opened before the new flag arrived
    resp = await client.post(
        f"{path}/flag", data={"csrf_token": token, "flag": "low_score", "note": "已回访"}
    )
    assert "标记已经变化" in await resp.text()
    async with sessions() as db:
        assert (await db.get(Case, case.id)).flag == "phone_needed"


# ------------------------------------------------------------------ the stage deadline on the case page
@pytest.mark.parametrize(
    ("status", "offset", "paused", "state", "shown", "absent"),
    [
        (
            "accepted",
            timedelta(hours=-1),
            False,
            "overdue",
            ["已超时", "03-02 09:00"],
            ["即将到期", "计时暂停"],
        ),
        ("accepted", timedelta(hours=3), False, "soon", ["即将到期", "03-02 13:00"], ["已超时", "计时暂停"]),
        ("claimed", timedelta(days=3), False, "ok", ["03-05 10:00"], ["已超时", "即将到期", "计时暂停"]),
        # waiting for the resident: the clock stands still, so a deadline an hour away is not "soon"
        (
            "claimed",
            timedelta(hours=1),
            True,
            "paused",
            ["计时暂停", "正在等待居民回复", "自 03-02 10:00 起"],
            ["已超时", "即将到期"],
        ),
        # … but a stage that was already late when the question went out stays late
        (
            "claimed",
            timedelta(hours=-5),
            True,
            "paused_overdue",
            ["计时暂停", "已超时", "03-02 05:00"],
            ["即将到期"],
        ),
    ],
)
async def test_case_page_shows_stage_deadline(client, sessions, status, offset, paused, state, shown, absent):
    me = await add_staff(sessions, "ts", "town_staff")
    case = await add_case(
        sessions, status=status, owner=me.id if status == "claimed" else None, deadline=NOW + offset
    )
    if paused:
        async with transaction(sessions) as db:
            c = await db.get(Case, case.id)
            c.awaiting_resident = True
            c.paused_at = NOW  # 10:00 China time
    await sign_in(client, "ts")
    page = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    block = re.search(r'<p class="deadline dl-(\w+)" id="deadline">(.*?)</p>', page, re.S)
    assert block, "no deadline shown"
    assert block.group(1) == state
    for text in shown:
        assert text in block.group(2), text
    for text in absent:
        assert text not in block.group(2), text


async def test_finished_case_shows_no_deadline(client, sessions):
    await add_staff(sessions, "ts", "town_staff")
    case = await add_case(sessions, status="closed", deadline=NOW - timedelta(days=1))
    await sign_in(client, "ts")
    page = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    assert 'id="deadline"' not in page and "已超时" not in page


# ------------------------------------------------------------------ end to end with the WeChat simulator
@pytest.fixture
async def live(db_url: str, tmp_path: Path) -> AsyncIterator:
    sim_sock, bot_sock = bound_socket(), bound_socket()
    settings = make_settings(
        db_url,
        tmp_path,
        rasa_url=NOWHERE,
        sim_port=port_of(sim_sock),
        base_url=f"http://127.0.0.1:{port_of(bot_sock)}",
    )
    system = await start_system(settings, sim_sock=sim_sock, bot_sock=bot_sock)
    yield system
    await stop_system(system)


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_unsubscribed_resident_flag_retry_and_clear_through_the_simulator(live):
    from bot.cases.access import create_staff
    from bot.cases.lifecycle import notify_resident
    from bot.ops.scheduler import dispatch_now

    sessions = live.app[keys.SESSIONS]
    openid = "o-live-resident-0001"
    async with transaction(sessions) as db:
        await create_staff(
            db, username="ts", password=PASSWORD, role="town_staff", town=TOWN, display_name="小李"
        )
        resident = Resident(openid=openid, phone="13912345678")
        db.add(resident)
        await db.flush()
        from bot.cases.numbering import create_case

        case = await create_case(
            db,
            kind="micro_wish",
            description="老人需要助听器",
            town=TOWN,
            resident_id=resident.id,
            community="新围社区",
            now=live.clock(),
        )
        await notify_resident(
            db, case=case, text=f"您的诉求（编号{case.case_no}）已受理。", dedupe_key="t:1", now=live.clock()
        )
    live.sim.set_subscribed(openid, False)
    await dispatch_now(live.app)
    async with sessions() as db:
        row = (await db.exec(select(Outbox).where(Outbox.case_id == case.id))).one()
        assert row.status == "unreachable"
        assert (await db.get(Case, case.id)).flag == "phone_needed"
    assert await live.sent_to(openid) == []

    async with aiohttp.ClientSession(base_url=live.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as web:
        assert (await sign_in(web, "ts")).status == 302
        page = await (await web.get("/staff/cases", params={"flag": "phone_needed"})).text()
        assert f'data-case="{case.case_no}"' in page
        path = f"/staff/cases/{case.case_no}"
        page = await (await web.get(path)).text()
        assert "请电话联系居民" in page and "无法送达" in page and "对方已取消关注公众号" in page
        assert "139****5678" in page and "13912345678" not in page
        page = await (await web.get("/staff/outbox")).text()
        assert _outbox_ids(page) == {row.id}

        live.sim.set_subscribed(openid, True)  # the resident follows the account again
        token = await csrf(web, path)
        resp = await web.post(f"/staff/outbox/{row.id}/retry", data={"csrf_token": token, "next": path})
        assert "已重新排队发送" in await resp.text()

        async def delivered() -> bool:
            return len(await live.sent_to(openid)) == 1

        await _wait_for(delivered)
        sent = (await live.sent_to(openid))[0]
        assert case.case_no in sent.display()
        await _wait_for(lambda: _status_is(sessions, row.id, "sent"))
        page = await (await web.get("/staff/outbox")).text()
        assert row.id not in _outbox_ids(page) and "没有未送达的消息" in page

        resp = await web.post(
            f"{path}/flag",
            data={"csrf_token": token, "flag": "phone_needed", "note": "已电话联系，居民重新关注了公众号"},
        )
        page = await resp.text()
        assert 'id="flag"' not in page and "已处理“请电话联系居民”：已电话联系" in page
    async with sessions() as db:
        assert (await db.get(Case, case.id)).flag is None


async def _status_is(sessions, outbox_id: int, status: str) -> bool:
    async with sessions() as db:
        return (await db.get(Outbox, outbox_id)).status == status
