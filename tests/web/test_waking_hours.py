"""Issue 11: "offer deadlines fall at 02:15 at night". A donor invited at night through the staff page gets an
answer deadline in waking hours (08:00–21:00 China time, or the configured window), and the invitation says so;
an invitation by day keeps its full 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import select

import bot.pool as pool
from bot import keys
from bot.db import transaction
from bot.models import Offer, Outbox
from tests.factories import PASSWORD, mk_resource, mk_staff, mk_wish
from tests.helpers import app_client, csrf, login

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
