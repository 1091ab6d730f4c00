"""事件预警 for town staff through the real app: a seeded cluster of 路灯 微实事 and a repeat requester are shown to
the town's staff (not another town's); one click merges the cluster into the case chosen, recorded on every
timeline (the chain still verifies) and told to each merged case's resident; hostile or stale merges change nothing.
Expected values are worked out from the seeded rows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot import keys
from bot.cases.chain import verify_chains
from bot.cases.numbering import create_case
from bot.db import transaction
from bot.models import Case, CaseEvent, Outbox, Resident
from bot.reporting.warnings import REPEAT_MIN, early_warnings
from tests.factories import NOW, OTHER, PASSWORD, TOWN, add_staff
from tests.helpers import app_client, csrf, login

D = timedelta(days=1)


@pytest.fixture
async def client(db_url: str, tmp_path: Any, aiohttp_client: Any) -> Any:
    return await app_client(db_url, tmp_path, aiohttp_client, now=NOW)


async def _seed(client: Any) -> tuple[list[str], list[str]]:
    """Three open 路灯 projects in 新围社区 (each from its own resident), and one resident with three wishes."""
    lamps, repeats = [], []
    async with transaction(client.app[keys.SESSIONS]) as db:
        for i in range(3):
            r = Resident(openid=f"o-lamp-{i}", phone=f"1381234560{i}")
            db.add(r)
            await db.flush()
            c = await create_case(
                db,
                kind="micro_project",
                description=f"新围社区第{i + 1}条巷路灯不亮",
                town=TOWN,
                resident_id=r.id,
                community="新围社区",
                item="路灯",
                category="照明",
                now=NOW - (3 - i) * D,
            )
            c.status = "verified"
            lamps.append(c.case_no)
        same = Resident(openid="o-repeat", phone="13900001111")
        db.add(same)
        await db.flush()
        for i in range(REPEAT_MIN):
            c = await create_case(
                db,
                kind="micro_wish",
                description=f"想要米和油 第{i + 1}次",
                town=TOWN,
                resident_id=same.id,
                community="新围社区",
                category="生活物资",
                now=NOW - (20 - 5 * i) * D,
            )
            repeats.append(c.case_no)
    for name, town in (("hj", TOWN), ("hm", OTHER)):
        await add_staff(client.app[keys.SESSIONS], name, "town_staff", town=town)
    return lamps, repeats


async def test_warnings_page_and_one_click_merge(client: Any) -> None:
    lamps, repeats = await _seed(client)
    async with client.app[keys.SESSIONS]() as db:
        found = await early_warnings(db, now=NOW)
    [repeat] = [w for w in found if w.kind == "repeat"]
    assert repeat.case_nos == tuple(repeats) and "13900001111" not in repeat.text and "3 件" in repeat.text
    [cluster] = [w for w in found if w.kind == "cluster"]
    assert cluster.case_nos == tuple(lamps)

    await login(client, "hm", PASSWORD)
    body = await (await client.get("/staff/warnings")).text()
    assert "今天没有预警" in body and lamps[0] not in body
    await client.post("/staff/logout", data={"csrf_token": await csrf(client, "/staff/warnings")})

    await login(client, "hj", PASSWORD)
    body = await (await client.get("/staff/warnings")).text()
    assert all(n in body for n in lamps + repeats) and "一键合并 3 件" in body
    token = await csrf(client, "/staff/warnings")
    keep = lamps[1]
    form = [("csrf_token", token), *[("case_no", n) for n in lamps], ("keep", keep), ("note", "同一条路")]
    resp = await client.post("/staff/warnings/merge", data=form)
    page = await resp.text()
    assert resp.status == 200 and keep in str(resp.url) and "合并到" + keep in page

    merged = [lamps[0], lamps[2]]
    async with client.app[keys.SESSIONS]() as db:
        cases = {
            c.case_no: c for c in (await db.exec(select(Case).where(col(Case.case_no).in_(lamps)))).all()
        }
        kept = cases[keep]
        assert kept.status == "verified"
        for n in merged:
            assert cases[n].status == "merged" and cases[n].merged_into_id == kept.id
            event = (
                await db.exec(
                    select(CaseEvent).where(CaseEvent.case_id == cases[n].id, CaseEvent.to_status == "merged")
                )
            ).one()
            assert keep in event.note and "同一条路" in event.note
        notes = (await db.exec(select(CaseEvent.note).where(CaseEvent.case_id == kept.id))).all()
        assert {f"合并了重复诉求{n}" for n in merged} <= set(notes)
        told = (
            await db.exec(select(Outbox.openid, Outbox.text).where(col(Outbox.openid).like("o-lamp-%")))
        ).all()
        assert sorted(o for o, t in told if "合并" in t) == ["o-lamp-0", "o-lamp-2"]
        assert (await verify_chains(db)).broken == []

    # the warning is gone; the same merge again (a second click, a stale page) changes nothing
    assert "一键合并 " not in await (await client.get("/staff/warnings")).text()
    resp = await client.post("/staff/warnings/merge", data=form)
    assert "已经结束或已合并" in await resp.text()


@pytest.mark.parametrize(
    "change",
    ["keep_outside", "unknown_case", "other_town", "bad_number", "one_case", "no_csrf"],
)
async def test_hostile_merges_change_nothing(client: Any, change: str) -> None:
    lamps, _ = await _seed(client)
    async with transaction(client.app[keys.SESSIONS]) as db:
        r = Resident(openid="o-hm", phone="13700000000")
        db.add(r)
        await db.flush()
        far = await create_case(
            db, kind="micro_project", description="虎门路灯", town=OTHER, resident_id=r.id, now=NOW
        )
    await login(client, "hj", PASSWORD)
    token = await csrf(client, "/staff/warnings")
    numbers, keep = list(lamps), lamps[0]
    if change == "keep_outside":
        keep = "MS20990101-0001"
    elif change == "unknown_case":
        numbers.append("MS20990101-0002")
    elif change == "other_town":
        numbers.append(far.case_no)
    elif change == "bad_number":
        numbers.append("<script>")
    elif change == "one_case":
        numbers = [keep]
    data = [("case_no", n) for n in numbers] + [("keep", keep)]
    if change != "no_csrf":
        data.append(("csrf_token", token))
    resp = await client.post("/staff/warnings/merge", data=data, headers={"Accept": "text/html"})
    text = await resp.text()
    assert resp.status in (200, 403) and re.search(r"[\u4e00-\u9fff]", text)
    async with client.app[keys.SESSIONS]() as db:
        statuses = (await db.exec(select(Case.status).where(col(Case.case_no).in_(lamps)))).all()
    assert sorted(statuses) == ["verified"] * 3
