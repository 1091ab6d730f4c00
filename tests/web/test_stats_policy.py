"""/staff/stats counts the wishes policies covered: routed in the period, granted and refused, per policy, pending,
within the viewer's scope (a town's staff see their town; the city sees all). Seeded through the real app's forms;
the expected figures are counted by hand from what the test did."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot import keys
from bot.db import transaction
from bot.models import Case, WelfarePolicy
from tests.factories import OTHER, add_case, add_staff
from tests.helpers import build_app, csrf, sign_in


@pytest.fixture
async def client(db_url, aiohttp_client):
    return await aiohttp_client(build_app(db_url))


async def _wish(sessions, owner: int, town: str) -> Case:
    c = await add_case(sessions, status="claimed", owner=owner, town=town)
    async with transaction(sessions) as db:
        (await db.get(Case, c.id)).category = "助残"
    return c


async def _policy(client, case_no: str, data: dict[str, str]) -> None:
    token = await csrf(client, f"/staff/cases/{case_no}")
    resp = await client.post(f"/staff/cases/{case_no}/policy", data={**data, "csrf_token": token})
    assert resp.status == 200


def _figure(page: str, key: str) -> int:
    return int(re.search(rf'id="policy-{key}">(\d+)<', page).group(1))


async def test_policy_covered_counts_on_the_stats_page(client):
    sessions = client.app[keys.SESSIONS]
    hj = await add_staff(sessions, "hj-staff", "town_staff")
    hm = await add_staff(sessions, "hm-staff", "town_staff", town=OTHER)
    await add_staff(sessions, "city", "city_supervisor", town=None)
    async with sessions() as db:
        ids = {p.name: p.id for p in (await db.exec(select(WelfarePolicy))).all()}
    fuju, lingshi = str(ids["残疾人辅助器具适配"]), str(ids["临时救助"])
    # 厚街: granted, refused, pending; 虎门: granted
    plan = [(hj, "hj-staff", "厚街镇", fuju, "grant"), (hj, "hj-staff", "厚街镇", lingshi, "refuse")]
    plan += [(hj, "hj-staff", "厚街镇", fuju, None), (hm, "hm-staff", OTHER, fuju, "grant")]
    for owner, user, town, policy, outcome in plan:
        c = await _wish(sessions, owner.id, town)
        assert (await sign_in(client, user)).status == 302
        await _policy(client, c.case_no, {"op": "route", "policy_id": policy, "applied_for": "申请"})
        if outcome:
            await _policy(client, c.case_no, {"op": outcome, "note": "结果"})

    assert (await sign_in(client, "hj-staff")).status == 302
    page = await (await client.get("/staff/stats")).text()
    assert [_figure(page, k) for k in ("routed", "granted", "refused", "pending")] == [3, 1, 1, 1]
    rows = re.findall(
        r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td><td class=\"num\">(\d+)</td></tr>",
        page.split('id="policy-table"')[1].split("</table>")[0],
    )
    assert rows == [("残疾人辅助器具适配", "1", "0"), ("临时救助", "0", "1")]

    assert (await sign_in(client, "city")).status == 302
    page = await (await client.get("/staff/stats")).text()
    assert [_figure(page, k) for k in ("routed", "granted", "refused", "pending")] == [4, 2, 1, 1]
