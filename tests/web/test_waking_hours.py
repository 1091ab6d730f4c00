"""Issue 11: "offer deadlines fall at 02:15 at night". A donor invited at night through the staff page gets an
answer deadline in waking hours (08:00–21:00 China time, or the configured window), and the invitation says so;
an invitation by day keeps its full 24 hours. A resident's call-back (人工) is due by the call queue's rule: the
`call` policy an admin set, in waking hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

import bot.pool as pool
from bot import keys
from bot.conversation.dialogue.texts import when
from bot.db import transaction
from bot.deadlines.waking import DEFAULT_WAKING
from bot.models import CallBack, Offer, Outbox, SlaPolicy
from bot.states import Role
from tests.factories import PASSWORD, mk_resource, mk_staff, mk_wish
from tests.helpers import app_client, csrf, login, running_system

CHINA = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("filed", "waking", "due"),
    [
        # 02:15 + 24 h is 02:15 the next night: moved to 08:00 that morning
        (datetime(2026, 3, 3, 2, 15, tzinfo=CHINA), "", datetime(2026, 3, 4, 8, 0, tzinfo=CHINA)),
        # 22:30 + 24 h is 22:30, after 21:00: the next morning
        (datetime(2026, 3, 3, 22, 30, tzinfo=CHINA), "", datetime(2026, 3, 5, 8, 0, tzinfo=CHINA)),
        # a configured window
        (datetime(2026, 3, 3, 2, 15, tzinfo=CHINA), "09:30-20:00", datetime(2026, 3, 4, 9, 30, tzinfo=CHINA)),
        # by day nothing moves
        (datetime(2026, 3, 3, 10, 0, tzinfo=CHINA), "", datetime(2026, 3, 4, 10, 0, tzinfo=CHINA)),
    ],
)
async def test_an_offer_made_at_night_is_due_in_waking_hours(
    db_url, tmp_path, aiohttp_client, filed: datetime, waking: str, due: datetime
) -> None:
    pool.POOL_CACHE.clear()
    over = {"waking_hours": waking} if waking else {}
    client = await app_client(db_url, tmp_path, aiohttp_client, now=filed.astimezone(UTC), **over)
    async with transaction(client.app[keys.SESSIONS]) as db:
        hj = await mk_staff(db, "hj")
        await mk_resource(db, "V1", name="热心的米店", openid="o-v1")
        case = await mk_wish(db, owner=hj.id)
    await login(client, "hj", PASSWORD)
    page = f"/staff/cases/{case.case_no}"
    resp = await client.post(f"{page}/offer", data={"csrf_token": await csrf(client, page), "key": "V1"})
    assert resp.status == 200
    async with client.app[keys.SESSIONS]() as db:
        [offer] = (await db.exec(select(Offer))).all()
        [invite] = (await db.exec(select(Outbox).where(Outbox.openid == "o-v1"))).all()
    assert offer.deadline == due
    local = due.astimezone(CHINA)
    assert f"{local.month:02d}月{local.day:02d}日{local.hour:02d}:{local.minute:02d}" in invite.text


# ------------------------------------------------------------------ a resident's call-back (回电)
MONDAY = (2026, 12, 7)  # an ordinary working Monday


@pytest.mark.parametrize(
    ("policy", "asked_at", "due"),
    [
        # an admin shortened the call deadline to 4 hours; 23:30 + 4 h is 03:30 at night: 08:00 that morning
        ({"amount": "4", "unit": "hours"}, (23, 30), lambda asked: datetime(2026, 12, 8, 8, 0, tzinfo=CHINA)),
        # the same policy by day: exactly 4 hours later (the fixed rule said 18:00 of the next working day)
        ({"amount": "4", "unit": "hours"}, (10, 0), lambda asked: asked + timedelta(hours=4)),
        # two natural days from Monday night: Wednesday 23:30, after 21:00, so Thursday 08:00
        ({"amount": "2", "unit": "days"}, (23, 30), lambda asked: datetime(2026, 12, 10, 8, 0, tzinfo=CHINA)),
        # the default policy: 18:00 of the next working day, in waking hours already
        (None, (23, 30), lambda asked: datetime(2026, 12, 8, 18, 0, tzinfo=CHINA)),
    ],
)
async def test_a_call_back_asked_for_at_night_follows_the_call_policy_in_waking_hours(
    db_url: str, tmp_path: Path, policy: dict[str, str] | None, asked_at: tuple[int, int], due: Any
) -> None:
    """A resident writes 人工 over WeChat; the call-back gets the deadline of the `call` policy an admin set on
    /staff/admin/deadlines, moved into waking hours — the rule of the call queue's other calls (回访)."""
    async with running_system(db_url, tmp_path) as system:
        if policy is not None:
            async with transaction(system.app[keys.SESSIONS]) as db:
                await mk_staff(db, "deadline-admin", role=Role.ADMIN, town=None)
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(base_url=system.bot_url, cookie_jar=jar) as admin:
                await login(admin, "deadline-admin", PASSWORD)
                form = {"op": "save", "kind": "any", "stage": "call", "remind_before_hours": "1", **policy}
                token = await csrf(admin, "/staff/admin/deadlines")
                resp = await admin.post("/staff/admin/deadlines", data={"csrf_token": token, **form})
                assert resp.status == 200, await resp.text()
            async with system.app[keys.SESSIONS]() as db:
                [row] = (await db.exec(select(SlaPolicy).where(SlaPolicy.stage == "call"))).all()
            assert (str(row.amount), row.unit) == (policy["amount"], policy["unit"])
        asked = datetime(*MONDAY, *asked_at, tzinfo=CHINA)
        system.clock.offset = asked - datetime.now(UTC)
        user = system.user()
        r = await user.send_text("人工")
        assert "回电" in r.text, r.text
        r = await user.send_text("13826951234")
        async with system.app[keys.SESSIONS]() as db:
            [callback] = (await db.exec(select(CallBack))).all()
        expected = due(callback.created_at)
        assert callback.due_at == expected
        assert DEFAULT_WAKING.contains(callback.due_at)
        assert f"最晚{when(expected)}前会打给您" in r.text, r.text


async def test_a_call_back_follows_a_configured_waking_window(db_url: str, tmp_path: Path) -> None:
    """WAKING_HOURS=09:30-17:00: 人工 at 23:30 with the default policy (18:00 of the next working day, outside
    this window) is due when the window next opens after that, 09:30 the day after, and the reply says so."""
    async with running_system(db_url, tmp_path, waking_hours="09:30-17:00") as system:
        system.clock.offset = datetime(*MONDAY, 23, 30, tzinfo=CHINA) - datetime.now(UTC)
        user = system.user()
        await user.send_text("人工")
        r = await user.send_text("13826951234")
        async with system.app[keys.SESSIONS]() as db:
            [callback] = (await db.exec(select(CallBack))).all()
        expected = datetime(
            2026, 12, 9, 9, 30, tzinfo=CHINA
        )  # Tuesday 18:00 is after 17:00 → Wednesday 09:30
        assert callback.due_at == expected
        assert f"最晚{when(expected)}前会打给您" in r.text, r.text
