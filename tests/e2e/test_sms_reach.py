"""Reaching residents without WeChat, the rest of it, through the real app, the WeChat and SMS simulators on real
ports and the app's injected clock: survey reminders by SMS with a short signed link (a page that opens without
sign-in, expires, takes one answer and shows nothing about the resident); a text the provider reports undelivered
becomes a call task; a WeChat message that fails for good goes by SMS; the web query's codes count against the
per-number SMS limit and the page answers the same whether or not the number matches; call tasks and call-back
requests share one queue page and one deadline ladder (reminder, then escalation to the town supervisor); and what
a person must act on lands in waking hours (issue 11: no deadline or reminder at 02:15)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot import keys
from bot.cases.actors import Actor
from bot.cases.lifecycle import notify_resident, transition
from bot.cases.numbering import create_case
from bot.db import transaction
from bot.models import AuditLog, CallBack, CallTask, Case, Outbox, Resident, Staff, Survey
from bot.ops.scheduler import dispatch_now, sweep_job
from tests.factories import mk_staff
from tests.helpers import PASSWORD, running_system, sign_in
from wechat_sim.sms import SIM_SMS

PHONE = "13826951234"
TOWN = "厚街镇"
TOKEN = "cb-0123456789abcdef"
CHINA = timezone(timedelta(hours=8))
SIGN = "【大莞家】"


# ---------------------------------------------------------------------------------------------- helpers
def _set_china_time(system: Any, *when: int) -> datetime:
    """Move the app's clock (and the SMS provider's) to a China local time."""
    target = datetime(*when, tzinfo=CHINA)  # type: ignore[misc]
    system.clock.offset = target - datetime.now(UTC)
    system.sim_app[SIM_SMS].clock = lambda: system.clock().timestamp()
    return target


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def _staff(system: Any) -> tuple[Staff, Staff]:
    async with transaction(system.app[keys.SESSIONS]) as db:
        ts = await mk_staff(db, "ts", town=TOWN, openid="o-staff-ts")
        sup = await mk_staff(db, "sup", role="town_supervisor", town=TOWN, openid="o-staff-sup")
        await mk_staff(db, "far", town="虎门镇", openid="o-staff-far")
    return ts, sup


async def _case_in_progress(system: Any, staff: Staff, *, resident_id: int | None = None) -> Case:
    async with transaction(system.app[keys.SESSIONS]) as db:
        case = await create_case(
            db,
            kind="micro_wish",
            description="想要一辆轮椅",
            now=system.clock(),
            town=TOWN,
            resident_id=resident_id,
            channel="hotline_12345" if resident_id is None else "wechat",
            contact_phone=PHONE,
            community="新围社区",
        )
        case.status = "in_progress"
        case.claimed_by_id = staff.id
        case.stage_deadline = None  # only the deadlines under test run here
        await db.flush()
        return case


async def _complete(system: Any, case: Case, staff: Staff) -> None:
    async with transaction(system.app[keys.SESSIONS]) as db:
        fresh = await db.get(Case, case.id)
        await transition(
            db,
            case=fresh,
            action="complete",
            actor=Actor.of_staff(staff),
            note="轮椅已送到",
            now=system.clock(),
        )


async def _sweep(system: Any) -> None:
    """The scheduler's own sweep job, on the app's clock and settings."""
    await sweep_job(
        sessions=system.app[keys.SESSIONS], clock=system.clock, hook=None, settings=system.app[keys.SETTINGS]
    )


def _texts(system: Any, phone: str = PHONE) -> list[tuple[str, list[str]]]:
    return [(s.template_id, s.params) for s in system.sim_app[SIM_SMS].sent if s.phone == phone]


async def _one(system: Any, model: Any, *where: Any) -> Any:
    async with system.app[keys.SESSIONS]() as db:
        return (await db.exec(select(model).where(*where))).one()


async def _all(system: Any, model: Any, *where: Any) -> list[Any]:
    async with system.app[keys.SESSIONS]() as db:
        return list((await db.exec(select(model).where(*where))).all())


def _segments(text: str) -> int:
    """Parts of a text message, counted by hand: 70 characters with the signature fit one, else parts of 67."""
    n = len(SIGN + text)
    return 1 if n <= 70 else (n + 66) // 67


def _rendered(template: str, params: list[str]) -> str:
    """What the resident's phone shows, from the approved wording filed with the provider."""
    from bot.delivery.sms import TEMPLATES

    text = TEMPLATES[template][1]
    for i, value in enumerate(params, start=1):
        text = text.replace(f"{{{i}}}", value)
    return text


