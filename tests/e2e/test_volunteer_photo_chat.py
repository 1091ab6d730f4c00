"""What a volunteer hears after sending a photo in chat, through the real system (the simulator delivers the image
over HTTP to the webhook, the bot stores it): the task it was attached to, a numbered choice when they work on
several (the number attaches it), the resident's answer when they work on none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot import keys
from bot.conversation.dialogue import texts
from bot.db import transaction
from bot.media import fetch_due
from bot.media.tables import StoredMedia
from bot.models import CaseEvent, Offer
from tests.factories import mk_resource, mk_wish
from tests.helpers import System, running_system, wait_until
from wechat_sim.media import png


@pytest.fixture
async def system(db_url: str, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(db_url, tmp_path) as s:
        yield s


async def _send_photo(system: System, user: object, name: str) -> str:
    async with system.http.post(
        f"{system.sim_url}/_sim/media", data=png(20, 20, (10, 90, 160)), headers={"Content-Type": "image/png"}
    ) as resp:
        assert resp.status == 201
        media_id = str((await resp.json())["media_id"])
    reply = await user.send_image(f"http://mmbiz.qpic.cn/sim/{name}.jpg", media_id=media_id)  # type: ignore[attr-defined]
    return str(reply.text)


async def _media(system: System) -> list[StoredMedia]:
    async with system.app[keys.SESSIONS]() as db:
        return list((await db.exec(select(StoredMedia).order_by(StoredMedia.id))).all())


async def test_one_task_the_reply_names_it(system: System) -> None:
    sessions = system.app[keys.SESSIONS]
    volunteer = system.user()
    async with transaction(sessions) as db:
        resource = await mk_resource(db, "VOLP1", name="厚街助残队", openid=volunteer.openid)
        case = await mk_wish(db, status="in_progress")
        db.add(Offer(case_id=case.id, resource_id=resource.id, status="accepted"))
    text = await _send_photo(system, volunteer, "one")
    assert case.case_no in text and "工作人员会看到" in text and "已完成" in text, text
    assert "需要什么帮助" not in text
    rows = await _media(system)
    assert (rows[-1].case_id, rows[-1].source) == (case.id, "volunteer")


async def test_several_tasks_a_number_attaches_it(system: System) -> None:
    sessions = system.app[keys.SESSIONS]
    volunteer = system.user()
    async with transaction(sessions) as db:
        resource = await mk_resource(db, "VOLP2", name="虎门爱心车队", openid=volunteer.openid)
        first = await mk_wish(db, status="in_progress", item="轮椅")
        second = await mk_wish(db, status="in_progress", item="助听器")
        db.add(Offer(case_id=first.id, resource_id=resource.id, status="accepted"))
        db.add(Offer(case_id=second.id, resource_id=resource.id, status="delivered"))
    text = await _send_photo(system, volunteer, "two")
    assert f"1 {first.case_no}" in text and f"2 {second.case_no}" in text and "回复数字" in text, text
    rows = await _media(system)
    assert rows[-1].case_id is None  # not attached until the volunteer says which

    out_of_range = await volunteer.send_text("3")
    assert "1到2" in out_of_range.text, out_of_range.text
    chosen = await volunteer.send_text("2")
    assert second.case_no in chosen.text and "已完成 " + second.case_no in chosen.text, chosen.text
    row = (await _media(system))[-1]
    assert (row.case_id, row.source) == (second.id, "volunteer")

    # the stored image is on the chosen task's timeline, in the volunteer's name
    async def recorded() -> StoredMedia | None:
        await fetch_due(system.app[keys.MEDIA])
        latest = (await _media(system))[-1]
        return latest if latest.event_id else None

    row = await wait_until(recorded, timeout=10)
    async with sessions() as db:
        event = await db.get(CaseEvent, row.event_id)
        assert event is not None and event.case_id == second.id and event.actor_name == "虎门爱心车队"

    # the choice is over: a digit now is the ordinary menu, not a task
    again = await volunteer.send_text("1")
    assert first.case_no not in again.text


async def test_no_task_the_resident_answer(system: System) -> None:
    sessions = system.app[keys.SESSIONS]
    volunteer = system.user()
    async with transaction(sessions) as db:
        resource = await mk_resource(db, "VOLP3", name="长安义工", openid=volunteer.openid)
        done = await mk_wish(db, status="in_progress")
        db.add(Offer(case_id=done.id, resource_id=resource.id, status="done"))
    assert await _send_photo(system, volunteer, "none") == texts.IMAGE_NONE
    assert await _send_photo(system, system.user(), "stranger") == texts.IMAGE_NONE
