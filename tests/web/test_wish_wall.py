"""圆梦墙 through the real app: publishing with approved wording, the public pages and JSON that show nothing of the
resident, claiming, confirming, fulfilling with the donor's 寄语 reaching the resident, reservation expiry, and the
race between a wall claim and a pushed offer (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select

import bot.pool as pool
from bot import keys
from bot.cases.lifecycle import Actor, transition
from bot.db import transaction
from bot.models import Case, Offer, Outbox, Resident, WallClaim, WallWish
from bot.pool.config import PoolError
from bot.pool.donor_sweeps import donor_sweeps
from bot.pool.wall import WallError, check_claim_form, claim_wish, confirm_claim, fulfil_claim, publish
from tests.factories import NOW, PASSWORD, add_staff, mk_resource, mk_staff, mk_wish
from tests.helpers import System, app_client, csrf, login

CASE_NO = re.compile(r"MS\d{8}-\d{4}")
PUBLIC_ID = re.compile(r'data-wish="([a-z0-9]{8})"')
GOOD_TEXT = "一位行动不便的老人需要一辆轮椅"


@pytest.fixture(autouse=True)
def _fresh_cache():
    pool.POOL_CACHE.clear()
    yield
    pool.POOL_CACHE.clear()


async def _publish_http(
    client: Any, case_no: str, text: str, *, step: str = "publish"
) -> aiohttp.ClientResponse:
    token = await csrf(client, f"/staff/cases/{case_no}/wall")
    return await client.post(
        f"/staff/cases/{case_no}/wall",
        data={"text": text, "handover": "community_centre", "step": step, "csrf_token": token},
        allow_redirects=False,
    )


async def _claim_http(client: Any, public_id: str, **over: str) -> aiohttp.ClientResponse:
    token = await csrf(client, f"/wall/{public_id}")
    data = {
        "donor_type": "enterprise",
        "donor_name": "东莞爱心五金厂",
        "phone": "13600001111",
        "message": "祝您早日康复，出门走走！",
        "csrf_token": token,
        **over,
    }
    return await client.post(f"/wall/{public_id}/claim", data=data, allow_redirects=False)


async def _public_ids(client: Any, query: str = "") -> list[str]:
    return PUBLIC_ID.findall(await (await client.get(f"/wall{query}")).text())


async def _accepted_wish(
    sessions: Any, *, description: str = "家里老人腿脚不便，需要一辆轮椅", **fields: Any
) -> Case:
    async with transaction(sessions) as db:
        r = Resident(openid=f"o-res-{id(fields)}-{len(description)}", phone="13912345678")
        db.add(r)
        await db.flush()
        case = await mk_wish(db, status="accepted")
        case.description = description
        for k, v in fields.items():
            setattr(case, k, v)
        await db.flush()
        return case


# ------------------------------------------------------------------ chat → verified → published → claimed → fulfilled
async def test_a_wish_from_chat_to_the_wall_and_the_donors_message_reaches_the_resident(
    keyword_system: System,
) -> None:
    system = keyword_system
    sessions = system.app[keys.SESSIONS]
    user = system.user()
    await user.send_text("我妈走不了路，想要一辆轮椅，住厚街")
    await user.send_text("同意")
    await user.send_text("不用")
    case_no = CASE_NO.search((await user.send_text("确认")).text).group(0)  # type: ignore[union-attr]
    staff = await add_staff(sessions, "hj-wall", "town_staff")
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(base_url=system.bot_url, cookie_jar=jar) as web_staff,
        aiohttp.ClientSession(base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as donor,
    ):
        # submitted: publishing is refused and nothing is on the wall
        await login(web_staff, "hj-wall", PASSWORD)
        refused = await _publish_http(web_staff, case_no, GOOD_TEXT)
        assert refused.status == 400 and "已受理" in await refused.text()
        assert await _public_ids(donor) == []
        async with transaction(sessions) as db:
            case = (await db.exec(select(Case).where(Case.case_no == case_no))).one()
            for action in ("verify", "accept"):
                await transition(
                    db, case=case, action=action, actor=Actor.of_staff(staff), note=None, now=NOW
                )
        assert await _public_ids(donor) == []  # verified and accepted, not published: not on the wall

        # the preview shows the text as the public will see it; publishing puts it on the wall
        preview = await _publish_http(web_staff, case_no, GOOD_TEXT, step="preview")
        assert preview.status == 200 and GOOD_TEXT in await preview.text()
        assert await _public_ids(donor) == []
        assert (await _publish_http(web_staff, case_no, GOOD_TEXT)).status == 302
        (public_id,) = await _public_ids(donor)
        page = await (await donor.get(f"/wall/{public_id}")).text()
        assert GOOD_TEXT in page and case_no not in page

        # a donor claims: reserved, nothing to deliver shown yet
        r = await _claim_http(donor, public_id)
        assert r.status == 302, await r.text()
        donor_page = r.headers["Location"]
        before = await (await donor.get(donor_page)).text()
        assert "等待工作人员确认" in before and 'id="what"' not in before
        assert await _public_ids(donor) == []  # reserved: off the list

        # staff confirm; the donor now sees what and where (not the resident's address or phone)
        async with sessions() as db:
            claim = (await db.exec(select(WallClaim))).one()
        token = await csrf(web_staff, "/staff/wall")
        r = await web_staff.post(
            f"/staff/wall/claims/{claim.id}/confirm", data={"csrf_token": token}, allow_redirects=False
        )
        assert r.status == 302
        after = await (await donor.get(donor_page)).text()
        assert "轮椅" in re.search(r'id="what">([^<]*)<', after).group(1)  # type: ignore[union-attr]
        assert "社区党群服务中心" in after
        async with sessions() as db:
            assert (await db.exec(select(Case.status).where(Case.case_no == case_no))).one() == "in_progress"
        assert case_no not in after and user.openid not in after

        # fulfilled: the case completes and the 寄语 reaches the resident in WeChat
        token = await csrf(web_staff, "/staff/wall")
        r = await web_staff.post(
            f"/staff/wall/claims/{claim.id}/fulfil",
            data={"csrf_token": token, "note": "轮椅已送到社区"},
            allow_redirects=False,
        )
        assert r.status == 302
    async with sessions() as db:
        to_resident = (await db.exec(select(Outbox.text).where(Outbox.openid == user.openid))).all()
    assert any("祝您早日康复，出门走走！" in t and "东莞爱心五金厂" in t for t in to_resident), to_resident
    async with sessions() as db:
        assert (await db.exec(select(Case.status).where(Case.case_no == case_no))).one() == "completed"
        assert (await db.exec(select(WallWish.status))).one() == "fulfilled"


# ------------------------------------------------------------------ privacy of the wall and its JSON
HOSTILE_WORDINGS = [
    "陈伯需要一辆轮椅",
    "需要轮椅，电话13812345678",
    "需要轮椅，联系 138 1234 5678",
    "身份证441900195001011234的老人需要轮椅",
    "住新围村三巷8号的老人需要轮椅",
    "住在2栋501室的老人需要轮椅",
    "王阿姨想要一台电饭煲",
]


@pytest.mark.parametrize("text", HOSTILE_WORDINGS)
async def test_wording_with_personal_data_is_refused(sqlite_url, tmp_path, aiohttp_client, text: str) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "hj-w", "town_staff")
    case = await _accepted_wish(sessions)
    await login(client, "hj-w", PASSWORD)
    r = await _publish_http(client, case.case_no, text)
    assert r.status == 400 and 'id="wording-error"' in await r.text()
    assert await _public_ids(client) == []


SEEDED = [
    {
        "description": "陈伯（电话13812345678）住新围村三巷8号，需要一辆轮椅",
        "beneficiary": "陈伯",
        "address": "新围村三巷8号",
    },
    {
        "description": "李小明身份证441900201501011238，三年级，家住莞太路88号2栋501，需要书包",
        "beneficiary": "李小明",
        "address": "莞太路88号2栋501",
        "contact_phone": "0769-22123456",
        "item": "书包",
    },
]
SECRETS = [
    "陈伯",
    "13812345678",
    "新围村三巷8号",
    "李小明",
    "441900201501011238",
    "莞太路88号",
    "22123456",
    "新围村",
]


async def test_seeded_wishes_show_nothing_that_identifies_the_resident(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    staff = await add_staff(sessions, "hj-p", "town_staff")
    for fields in SEEDED:
        case = await _accepted_wish(sessions, **fields)
        async with transaction(sessions) as db:
            c = await db.get(Case, case.id)
            await publish(
                db, case=c, staff=staff, text="一位有困难的居民需要帮助", handover="door_with_staff", now=NOW
            )
    ids = await _public_ids(client)
    assert len(ids) == 2
    bodies = [await (await client.get("/wall")).text(), await (await client.get("/wall.json")).text()]
    for pid in ids:
        bodies += [
            await (await client.get(f"/wall/{pid}")).text(),
            await (await client.get(f"/wall/{pid}.json")).text(),
        ]
    listing = await (await client.get("/wall.json")).json()
    assert {w["id"] for w in listing["wishes"]} == set(ids)
    assert all(w["town"] == "厚街镇" and w["community"] == "新围社区" for w in listing["wishes"])
    for body in bodies:
        for secret in SECRETS:
            assert secret not in body, (secret, body[:400])
        assert not CASE_NO.search(body)


async def test_an_unpublished_or_ended_wish_is_never_shown(sqlite_url, tmp_path, aiohttp_client) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    staff = await add_staff(sessions, "hj-u", "town_staff")
    await _accepted_wish(sessions)  # accepted, never published
    case = await _accepted_wish(sessions, description="另一户需要一台冰箱")
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        w = await publish(
            db, case=c, staff=staff, text="一户困难家庭需要一台冰箱", handover="community_centre", now=NOW
        )
    assert await _public_ids(client) == [w.public_id]
    assert await _public_ids(client, "?town=虎门镇") == []
    assert await _public_ids(client, "?category=助学") == []
    assert await _public_ids(client, "?category=助残&town=厚街镇") == [w.public_id]
    async with transaction(sessions) as db:  # the resident cancels: the wish leaves the wall
        c = await db.get(Case, case.id)
        await transition(db, case=c, action="cancel", actor=Actor.of_staff(staff), note="家人已买到", now=NOW)
    assert await _public_ids(client) == []
    assert (await client.get(f"/wall/{w.public_id}")).status == 404
    assert (await client.get("/wall/zzzzzzzz")).status == 404
    for bad in ("?town=火星", "?category=<script>", "?page=²"):
        assert (await client.get(f"/wall{bad}")).status in (200, 400)


# ------------------------------------------------------------------ reservation expiry
async def test_an_unconfirmed_reservation_expires_and_the_wish_returns(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW, wall_reserve_hours=24)
    sessions = client.app[keys.SESSIONS]
    staff = await add_staff(sessions, "hj-e", "town_staff")
    case = await _accepted_wish(sessions)
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        w = await publish(db, case=c, staff=staff, text=GOOD_TEXT, handover="community_centre", now=NOW)
    r = await _claim_http(client, w.public_id)
    assert r.status == 302
    donor_page = r.headers["Location"]
    assert await _public_ids(client) == []
    assert await donor_sweeps(sessions=sessions, now=NOW + timedelta(hours=23)) == {
        "wall_expired": 0,
        "wall_settled": 0,
        "wall_thanks": 0,
        "lead_reminders": 0,
    }
    assert await _public_ids(client) == []
    counts = await donor_sweeps(sessions=sessions, now=NOW + timedelta(hours=25))
    assert counts["wall_expired"] == 1
    assert await _public_ids(client) == [w.public_id]
    assert "预留已过期" in await (await client.get(donor_page)).text()
    second = await _claim_http(client, w.public_id, donor_name="塘厦党支部", donor_type="party_branch")
    assert second.status == 302


async def test_a_second_claim_is_told_the_wish_is_taken(sqlite_url, tmp_path, aiohttp_client) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    staff = await add_staff(sessions, "hj-t", "town_staff")
    case = await _accepted_wish(sessions)
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        w = await publish(db, case=c, staff=staff, text=GOOD_TEXT, handover="community_centre", now=NOW)
    token = await csrf(client, f"/wall/{w.public_id}")
    assert (await _claim_http(client, w.public_id)).status == 302
    data = {"donor_type": "individual", "donor_name": "小林", "phone": "13700002222", "csrf_token": token}
    late = await client.post(f"/wall/{w.public_id}/claim", data=data, allow_redirects=False)
    assert late.status == 409 and "刚刚被其他爱心人士认领" in await late.text()
    for bad in ({"phone": "12345"}, {"donor_type": "alien"}, {"donor_name": ""}):
        r = await client.post(f"/wall/{w.public_id}/claim", data={**data, **bad}, allow_redirects=False)
        assert r.status == 400, bad
    async with sessions() as db:
        assert len((await db.exec(select(WallClaim))).all()) == 1


# ------------------------------------------------------------------ one match per wish: wall claim vs pushed offer
@pytest.mark.parametrize("claim_first", [True, False])
async def test_a_wall_claim_and_a_pushed_offer_give_one_match(sessions, claim_first: bool) -> None:
    for round_ in range(3):
        async with transaction(sessions) as db:
            staff = await mk_staff(db, f"hj-r{round_}-{claim_first}")
            await mk_resource(db, f"R{round_}{int(claim_first)}", openid=f"o-vol-r{round_}{int(claim_first)}")
            case = await mk_wish(db, owner=staff.id)
        async with transaction(sessions) as db:
            c = await db.get(Case, case.id)
            out = await pool.offer(db, case=c, actor=Actor.of_staff(staff), now=NOW)
            offer_id = out.sent[0].id
            c = await db.get(Case, case.id)
            w = await publish(db, case=c, staff=staff, text=GOOD_TEXT, handover="community_centre", now=NOW)
        form = check_claim_form(
            donor_name="爱心企业", donor_type="enterprise", phone="13600001111", message=""
        )

        async def by_wall(w: WallWish = w, form: Any = form) -> bool:
            try:
                async with transaction(sessions) as db:
                    await claim_wish(db, public_id=w.public_id, form=form, now=NOW, hold=timedelta(hours=48))
                return True
            except WallError:
                return False

        async def by_offer(offer_id: int = offer_id) -> bool:
            try:
                async with transaction(sessions) as db:
                    return (await pool.accept(db, offer_id=offer_id, now=NOW + timedelta(minutes=1))).ok
            except PoolError:
                return False

        jobs = (by_wall(), by_offer()) if claim_first else (by_offer(), by_wall())
        results = await asyncio.gather(*jobs)
        assert sum(results) == 1, results
        async with sessions() as db:
            accepted = (
                await db.exec(select(Offer).where(Offer.case_id == case.id, col(Offer.status) == "accepted"))
            ).all()
            claims = (await db.exec(select(WallClaim).where(WallClaim.wish_id == w.id))).all()
            status = (await db.exec(select(WallWish.status).where(WallWish.id == w.id))).one()
        assert len(accepted) + len(claims) == 1
        assert status == ("reserved" if claims else "matched_offer")


async def test_staff_outbox_hears_of_a_claim(sessions) -> None:
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj-o", openid="o-staff-o")
        case = await mk_wish(db, owner=staff.id)
        w = await publish(db, case=case, staff=staff, text=GOOD_TEXT, handover="community_centre", now=NOW)
    form = check_claim_form(
        donor_name="爱心人士", donor_type="individual", phone="13600001111", message="加油"
    )
    async with transaction(sessions) as db:
        await claim_wish(db, public_id=w.public_id, form=form, now=NOW, hold=timedelta(hours=1))
    async with sessions() as db:
        texts = (await db.exec(select(Outbox.text).where(Outbox.openid == "o-staff-o"))).all()
    assert any("圆梦墙" in t and "确认" in t for t in texts), texts


async def test_the_case_page_leads_to_the_publish_step(sqlite_url, tmp_path, aiohttp_client) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "hj-link", "town_staff")
    case = await _accepted_wish(sessions)
    await login(client, "hj-link", PASSWORD)
    page = await (await client.get(f"/staff/cases/{case.case_no}")).text()
    assert f'href="/staff/cases/{case.case_no}/wall"' in page
    publish_page = await (await client.get(f"/staff/cases/{case.case_no}/wall")).text()
    assert "公众将看到" in publish_page and "陈伯" not in publish_page.split('id="publish-form"')[0]


async def test_the_staff_figures_count_wall_claims_against_pushed_offers(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    staff = await add_staff(sessions, "hj-f", "town_staff")
    form = check_claim_form(donor_name="爱心人士", donor_type="individual", phone="13600001111", message="")
    async with transaction(
        sessions
    ) as db:  # seeded: 2 published (1 claimed 6 h later, fulfilled), 1 pushed match
        s = await db.get(type(staff), staff.id)
        done, waiting, pushed = [await mk_wish(db, owner=staff.id) for _ in range(3)]
        w1 = await publish(db, case=done, staff=s, text=GOOD_TEXT, handover="community_centre", now=NOW)
        await publish(
            db,
            case=waiting,
            staff=s,
            text="一户困难家庭需要一台冰箱",
            handover="community_centre",
            now=NOW,
        )
        res = await mk_resource(db, "F1")
        db.add(Offer(case_id=pushed.id, resource_id=res.id, status="accepted", offered_at=NOW))
        c = await claim_wish(
            db, public_id=w1.public_id, form=form, now=NOW + timedelta(hours=6), hold=timedelta(days=2)
        )
        await confirm_claim(db, claim_id=c.id, staff=s, now=NOW + timedelta(hours=7))
        await fulfil_claim(db, claim_id=c.id, staff=s, note="已送达", now=NOW + timedelta(hours=30))
    await login(client, "hj-f", PASSWORD)
    page = await (await client.get("/staff/wall")).text()
    figures = re.sub(r"\s+", " ", re.search(r'id="wall-figures">(.*?)</p>', page, re.S).group(1))  # type: ignore[union-attr]
    assert figures == "已发布 2 个心愿 · 圆梦墙认领 1 个 · 邀请对接 1 个 · 发布到认领中位 6.0 小时", figures
    assert "<td>厚街镇</td><td>2</td><td>1</td><td>50%</td>" in page


async def test_another_towns_staff_cannot_confirm_a_claim(sqlite_url, tmp_path, aiohttp_client) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    staff = await add_staff(sessions, "hj-j", "town_staff")
    await add_staff(sessions, "hm-j", "town_staff", town="虎门镇")
    form = check_claim_form(donor_name="爱心人士", donor_type="individual", phone="13600001111", message="")
    async with transaction(sessions) as db:
        s = await db.get(type(staff), staff.id)
        case = await mk_wish(db, owner=staff.id)
        w = await publish(db, case=case, staff=s, text=GOOD_TEXT, handover="community_centre", now=NOW)
        c = await claim_wish(db, public_id=w.public_id, form=form, now=NOW, hold=timedelta(days=2))
    await login(client, "hm-j", PASSWORD)
    assert "爱心人士" not in await (await client.get("/staff/wall")).text()
    token = await csrf(client, "/staff/wall")
    await client.post(f"/staff/wall/claims/{c.id}/confirm", data={"csrf_token": token}, allow_redirects=False)
    assert (await client.get(f"/staff/cases/{case.case_no}/wall")).status == 404
    async with sessions() as db:
        assert (await db.get(WallClaim, c.id)).status == "reserved"  # type: ignore[union-attr]