def _browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, page[:500]
    return m.group(1)


# ---------------------------------------------------------------------------------------------- 1. survey by SMS
async def test_the_sms_survey_is_reminded_by_sms_and_answered_once_on_a_short_signed_page(
    db_url: str, tmp_path: Path
) -> None:
    async with running_system(db_url, tmp_path) as system:
        start = _set_china_time(system, 2026, 12, 7, 10, 0)  # a Monday morning
        ts, _ = await _staff(system)
        case = await _case_in_progress(system, ts)
        await _complete(system, case, ts)
        await dispatch_now(system.app)
        [_, (template, params)] = _texts(system)
        assert template == "survey_link" and params[0] == case.case_no
        link = params[1]
        assert re.fullmatch(re.escape(system.bot_url) + r"/s/[0-9a-z]{16,24}", link)
        assert _segments(_rendered(template, params)) <= 2

        # the survey runs 3 days; 24 hours before its end the resident is reminded, by SMS, once
        system.clock.offset += timedelta(days=1, hours=23)
        await _sweep(system)
        await dispatch_now(system.app)
        assert len(_texts(system)) == 2  # not yet
        system.clock.offset += timedelta(hours=2)
        await _sweep(system)
        await _sweep(system)
        await dispatch_now(system.app)
        reminders = _texts(system)[2:]
        assert [t for t, _ in reminders] == ["survey_reminder_link"] and reminders[0][1][0] == case.case_no
        assert _segments(_rendered(*reminders[0])) <= 2
        assert system.clock() - start < timedelta(days=3)

        async with _browser() as web:
            # opens without signing in, and shows nothing about the resident or the case
            resp = await web.get(link)
            page = await resp.text()
            assert resp.status == 200 and 'id="survey-form"' in page
            for private in (case.case_no, PHONE, "138****1234", "轮椅", TOWN):
                assert private not in page
            # a forged or altered token opens nothing
            for bad in (link[:-1] + ("a" if link[-1] != "a" else "b"), link + "0", system.bot_url + "/s/x"):
                assert (await web.get(bad)).status == 403
            resp = await web.post(
                link, data={"csrf_token": _csrf(page), "score": "4", "comment": "很好 电话13800001111"}
            )
            done = await resp.text()
            assert resp.status == 200 and 'id="thanks"' in done and "13800001111" not in done
            # one answer only: a second post changes nothing
            resp = await web.post(link, data={"csrf_token": _csrf(page), "score": "1"})
            assert resp.status == 200 and 'id="thanks"' in await resp.text()
        survey = await _one(system, Survey, Survey.case_id == case.id)
        assert (survey.status, survey.score, survey.via) == ("answered", 4, "page")
        assert (await _one(system, Case, Case.id == case.id)).status == "closed"

        # the link expires (seven days)
        system.clock.offset += timedelta(days=8)
        async with _browser() as web:
            assert (await web.get(link)).status == 403


