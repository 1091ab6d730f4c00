"""Residents WeChat cannot reach, through the real app and the simulator (WeChat and the SMS providers) on real
ports: a hotline resident with only a phone gets progress and the survey by SMS and answers by replying a digit;
a resident WeChat answers 43004 for gets the same message by SMS; one neither reaches becomes a call task (回访)
whose recorded answer closes the survey and the case."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
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
from bot.models import CallTask, Case, Outbox, Resident, Staff, Survey
from bot.ops.scheduler import dispatch_now
from tests.factories import mk_staff
from tests.helpers import PASSWORD, running_system, sign_in
from wechat_sim.sms import SIM_SMS

PHONE = "13826951234"
TOWN = "厚街镇"
TOKEN = "cb-0123456789abcdef"


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def _case_in_progress(system: Any, *, resident_id: int | None, phone: str | None) -> tuple[Case, Staff]:
    async with transaction(system.app[keys.SESSIONS]) as db:
        staff = await mk_staff(db, "ts", town=TOWN)
        case = await create_case(
            db,
            kind="micro_wish",
            description="想要一辆轮椅",
            now=system.clock(),
            town=TOWN,
            resident_id=resident_id,
            channel="hotline_12345" if resident_id is None else "wechat",
            contact_phone=phone,
            community="新围社区",
        )
        case.status = "in_progress"
        case.claimed_by_id = staff.id
        await db.flush()
        return case, staff


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


async def _rows(system: Any, case: Case) -> list[Outbox]:
    async with system.app[keys.SESSIONS]() as db:
        return list(
            (await db.exec(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id))).all()
        )


async def _survey(system: Any, case: Case) -> Survey:
    async with system.app[keys.SESSIONS]() as db:
        return (await db.exec(select(Survey).where(Survey.case_id == case.id))).one()


async def _status(system: Any, case: Case) -> str:
    async with system.app[keys.SESSIONS]() as db:
        return (await db.get(Case, case.id)).status


def _texts(system: Any, phone: str = PHONE) -> list[tuple[str, list[str]]]:
    return [(s.template_id, s.params) for s in system.sim_app[SIM_SMS].sent if s.phone == phone]


#: each provider with the simulator's keys
PROVIDERS = {
    "tencent": {"sms_provider": "tencent"},
    "aliyun": {
        "sms_provider": "aliyun",
        "sms_key_id": "LTAIsimulator",
        "sms_key_secret": "simulator-aliyun-secret",
    },
}


@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_a_hotline_resident_gets_progress_and_survey_by_sms_and_answers_by_reply(
    db_url: str, tmp_path: Path, provider: str
) -> None:
    async with running_system(db_url, tmp_path, sms_callback_token=TOKEN, **PROVIDERS[provider]) as system:
        callback = f"{system.bot_url}/sms/callback/{provider}/{TOKEN}"
        system.sim_app[SIM_SMS].receipt_url = callback
        system.sim_app[SIM_SMS].reply_url = callback
        case, staff = await _case_in_progress(system, resident_id=None, phone="138 2695 1234")
        await _complete(system, case, staff)
        await dispatch_now(system.app)

        [progress, survey_text] = _texts(system)
        assert progress == ("progress", [case.case_no, "已办结"])
        # the survey text carries a short signed link to the survey page
        assert survey_text[0] == "survey_link" and survey_text[1][0] == case.case_no
        assert re.fullmatch(re.escape(system.bot_url) + r"/s/[0-9a-z]{16,24}", survey_text[1][1])
        rows = await _rows(system, case)
        assert [(r.kind, r.status, r.channel, r.phone) for r in rows] == [
            ("progress", "sent", "sms", PHONE),
            ("survey", "sent", "sms", PHONE),
        ]

        async def receipts_in() -> bool:
            return all((r.receipt or "").startswith("delivered") for r in await _rows(system, case))

        await _until(receipts_in)

        # a wrong token is no callback at all
        async with system.http.post(
            f"{system.bot_url}/sms/callback/{provider}/wrong", json={"mobile": PHONE, "text": "1"}
        ) as resp:
            assert resp.status == 404
        assert (await _survey(system, case)).status == "sent"

        async with system.http.post(
            f"{system.sim_url}/_sim/sms/reply", json={"provider": provider, "phone": PHONE, "text": "5"}
        ) as resp:
            answer = await resp.json()
        assert answer["status"] == 200, answer
        survey = await _survey(system, case)
        assert (survey.status, survey.score, survey.via) == ("answered", 5, "sms")
        assert await _status(system, case) == "closed"


async def test_texts_to_one_number_wait_beyond_the_hourly_limit(db_url: str, tmp_path: Path) -> None:
    async with running_system(db_url, tmp_path, sms_per_number_per_hour=2) as system:
        case, _ = await _case_in_progress(system, resident_id=None, phone=PHONE)
        async with transaction(system.app[keys.SESSIONS]) as db:
            fresh = await db.get(Case, case.id)
            for i in range(3):
                await notify_resident(
                    db, case=fresh, text=f"进展{i}", dedupe_key=f"t:limit:{i}", now=system.clock()
                )
        await dispatch_now(system.app)
        assert len(_texts(system)) == 2
        rows = await _rows(system, case)
        assert [r.status for r in rows] == ["sent", "sent", "pending"]
        waiting = rows[2]
        assert waiting.attempts == 0  # waiting is no failed attempt
        assert waiting.next_attempt_at >= rows[0].sent_at + timedelta(hours=1)
        await dispatch_now(system.app)  # still within the hour: nothing more goes out
        assert len(_texts(system)) == 2


async def test_a_resident_wechat_cannot_reach_gets_the_message_by_sms(db_url: str, tmp_path: Path) -> None:
    async with running_system(db_url, tmp_path) as system:
        openid = "o-sms-fallback-0001"
        async with transaction(system.app[keys.SESSIONS]) as db:
            resident = Resident(openid=openid, phone=PHONE)
            db.add(resident)
            await db.flush()
        case, _ = await _case_in_progress(system, resident_id=resident.id, phone=PHONE)
        system.sim.set_subscribed(openid, False)  # WeChat will answer 43004
        async with transaction(system.app[keys.SESSIONS]) as db:
            fresh = await db.get(Case, case.id)
            await notify_resident(
                db, case=fresh, text="您的诉求正在办理。", dedupe_key="t:fallback", now=system.clock()
            )
        await dispatch_now(system.app)

        assert await system.sent_to(openid) == []
        assert _texts(system) == [("progress", [case.case_no, "办理中"])]
        [row] = await _rows(system, case)
        assert (row.status, row.channel, row.phone) == ("sent", "sms", PHONE)
        async with system.app[keys.SESSIONS]() as db:
            assert (await db.get(Case, case.id)).flag is None  # SMS worked: nobody has to phone
            assert (await db.exec(select(CallTask))).all() == []


@pytest.mark.parametrize(
    ("choice", "score", "survey_status"), [("4", 4, "answered"), ("unreachable", None, "expired")]
)
async def test_a_resident_nobody_reaches_becomes_a_call_task_whose_answer_closes_the_case(
    db_url: str, tmp_path: Path, choice: str, score: int | None, survey_status: str
) -> None:
    async with running_system(db_url, tmp_path) as system:
        openid = "o-sms-unreachable-0001"
        async with transaction(system.app[keys.SESSIONS]) as db:
            resident = Resident(openid=openid, phone=PHONE)
            db.add(resident)
            await db.flush()
        case, _ = await _case_in_progress(system, resident_id=resident.id, phone=PHONE)
        system.sim.set_subscribed(openid, False)
        system.sim_app[SIM_SMS].faults.append(
            {"provider": "tencent", "code": "FailedOperation.PhoneNumberInBlacklist", "times": 5}
        )
        async with transaction(system.app[keys.SESSIONS]) as db:
            staff = (await db.exec(select(Staff).where(Staff.username == "ts"))).one()
        await _complete(system, case, staff)
        await dispatch_now(system.app)

        rows = await _rows(system, case)
        assert {r.status for r in rows} == {"unreachable"} and len(rows) == 2
        assert _texts(system) == []
        async with system.app[keys.SESSIONS]() as db:
            assert (await db.get(Case, case.id)).flag == "phone_needed"
            [task] = (await db.exec(select(CallTask))).all()
        assert task.done_at is None and task.town == TOWN and task.phone == PHONE

        async with aiohttp.ClientSession(
            base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as web:
            assert (await sign_in(web, "ts", PASSWORD)).status == 302
            queue = await (await web.get("/staff/cases")).text()
            assert 'id="calls-due"' in queue and "电话待办 <b>1</b>" in queue and "联系不上需回访 1" in queue
            page = await (await web.get("/staff/calls")).text()
            assert case.case_no in page and "138****1234" in page and PHONE not in page
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            resp = await web.post(
                f"/staff/calltasks/{task.id}/answer",
                data={"csrf_token": csrf, "score": choice, "note": "电话回访"},
            )
            assert resp.status == 200
            page = await resp.text()
            assert "没有待打的电话" in page

        survey = await _survey(system, case)
        assert (survey.status, survey.score) == (survey_status, score)
        assert await _status(system, case) == "closed"
        async with system.app[keys.SESSIONS]() as db:
            done = await db.get(CallTask, task.id)
            assert done.done_at is not None and done.outcome == ("answered" if score else "unreachable")
            assert (await db.get(Case, case.id)).flag is None