# ---------------------------------------------------------------------------------------------- 3. nothing dropped
@pytest.mark.parametrize("provider", ["tencent", "aliyun"])
async def test_a_text_reported_undelivered_becomes_a_call_task(
    db_url: str, tmp_path: Path, provider: str
) -> None:
    extra = (
        {"sms_provider": "aliyun", "sms_key_id": "LTAIsimulator", "sms_key_secret": "simulator-aliyun-secret"}
        if provider == "aliyun"
        else {}
    )
    async with running_system(db_url, tmp_path, sms_callback_token=TOKEN, **extra) as system:
        _set_china_time(system, 2026, 12, 7, 10, 0)
        callback = f"{system.bot_url}/sms/callback/{provider}/{TOKEN}"
        system.sim_app[SIM_SMS].receipt_url = callback
        ts, _ = await _staff(system)
        case = await _case_in_progress(system, ts)
        system.sim_app[SIM_SMS].faults.append(
            {"provider": provider, "code": "UNDELIV", "times": 1, "stage": "receipt"}
        )
        async with transaction(system.app[keys.SESSIONS]) as db:
            await notify_resident(
                db,
                case=await db.get(Case, case.id),
                text="您的诉求正在办理。",
                dedupe_key="t:lost",
                now=system.clock(),
            )
        await dispatch_now(system.app)
        assert len(_texts(system)) == 1  # the provider took it

        async def parked() -> bool:
            return (await _one(system, Outbox, Outbox.case_id == case.id)).status == "unreachable"

        await _until(parked)
        row = await _one(system, Outbox, Outbox.case_id == case.id)
        assert row.receipt == "undelivered: UNDELIV" and "UNDELIV" in (row.last_error or "")
        [task] = await _all(system, CallTask, CallTask.case_id == case.id)
        assert task.done_at is None and task.phone == PHONE and "短信未送达" in task.reason
        assert (await _one(system, Case, Case.id == case.id)).flag == "phone_needed"

        async with aiohttp.ClientSession(
            base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as web:
            assert (await sign_in(web, "ts", PASSWORD)).status == 302
            outbox = await (await web.get("/staff/outbox")).text()
            assert f'data-outbox="{row.id}"' in outbox  # parked where staff can resend it
            calls = await (await web.get("/staff/calls")).text()
            assert case.case_no in calls and "短信未送达" in calls


async def test_a_wechat_message_that_fails_for_good_goes_by_sms(db_url: str, tmp_path: Path) -> None:
    async with running_system(db_url, tmp_path) as system:
        _set_china_time(system, 2026, 12, 7, 10, 0)
        ts, _ = await _staff(system)
        openid = "o-fails-for-good-01"
        async with transaction(system.app[keys.SESSIONS]) as db:
            resident = Resident(openid=openid, phone=PHONE)
            db.add(resident)
            await db.flush()
        case = await _case_in_progress(system, ts, resident_id=resident.id)
        system.sim.add_fault("*", 40003, times=None)  # "invalid openid": WeChat will never take it
        async with transaction(system.app[keys.SESSIONS]) as db:
            await notify_resident(
                db,
                case=await db.get(Case, case.id),
                text="您的诉求正在办理。",
                dedupe_key="t:40003",
                now=system.clock(),
            )
        await dispatch_now(system.app)
        assert _texts(system) == [("progress", [case.case_no, "办理中"])]
        row = await _one(system, Outbox, Outbox.case_id == case.id)
        assert (row.status, row.channel) == ("sent", "sms")


# ---------------------------------------------------------------------------------------------- 4. query codes
async def _ask(system: Any, web: aiohttp.ClientSession, case_no: str, phone: str) -> tuple[int, str]:
    form = await (await web.get(system.bot_url + "/query")).text()
    resp = await web.post(
        system.bot_url + "/query", data={"csrf_token": _csrf(form), "case_no": case_no, "phone": phone}
    )
    return resp.status, await resp.text()


def _answer_shape(page: str) -> str:
    """The page without what differs between any two visits (tokens)."""
    return re.sub(r'value="[^"]{20,}"', 'value=""', page)


async def test_query_codes_count_against_the_per_number_limit_and_the_page_says_the_same(
    db_url: str, tmp_path: Path
) -> None:
    async with running_system(db_url, tmp_path, sms_per_number_per_hour=2) as system:
        _set_china_time(system, 2026, 12, 7, 10, 1)
        ts, _ = await _staff(system)
        case = await _case_in_progress(system, ts)
        async with _browser() as web:
            # a code counts: after one code, one progress text fills the hour and the next one waits
            status, _ = await _ask(system, web, case.case_no, PHONE)
            assert status == 200
            await _until(lambda: asyncio.sleep(0, result=len(_texts(system)) == 1))
            async with transaction(system.app[keys.SESSIONS]) as db:
                fresh = await db.get(Case, case.id)
                for i in range(2):
                    await notify_resident(
                        db, case=fresh, text=f"进展{i}", dedupe_key=f"t:q:{i}", now=system.clock()
                    )
            await dispatch_now(system.app)
            assert [t for t, _ in _texts(system)] == ["code", "progress"]
            rows = await _all(system, Outbox, Outbox.kind == "progress")
            assert sorted(r.status for r in rows) == ["pending", "sent"]

            # the hour's budget is used: no code goes out, and the page is the same for a matching number and not
            matching = await _ask(system, web, case.case_no, PHONE)
            missing = await _ask(system, web, "MS20991231-0001", PHONE)
            await asyncio.sleep(0.3)  # the code would be sent in the background
            assert [t for t, _ in _texts(system)] == ["code", "progress"]
            assert matching[0] == missing[0] == 200
            assert _answer_shape(matching[1]) == _answer_shape(missing[1])
            codes = await _all(system, Outbox, Outbox.kind == "code")
            assert len(codes) == 1 and codes[0].text.startswith("网页查询验证码")  # never the code itself


# ---------------------------------------------------------------------------------------------- 2 + 5. the call queue
async def _unreachable_case(system: Any, ts: Staff) -> Case:
    openid = "o-nobody-reaches-01"
    async with transaction(system.app[keys.SESSIONS]) as db:
        resident = Resident(openid=openid, phone=PHONE)
        db.add(resident)
        await db.flush()
    case = await _case_in_progress(system, ts, resident_id=resident.id)
    system.sim.set_subscribed(openid, False)
    system.sim_app[SIM_SMS].faults.append(
        {"provider": "tencent", "code": "FailedOperation.PhoneNumberInBlacklist", "times": 5}
    )
    async with transaction(system.app[keys.SESSIONS]) as db:
        await notify_resident(
            db,
            case=await db.get(Case, case.id),
            text="您的诉求正在办理。",
            dedupe_key="t:none",
            now=system.clock(),
        )
    await dispatch_now(system.app)
    return case


async def test_one_call_queue_with_one_deadline_ladder(db_url: str, tmp_path: Path) -> None:
    async with running_system(db_url, tmp_path) as system:
        _set_china_time(system, 2026, 12, 7, 10, 0)  # Monday: a call is due by 18:00 on Tuesday
        ts, sup = await _staff(system)
        case = await _unreachable_case(system, ts)
        [task] = await _all(system, CallTask)
        assert task.due_at == datetime(2026, 12, 8, 18, 0, tzinfo=CHINA)
        async with transaction(system.app[keys.SESSIONS]) as db:
            db.add(
                CallBack(
                    town=TOWN,
                    phone="13900001111",
                    note="我想找个人问问",
                    created_at=system.clock(),
                    due_at=datetime(2026, 12, 8, 12, 0, tzinfo=CHINA),
                )
            )
            db.add(
                CallBack(
                    town="虎门镇",
                    phone="13900002222",
                    note="别的镇",
                    created_at=system.clock(),
                    due_at=datetime(2026, 12, 8, 12, 0, tzinfo=CHINA),
                )
            )

        async with aiohttp.ClientSession(
            base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as web:
            assert (await sign_in(web, "ts", PASSWORD)).status == 302
            page = await (await web.get("/staff/calls")).text()
            rows = re.findall(r'data-call="([a-z]+)-\d+" data-reason="([a-z]+)"', page)
            # both kinds in one list, earliest deadline first, each with its reason; another town's not at all
            assert [reason for _, reason in rows] == ["callback", "calltask"]
            assert "居民要求回电" in page and "电话回访" in page and case.case_no in page
            assert "别的镇" not in page and "139****2222" not in page
            assert "138****1234" in page and PHONE not in page
            for old in ("/staff/callbacks", "/staff/calltasks"):
                assert 'id="calls"' in await (await web.get(old)).text()

        # the ladder: nothing before the lead; the town's staff 4 hours before; the supervisor once it passed
        _set_china_time(system, 2026, 12, 8, 7, 30)
        await _sweep(system)
        await dispatch_now(system.app)
        assert await system.sent_to("o-staff-ts") == [] and await system.sent_to("o-staff-sup") == []
        _set_china_time(system, 2026, 12, 8, 8, 30)  # the call-back (due 12:00) is in its last 4 hours
        await _sweep(system)
        await dispatch_now(system.app)
        to_ts = await system.sent_to("o-staff-ts")
        assert len(to_ts) == 1 and await system.sent_to("o-staff-sup") == []
        _set_china_time(system, 2026, 12, 8, 18, 1)  # both due: the task reminded, both escalated
        await _sweep(system)
        await _sweep(system)  # a second run adds nothing
        await dispatch_now(system.app)
        assert len(await system.sent_to("o-staff-ts")) == 2
        assert len(await system.sent_to("o-staff-sup")) == 2
        # 虎门's staff hear of 虎门's call-back only
        far = await _all(system, Outbox, Outbox.openid == "o-staff-far")
        assert len(far) == 1 and "虎门镇" in far[0].text and case.case_no not in far[0].text
        escalations = await _all(system, Outbox, Outbox.openid == "o-staff-sup")
        assert {r.kind for r in escalations} == {"escalation"}
        assert any(case.case_no in r.text for r in escalations) and all("超时" in r.text for r in escalations)
        assert (await _one(system, CallTask, CallTask.id == task.id)).escalated_at is not None

        async with aiohttp.ClientSession(
            base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as web:
            assert (await sign_in(web, "ts", PASSWORD)).status == 302
            page = await (await web.get("/staff/calls")).text()
            assert page.count("已上报负责人") == 2 and "2条已超期" in page
            # the audited reveal: POST, then back to the page, which shows the number once
            resp = await web.post(f"/staff/calltasks/{task.id}/phone", data={"csrf_token": _csrf(page)})
            assert (
                resp.status == 200 and str(resp.url).endswith("/staff/calls") and PHONE in await resp.text()
            )
            assert PHONE not in await (await web.get("/staff/calls")).text()
        audits = await _all(system, AuditLog, AuditLog.action == "reveal_phone")
        assert len(audits) == 1


# ---------------------------------------------------------------------------------------------- 6. waking hours
async def test_a_survey_completed_at_night_is_reminded_in_the_morning(db_url: str, tmp_path: Path) -> None:
    async with running_system(db_url, tmp_path) as system:
        _set_china_time(
            system, 2026, 12, 7, 2, 15
        )  # completed at 02:15: the survey ends at 02:15 on the 10th
        ts, _ = await _staff(system)
        case = await _case_in_progress(system, ts)
        await _complete(system, case, ts)
        await dispatch_now(system.app)
        assert len(_texts(system)) == 2
        _set_china_time(system, 2026, 12, 9, 2, 20)  # the reminder is due now, at night
        await _sweep(system)
        await dispatch_now(system.app)
        assert len(_texts(system)) == 2  # nobody is texted at 02:20
        [reminder] = [r for r in await _all(system, Outbox, Outbox.kind == "survey") if r.status == "pending"]
        assert reminder.next_attempt_at == datetime(2026, 12, 9, 8, 0, tzinfo=CHINA)
        _set_china_time(system, 2026, 12, 9, 8, 0, 30)
        await dispatch_now(system.app)
        assert [t for t, _ in _texts(system)][2:] == ["survey_reminder_link"]


@pytest.mark.parametrize(
    ("waking", "due"),
    [
        ("", datetime(2026, 12, 8, 18, 0, tzinfo=CHINA)),  # 18:00 of the next working day lies in 08:00–21:00
        ("09:00-17:00", datetime(2026, 12, 9, 9, 0, tzinfo=CHINA)),  # after 17:00: the next morning
    ],
)
async def test_a_call_task_filed_at_night_is_due_in_waking_hours(
    db_url: str, tmp_path: Path, waking: str, due: datetime
) -> None:
    async with running_system(db_url, tmp_path, **({"waking_hours": waking} if waking else {})) as system:
        _set_china_time(system, 2026, 12, 7, 23, 40)  # a Monday, late at night
        ts, _ = await _staff(system)
        await _unreachable_case(system, ts)
        [task] = await _all(system, CallTask)
        assert task.due_at == due


async def test_an_undelivered_query_code_is_noted_not_turned_into_a_call(db_url: str, tmp_path: Path) -> None:
    async with running_system(db_url, tmp_path, sms_callback_token=TOKEN) as system:
        _set_china_time(system, 2026, 12, 7, 10, 1)
        system.sim_app[SIM_SMS].receipt_url = f"{system.bot_url}/sms/callback/tencent/{TOKEN}"
        ts, _ = await _staff(system)
        case = await _case_in_progress(system, ts)
        system.sim_app[SIM_SMS].faults.append(
            {"provider": "tencent", "code": "UNDELIV", "times": 1, "stage": "receipt"}
        )
        async with _browser() as web:
            assert (await _ask(system, web, case.case_no, PHONE))[0] == 200

        async def noted() -> bool:
            rows = await _all(system, Outbox, Outbox.kind == "code")
            return bool(rows) and (rows[0].receipt or "").startswith("undelivered")

        await _until(noted)
        [row] = await _all(system, Outbox, Outbox.kind == "code")
        assert row.status == "sent"  # a late code is useless: not parked for a resend
        assert await _all(system, CallTask) == []
        assert (await _one(system, Case, Case.id == case.id)).flag is None


async def test_a_receipt_that_overtakes_its_message_id_is_still_applied(db_url: str, tmp_path: Path) -> None:
    """The provider answers the send, pushes the receipt at once, and our commit of the message id is a moment
    behind: the receipt waits for it instead of being lost."""
    async with running_system(db_url, tmp_path, sms_callback_token=TOKEN) as system:
        _set_china_time(system, 2026, 12, 7, 10, 0)
        ts, _ = await _staff(system)
        case = await _case_in_progress(system, ts)
        async with transaction(system.app[keys.SESSIONS]) as db:
            row = Outbox(
                openid="",
                phone=PHONE,
                kind="progress",
                text="您的诉求正在办理。",
                case_id=case.id,
                status="sent",
                channel="sms",
                attempts=1,
                next_attempt_at=system.clock(),
                created_at=system.clock(),
                sent_at=system.clock(),
            )
            db.add(row)
        receipt = [
            {"mobile": PHONE, "report_status": "FAIL", "errmsg": "UNDELIV", "sid": "2433:000000000042"}
        ]
        url = f"{system.bot_url}/sms/callback/tencent/{TOKEN}"
        posting = asyncio.create_task(system.http.post(url, json=receipt))
        await asyncio.sleep(0.4)
        async with transaction(system.app[keys.SESSIONS]) as db:
            (await db.get(Outbox, row.id)).sms_id = "2433:000000000042"
        resp = await posting
        assert resp.status == 200
        parked = await _one(system, Outbox, Outbox.id == row.id)
        assert (parked.status, parked.receipt) == ("unreachable", "undelivered: UNDELIV")
        assert len(await _all(system, CallTask, CallTask.case_id == case.id)) == 1


@pytest.mark.parametrize("days", [-400, 400])
async def test_texts_are_due_on_the_apps_clock_not_the_wall_clock(
    db_url: str, tmp_path: Path, days: int
) -> None:
    """What a transition queues is due at the moment of the app's clock: with the clock a year behind the wall (or
    ahead of it) the resident's progress text and the survey link still go out at the next dispatch (seen failing
    when a test's pinned night had become the past: the progress text waited for the wall clock's time)."""
    async with running_system(db_url, tmp_path) as system:
        system.clock.offset = timedelta(days=days)
        system.sim_app[SIM_SMS].clock = lambda: system.clock().timestamp()
        ts, _ = await _staff(system)
        case = await _case_in_progress(system, ts)
        await _complete(system, case, ts)
        await dispatch_now(system.app)
        assert sorted(t for t, _ in _texts(system)) == ["progress", "survey_link"]
        rows = await _all(system, Outbox, Outbox.case_id == case.id)
        assert {r.status for r in rows} == {"sent"}
        now = system.clock()
        assert all(abs(r.created_at - now) < timedelta(minutes=5) for r in rows)
