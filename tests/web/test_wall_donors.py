"""圆梦墙, the donor's side, through the real app: group claims (partial success named; two group claims racing over
overlapping wishes on SQLite and PostgreSQL give each wish to exactly one), trusted donors confirmed at once where the
town allows it (audited), the resident's thanks relayed to the donor, the thank-you certificate, the opt-in donor list
on the disclosure page, "near me", the rate limits of the claim and sign-up POSTs, and the wall figures on the stats
page."""

from __future__ import annotations

import asyncio
import io
import re
import time
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from PIL import Image
from sqlmodel import col, select

import bot.pool as pool
import bot.pool.certificate as certificate
from bot import keys
from bot.db import transaction
from bot.delivery.links import sign_link
from bot.models import AuditLog, Case, Feedback, Offer, Outbox, Resource, Staff, Survey, WallClaim, WallWish
from bot.pool.donor_sweeps import donor_sweeps
from bot.pool.wall import check_claim_form, claim_wish, confirm_claim, fulfil_claim, publish
from bot.pool.wallgroup import claim_group
from bot.web.views.leads import SIGNUP_LIMITS
from bot.web.views.wall import CLAIM_LIMITS
from tests.factories import NOW, PASSWORD, add_staff, mk_resource, mk_staff, mk_wish
from tests.helpers import TEST_REDIS_URL, app_client, csrf, login

RESIDENT = ("陈伯", "新围村三巷8号", "13912345678", "家里老人腿脚不便")
TEXTS = [
    "一位独居老人需要一辆轮椅",
    "一名三年级女生需要一个书包",
    "一户困难家庭需要一袋大米",
    "一位老人需要一台收音机",
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    pool.POOL_CACHE.clear()
    yield
    pool.POOL_CACHE.clear()


async def _published(sessions: Any, n: int, *, town: str = "厚街镇", staff_name: str = "hj-g") -> list[str]:
    """``n`` wishes of ``town`` on the wall; their public ids in publication order."""
    async with transaction(sessions) as db:
        staff = (await db.exec(select(Staff).where(Staff.username == staff_name))).first()
        staff = staff or await mk_staff(db, staff_name, town=town, openid=f"o-staff-{staff_name}")
        ids = []
        for i in range(n):
            case = await mk_wish(db, owner=staff.id, town=town, now=NOW - timedelta(days=n - i))
            w = await publish(
                db,
                case=case,
                staff=staff,
                text=TEXTS[i % len(TEXTS)],
                handover="community_centre",
                now=NOW - timedelta(days=n - i),
            )
            ids.append(w.public_id)
        return ids


async def _published_in(db: Any, text: str) -> list[str]:
    staff = (await db.exec(select(Staff).where(Staff.username == "hj-g"))).one()
    case = await mk_wish(db, owner=staff.id)
    return [
        (await publish(db, case=case, staff=staff, text=text, handover="community_centre", now=NOW)).public_id
    ]


def _form(name: str = "东莞爱心五金厂", kind: str = "enterprise", phone: str = "13600001111") -> Any:
    return check_claim_form(donor_name=name, donor_type=kind, phone=phone, message="祝您生活顺利")


async def _group_post(client: Any, ids: list[str], **over: str) -> aiohttp.ClientResponse:
    token = await csrf(client, "/wall/group")
    data: list[tuple[str, str]] = [("wish", pid) for pid in ids]
    fields = {
        "donor_type": "party_branch",
        "donor_name": "厚街镇某社区党支部",
        "phone": "13600003333",
        "message": "党员们祝您身体健康",
        "csrf_token": token,
        **over,
    }
    data += list(fields.items())
    return await client.post("/wall/group", data=data, allow_redirects=False)


# ------------------------------------------------------------------ group claims
async def test_a_group_claim_reserves_each_wish_and_names_the_one_already_taken(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    ids = await _published(sessions, 3)
    page = await (await client.get("/wall/group")).text()
    assert all(f'value="{pid}"' in page for pid in ids)

    async with transaction(sessions) as db:  # someone else claims the second wish first
        await claim_wish(
            db, public_id=ids[1], form=_form("小林", "individual"), now=NOW, hold=timedelta(hours=48)
        )

    r = await _group_post(client, ids)
    body = await r.text()
    assert r.status == 200 and 'id="group-taken"' in body
    taken = body.split('id="group-taken"')[1].split("</section>")[0]
    assert TEXTS[1] in taken and "刚刚被其他爱心人士认领" in taken and TEXTS[0] not in taken
    assert 'id="group-count">2<' in body
    async with sessions() as db:
        mine = (await db.exec(select(WallClaim).where(col(WallClaim.group_token).is_not(None)))).all()
    assert len(mine) == 2 and len({c.group_token for c in mine}) == 1
    assert {c.donor_type for c in mine} == {"party_branch"}
    # the group's own page lists both, each with its own page; nothing of the residents
    group_page = await (await client.get(f"/wall/groups/{mine[0].group_token}")).text()
    assert group_page.count("data-claim=") == 2 and TEXTS[0] in group_page and TEXTS[2] in group_page
    for secret in RESIDENT:
        assert secret not in group_page
    assert re.findall(r'data-wish="([a-z0-9]{8})"', await (await client.get("/wall")).text()) == []
    async with sessions() as db:  # the town's staff heard of the group claim once, not once a wish
        alerts = (await db.exec(select(Outbox.text).where(Outbox.openid == "o-staff-hj-g"))).all()
    assert [t for t in alerts if "一次认领" in t] == [
        "党支部「厚街镇某社区党支部」在圆梦墙一次认领了厚街镇的2个心愿，2个等待确认，请在圆梦墙认领页面处理。"
    ]
    assert len(alerts) == 2  # and once for 小林's own claim


@pytest.mark.parametrize(
    ("over", "ids_of"),
    [
        ({"donor_type": "individual"}, lambda ids: ids),  # a group claim is for organisations
        ({}, lambda ids: []),  # nothing ticked
        ({}, lambda ids: ["ZZZZZZZZ"]),  # not a public id
        ({}, lambda ids: [f"{i:08d}" for i in range(21)]),  # too many
        ({"phone": "123"}, lambda ids: ids),
    ],
)
async def test_a_bad_group_form_is_refused_in_words(
    sqlite_url, tmp_path, aiohttp_client, over, ids_of
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    ids = await _published(client.app[keys.SESSIONS], 2)
    r = await _group_post(client, ids_of(ids), **over)
    assert r.status == 400 and 'id="group-error"' in await r.text()
    async with client.app[keys.SESSIONS]() as db:
        assert (await db.exec(select(WallClaim))).all() == []


async def test_a_group_claim_of_only_taken_wishes_says_so(sqlite_url, tmp_path, aiohttp_client) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    ids = await _published(sessions, 1)
    async with transaction(sessions) as db:
        await claim_wish(db, public_id=ids[0], form=_form(), now=NOW, hold=timedelta(hours=48))
    r = await _group_post(client, ids)
    assert r.status == 409 and "所选心愿都没能认领" in await r.text()


async def test_two_group_claims_over_overlapping_wishes_give_each_wish_once(sessions) -> None:
    """SQLite and PostgreSQL: A takes wishes 0-3, B takes 2-5, at the same time, three rounds."""
    for round_ in range(3):
        ids = await _published(sessions, 6, staff_name=f"hj-race{round_}")
        a_ids, b_ids = ids[:4], list(reversed(ids[2:]))  # B ticks them in the opposite order

        async def group(public_ids: list[str], name: str) -> set[str]:
            async with transaction(sessions) as db:
                result = await claim_group(
                    db, public_ids=public_ids, form=_form(name), now=NOW, hold=timedelta(hours=48)
                )
            assert {p for p, _ in result.claimed} | {p for p, _ in result.taken} == set(public_ids)
            return {p for p, _ in result.claimed}

        got_a, got_b = await asyncio.gather(group(a_ids, "甲企业"), group(b_ids, "乙党支部"))
        assert not got_a & got_b, (got_a, got_b)
        assert got_a | got_b == set(ids)
        async with sessions() as db:
            rows = (
                await db.exec(
                    select(WallWish.public_id, WallWish.status, WallClaim.donor_name)
                    .join(WallClaim, col(WallClaim.id) == col(WallWish.claim_id))
                    .where(col(WallWish.public_id).in_(ids))
                )
            ).all()
            claims = (
                await db.exec(
                    select(WallClaim.wish_id)
                    .join(WallWish, col(WallWish.id) == col(WallClaim.wish_id))
                    .where(col(WallWish.public_id).in_(ids))
                )
            ).all()
        assert len(rows) == 6 and {s for _, s, _ in rows} == {"reserved"}
        assert len(claims) == 6  # one claim row per wish: the loser of each wish wrote nothing
        assert {p for p, _, n in rows if n == "甲企业"} == got_a


# ------------------------------------------------------------------ trusted donors: auto-confirm, audited
async def test_a_trusted_donor_is_confirmed_at_once_only_where_the_town_allows_it(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW, link_secret="l" * 40)
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "hj-town", "town_staff")
    await add_staff(sessions, "hj-boss", "town_supervisor")
    ids = await _published(sessions, 3)
    async with transaction(sessions) as db:
        res = await mk_resource(db, "T01", name="可信粮油店", openid="o-trusted")
        res.kind = "enterprise"
    tasks = sign_link("l" * 40, "tasks", res.id or 0, ttl=86400, now=NOW.timestamp())

    async def claim_as_resource(pid: str) -> WallClaim:
        page = await (await client.get(f"/wall/{pid}?t={tasks}")).text()
        assert 'id="as-resource"' in page and "可信粮油店" in page
        token = await csrf(client, f"/wall/{pid}?t={tasks}")
        r = await client.post(
            f"/wall/{pid}/claim",
            data={
                "t": tasks,
                "message": "",
                "csrf_token": token,
                "donor_name": "冒名",
                "phone": "13000000000",
            },
            allow_redirects=False,
        )
        assert r.status == 302, await r.text()
        async with sessions() as db:
            w = (await db.exec(select(WallWish).where(WallWish.public_id == pid))).one()
            return (await db.exec(select(WallClaim).where(WallClaim.wish_id == w.id))).one()

    # trusted but the town has not chosen auto-confirm: staff still confirm
    await login(client, "hj-town", PASSWORD)
    token = await csrf(client, "/staff/pool/T01")
    r = await client.post("/staff/pool/T01/trusted", data={"trusted": "1", "csrf_token": token})
    assert r.status == 200 and '<b id="trusted-state">可信爱心资源</b>' in await r.text()
    async with sessions() as db:
        assert (await db.get(Resource, res.id, populate_existing=True)).trusted is True  # type: ignore[union-attr]
    first = await claim_as_resource(ids[0])
    assert first.status == "reserved" and first.resource_id == res.id and first.donor_name == "可信粮油店"
    assert first.phone == "13800001111"  # the resource's own phone, not the form's

    # a town worker may not switch the town's setting; the supervisor may
    token = await csrf(client, "/staff/wall")
    await client.post("/staff/wall/settings", data={"auto_confirm": "1", "csrf_token": token})
    client.session.cookie_jar.clear()
    await login(client, "hj-boss", PASSWORD)
    token = await csrf(client, "/staff/wall")
    r = await client.post("/staff/wall/settings", data={"auto_confirm": "1", "csrf_token": token})
    assert "自动确认" in await r.text()
    second = await claim_as_resource(ids[1])
    assert second.status == "confirmed" and second.auto_confirmed and second.confirmed_by_id is None
    async with sessions() as db:
        w = await db.get(WallWish, second.wish_id)
        case = await db.get(Case, w.case_id)  # type: ignore[union-attr]
        actions = [a.action for a in (await db.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()]
    assert case is not None and case.status == "in_progress"
    assert actions.count("wall_town_setting") == 1  # the town worker's attempt changed and logged nothing
    assert "pool_trusted" in actions and "wall_auto_confirm" in actions
    donor_page = await (await client.get(f"/wall/claims/{second.token}")).text()
    assert 'id="auto-confirmed"' in donor_page and 'id="what"' in donor_page

    # an ordinary web claim in the same town is not confirmed, whatever name or phone it gives
    token = await csrf(client, f"/wall/{ids[2]}")
    data = {
        "donor_type": "enterprise",
        "donor_name": "可信粮油店",
        "phone": "13800001111",
        "csrf_token": token,
    }
    assert (await client.post(f"/wall/{ids[2]}/claim", data=data, allow_redirects=False)).status == 302
    async with sessions() as db:
        w = (await db.exec(select(WallWish).where(WallWish.public_id == ids[2]))).one()
        third = (await db.exec(select(WallClaim).where(WallClaim.wish_id == w.id))).one()
    assert third.status == "reserved" and third.resource_id is None
    # the donor's tasks page keeps their wall claims, and leads to the wall in their name
    tasks_page = await (await client.get(f"/v/tasks?t={tasks}")).text()
    mine = tasks_page.split('id="tasks-wall"')[1].split("</section>")[0]
    assert TEXTS[0] in mine and TEXTS[1] in mine and TEXTS[2] not in mine
    assert f"/wall/claims/{second.token}" in mine and 'id="wall-as-resource"' in mine
    async with transaction(sessions) as db:  # a fourth wish, to browse to with the link
        (extra,) = await _published_in(db, "一位老人需要一台收音机")
    wall_page = await (await client.get(f"/wall?t={tasks}")).text()
    assert 'id="as-resource"' in wall_page and f'href="/wall/{extra}?t=' in wall_page
    # a group claim in the resource's name (trusted, the town confirms at once): every wish confirmed
    async with transaction(sessions) as db:
        more = [*(await _published_in(db, TEXTS[2])), *(await _published_in(db, TEXTS[3]))]
    group_page = await (await client.get(f"/wall/group?t={tasks}")).text()
    assert 'id="as-resource"' in group_page and 'name="donor_name"' not in group_page
    token = await csrf(client, f"/wall/group?t={tasks}")
    data = [
        ("wish", more[0]),
        ("wish", more[1]),
        ("t", tasks),
        ("donor_type", "enterprise"),
        ("csrf_token", token),
    ]
    r = await client.post("/wall/group", data=data, allow_redirects=False)
    assert r.status == 302, await r.text()
    async with sessions() as db:
        group = (await db.exec(select(WallClaim).where(col(WallClaim.group_token).is_not(None)))).all()
    assert [(c.status, c.resource_id, c.auto_confirmed) for c in group] == [("confirmed", res.id, True)] * 2
    # a forged link is refused in words
    bad = await client.get(f"/wall/{ids[2]}?t=tasks.1.9999999999.forged")
    assert bad.status == 400 and "链接已失效" in await bad.text()


# ------------------------------------------------------------------ thanks, the certificate, the public list
async def _fulfilled(
    sessions: Any, pid: str, *, resource_id: int | None = None, listed: bool, name: str, at: Any = NOW
) -> WallClaim:
    async with transaction(sessions) as db:
        staff = (await db.exec(select(Staff).where(Staff.username == "hj-g"))).one()
        c = await claim_wish(
            db,
            public_id=pid,
            form=_form(name),
            now=at,
            hold=timedelta(hours=48),
            resource_id=resource_id,
            listed=listed,
        )
        await confirm_claim(db, claim_id=c.id or 0, staff=staff, now=at)
        await fulfil_claim(db, claim_id=c.id or 0, staff=staff, note="已送到社区", now=at)
        return c


async def test_the_residents_thanks_reach_the_donor_and_the_certificate_names_only_the_donor(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW, link_secret="l" * 40)
    sessions = client.app[keys.SESSIONS]
    (pid,) = await _published(sessions, 1)
    async with transaction(sessions) as db:
        res = await mk_resource(db, "B01", name="厚街爱心五金厂", openid="o-donor-b01")
    c = await _fulfilled(sessions, pid, resource_id=res.id, listed=False, name="东莞爱心五金厂")
    page = await (await client.get(f"/wall/claims/{c.token}")).text()
    assert 'id="thanks"' not in page and 'id="certificate"' in page
    assert await donor_sweeps(sessions=sessions, now=NOW) == {
        "wall_expired": 0,
        "wall_settled": 0,
        "wall_thanks": 0,
        "lead_reminders": 0,
    }

    # the resident answers the survey on its page: 5 points and a word of thanks with a phone number in it
    async with sessions() as db:
        w = (await db.exec(select(WallWish).where(WallWish.public_id == pid))).one()
        survey = (await db.exec(select(Survey).where(Survey.case_id == w.case_id))).one()
    token = sign_link("l" * 40, "survey", survey.id or 0, ttl=86400, now=NOW.timestamp())
    form_token = await csrf(client, f"/survey/{token}")
    thanks = "轮椅很好用，谢谢好心人！有空来坐坐，我电话13912345678"
    r = await client.post(
        f"/survey/{token}", data={"score": "5", "comment": thanks, "csrf_token": form_token}
    )
    assert r.status == 200
    assert (await donor_sweeps(sessions=sessions, now=NOW + timedelta(minutes=1)))["wall_thanks"] == 1
    assert (await donor_sweeps(sessions=sessions, now=NOW + timedelta(minutes=2)))["wall_thanks"] == 0  # once
    page = await (await client.get(f"/wall/claims/{c.token}")).text()
    shown = page.split('id="thanks"')[1].split("</section>")[0]
    assert "轮椅很好用，谢谢好心人" in shown and "13912345678" not in shown and "139****5678" in shown
    async with sessions() as db:
        to_donor = (await db.exec(select(Outbox.text).where(Outbox.openid == "o-donor-b01"))).all()
    relayed = [t for t in to_donor if "收到了受助人的感谢" in t]
    assert len(relayed) == 1 and "轮椅很好用" in relayed[0] and "13912345678" not in relayed[0]
    assert any("已确认" in t for t in to_donor) and any("已经实现" in t and "感谢信" in t for t in to_donor)

    # the certificate: a PNG of the agreed size with the donor's name and what they gave; no resident data
    r = await client.get(f"/wall/claims/{c.token}/certificate.png")
    assert r.status == 200 and r.content_type == "image/png"
    img = Image.open(io.BytesIO(await r.read()))
    assert img.size == (certificate.WIDTH, certificate.HEIGHT)
    assert img.getpixel((33, 400)) == certificate.RED  # the border was drawn
    title = img.crop((300, 130, 780, 250)).getcolors(maxcolors=1 << 16) or []
    assert sum(n for n, colour in title if colour != certificate.PAPER) > 2000  # and the title's glyphs
    words = " ".join(
        certificate.lines_of(
            certificate.Certificate("民生大莞家", "爱心企业东莞爱心五金厂", "轮椅", "厚街镇", "2026年3月2日")
        ).values()
    )
    svg = await (await client.get(f"/wall/claims/{c.token}/certificate.svg")).text()
    for text in (svg, words):
        assert "东莞爱心五金厂" in text and "民生大莞家" in text and "轮椅" in text
        for secret in RESIDENT:
            assert secret not in text
    assert "2026年3月2日" in svg  # the day of fulfilment in China time
    # another claim's certificate does not exist before fulfilment; unknown tokens are 404
    assert (await client.get("/wall/claims/" + "x" * 32 + "/certificate.png")).status == 404


async def test_without_a_cjk_font_the_certificate_is_an_svg(
    sqlite_url, tmp_path, aiohttp_client, monkeypatch
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    (pid,) = await _published(sessions, 1)
    c = await _fulfilled(sessions, pid, listed=False, name="某社会组织")
    monkeypatch.setattr(certificate, "FONT_CANDIDATES", ("/nonexistent/font.ttc",))
    r = await client.get(f"/wall/claims/{c.token}/certificate.png")
    assert r.status == 200 and r.content_type == "image/svg+xml" and "某社会组织" in await r.text()


async def test_a_reserved_claim_has_no_certificate(sqlite_url, tmp_path, aiohttp_client) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    (pid,) = await _published(client.app[keys.SESSIONS], 1)
    async with transaction(client.app[keys.SESSIONS]) as db:
        c = await claim_wish(db, public_id=pid, form=_form(), now=NOW, hold=timedelta(hours=48))
    assert (await client.get(f"/wall/claims/{c.token}/certificate.png")).status == 404
    assert 'id="certificate"' not in await (await client.get(f"/wall/claims/{c.token}")).text()


async def test_the_public_donor_list_names_only_those_who_opted_in(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    hj = await _published(sessions, 2)
    hm = await _published(sessions, 1, town="虎门镇", staff_name="hm-g")
    await _fulfilled(sessions, hj[0], listed=True, name="愿意公开的五金厂")
    await _fulfilled(sessions, hj[1], listed=False, name="低调的粮油店")
    async with transaction(
        sessions
    ) as db:  # the 虎门 wish is fulfilled by a listed donor in the month before
        staff = (await db.exec(select(Staff).where(Staff.username == "hm-g"))).one()
        earlier = NOW - timedelta(days=20)
        c = await claim_wish(
            db,
            public_id=hm[0],
            form=_form("虎门党支部", "party_branch"),
            now=earlier,
            hold=timedelta(hours=48),
            listed=True,
        )
        await confirm_claim(db, claim_id=c.id or 0, staff=staff, now=earlier)
        await fulfil_claim(db, claim_id=c.id or 0, staff=staff, note="已送到", now=earlier)
    city = await (await client.get("/public")).text()
    board = city.split('id="donor-list"')[1].split("</section>")[0]
    assert "愿意公开的五金厂" in board and "低调的粮油店" not in board and "虎门党支部" in board
    assert "2026年3月 · 厚街镇" in board and "2026年2月 · 虎门镇" in board
    assert board.index("2026年3月") < board.index("2026年2月")  # newest month first
    town = (await (await client.get("/public?town=虎门镇")).text()).split('id="donor-list"')[1]
    assert (
        "虎门党支部" in town.split("</section>")[0] and "愿意公开的五金厂" not in town.split("</section>")[0]
    )
    async with sessions() as db:
        listed = (await db.exec(select(WallClaim).where(col(WallClaim.listed_at).is_not(None)))).all()
    assert {c.listed_at for c in listed} == {NOW, earlier}  # the opt-in is kept with its date
    for secret in RESIDENT:
        assert secret not in board


# ------------------------------------------------------------------ near me
async def test_near_me_turns_a_shared_location_into_the_nearest_town(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    hj = await _published(sessions, 1)
    hm = await _published(sessions, 1, town="虎门镇", staff_name="hm-g")
    ids = lambda body: re.findall(r'data-wish="([a-z0-9]{8})"', body)  # noqa: E731
    # a point in 厚街 (22.945, 113.672) and one in 虎门 (22.815, 113.668)
    page = await (await client.get("/wall?lat=22.95&lon=113.67")).text()
    assert ids(page) == hj and "离您最近的是<b>厚街镇</b>" in page and "不会保存" in page
    assert ids(await (await client.get("/wall?lat=22.81&lon=113.67")).text()) == hm
    listing = await (await client.get("/wall.json?lat=22.81&lon=113.67")).json()
    assert listing["town"] == "虎门镇" and [w["id"] for w in listing["wishes"]] == hm
    assert ids(await (await client.get("/wall?town=虎门镇")).text()) == hm  # by town, without location
    for bad in ("lat=abc&lon=113.6", "lat=22.9&lon=1e3", "lat=²²&lon=113", "lat=91&lon=113.6"):
        r = await client.get(f"/wall?{bad}")
        assert r.status == 400, bad
    far = await client.get("/wall?lat=39.90&lon=116.40")  # Beijing
    assert far.status == 400 and "不在东莞市内" in await far.text()
    async with sessions() as db:  # nothing of the location was written anywhere
        assert (await db.exec(select(AuditLog))).all() == []


# ------------------------------------------------------------------ rate limits
async def test_claims_are_rate_limited_per_address_and_per_phone(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    ids = await _published(client.app[keys.SESSIONS], 7)
    token = await csrf(client, f"/wall/{ids[0]}")
    data = {"donor_type": "individual", "donor_name": "小林", "phone": "13700002222", "csrf_token": token}
    statuses = [
        (await client.post(f"/wall/{pid}/claim", data=data, allow_redirects=False)).status for pid in ids[:6]
    ]
    assert statuses == [302] * 5 + [429]  # the sixth claim with the same phone within the hour
    limited = await client.post(f"/wall/{ids[6]}/claim", data=data, allow_redirects=False)
    assert limited.status == 429 and "提交太频繁了，请一小时后再试" in await limited.text()
    other_phone = {**data, "phone": "13700003333"}
    assert (await client.post(f"/wall/{ids[6]}/claim", data=other_phone, allow_redirects=False)).status == 302
    # per address: CLAIM_LIMITS["ip"] claim POSTs an hour whatever the phone (bad forms count too); 8 so far
    left = CLAIM_LIMITS["ip"] - 8
    rest = [
        (
            await client.post(f"/wall/{ids[0]}/claim", data={**data, "phone": "123"}, allow_redirects=False)
        ).status
        for _ in range(left + 1)
    ]
    assert rest == [400] * left + [429]
    group = await _group_post(client, ids[:1])
    assert group.status == 429 and "提交太频繁了" in await group.text()
    async with client.app[keys.SESSIONS]() as db:
        assert len((await db.exec(select(WallClaim))).all()) == 6


async def test_sign_ups_are_rate_limited_per_address_and_per_phone(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    signup = {
        "kind": "enterprise",
        "name": "爱心粮油店",
        "contact": "林经理",
        "phone": "13700001234",
        "town": "厚街镇",
        "categories": "生活物资",
        "items": "大米",
        "capacity": "3",
        "max_fund": "",
    }

    async def post(**over: str) -> aiohttp.ClientResponse:
        token = await csrf(client, "/donate")
        return await client.post(
            "/donate", data={**signup, **over, "csrf_token": token}, allow_redirects=False
        )

    assert [(await post()).status for _ in range(4)] == [200, 200, 200, 429]  # 3 per phone an hour
    r = await post(phone="13700005678")
    assert r.status == 200
    # per address: SIGNUP_LIMITS["ip"] an hour (5 so far), each with a new phone
    more = [(await post(phone=f"1370000{n:04d}")).status for n in range(SIGNUP_LIMITS["ip"] - 5)]
    assert more == [200] * (SIGNUP_LIMITS["ip"] - 5)
    r = await post(phone="13799999999")
    assert r.status == 429 and "提交太频繁了，请一小时后再试" in await r.text()
    async with client.app[keys.SESSIONS]() as db:
        assert len((await db.exec(select(Resource))).all()) == SIGNUP_LIMITS["ip"] - 1


# ------------------------------------------------------------------ statistics
async def test_the_stats_page_shows_the_wall_against_pushed_offers_and_the_rate_per_town(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    await add_staff(sessions, "adm-w", "admin", town=None)
    hj = await _published(sessions, 3)  # published 3, 2 and 1 days before NOW
    await _published(sessions, 1, town="虎门镇", staff_name="hm-g")
    await _fulfilled(sessions, hj[0], listed=False, name="甲")  # claimed 3 days (72 h) after publication
    async with transaction(sessions) as db:
        staff = (await db.exec(select(Staff).where(Staff.username == "hj-g"))).one()
        c = await claim_wish(db, public_id=hj[1], form=_form("乙"), now=NOW, hold=timedelta(hours=48))
        await confirm_claim(db, claim_id=c.id or 0, staff=staff, now=NOW)  # 48 h after publication
        pushed = await mk_wish(db, owner=staff.id)
        res = await mk_resource(db, "P01", openid="o-p01")
        out = await pool.offer(db, case=pushed, actor=pool_actor(staff), now=NOW)
        assert (await pool.accept(db, offer_id=out.sent[0].id, now=NOW)).ok
        assert res.id
    await login(client, "adm-w", PASSWORD)
    page = await (await client.get("/staff/stats")).text()
    section = page.split('id="wall-stats"')[1].split("</section>")[0]
    assert 'id="wall-published">4<' in section and 'id="wall-matched">2<' in section
    assert 'id="offer-matched">1<' in section
    assert 'id="wall-median">60.0<' in section and 'id="wall-mean">60.0<' in section  # (72 + 48) / 2
    rows = re.findall(
        r"<tr><td>(\S+)</td><td class=\"num\">(\d+)</td><td class=\"num\">(\d+)</td><td class=\"num\">(\d+)%",
        section,
    )
    assert rows == [("厚街镇", "3", "1", "33"), ("虎门镇", "1", "0", "0")]


def pool_actor(staff: Staff) -> Any:
    from bot.cases.lifecycle import Actor  # the staff actor for a pushed offer in the statistics test

    return Actor.of_staff(staff)


# ------------------------------------------------------------------ WeChat: binding in the sign-up, claiming in chat
async def test_a_donor_binds_wechat_when_signing_up_and_claims_from_chat(keyword_system: Any) -> None:
    system = keyword_system
    sessions = system.app[keys.SESSIONS]
    await add_staff(sessions, "hj-chat-w", "town_staff")
    ids = await _published(sessions, 2)
    far = await _published(sessions, 1, town="凤岗镇", staff_name="fg-g")  # 55 km from 厚街
    donor, stranger = system.user(), system.user()
    async with aiohttp.ClientSession(
        base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as web:
        token = await csrf(web, "/donate")
        form = {
            "kind": "enterprise",
            "name": "厚街爱心粮油店",
            "contact": "林经理",
            "phone": "13700001234",
            "town": "厚街镇",
            "categories": "生活物资",
            "items": "大米",
            "capacity": "3",
            "csrf_token": token,
        }
        thanks = await (await web.post("/donate", data=form)).text()
        code = re.search(r"志愿者绑定 (\d{6})", thanks).group(1)  # type: ignore[union-attr]

        reply = await donor.send_text(f"志愿者绑定 {code}")
        assert "绑定成功" in reply.text
        async with sessions() as db:
            res = (await db.exec(select(Resource).where(Resource.name == "厚街爱心粮油店"))).one()
        assert res.openid == donor.openid and res.active is False  # bound while staff review the sign-up

        # before review the donor browses like anyone: links, no claiming in chat
        browse = (await donor.send_text("看看心愿")).text
        assert "全市等待认领的心愿" in browse and f"/wall/{ids[0]}" in browse and "认领 编号" not in browse
        refused = (await donor.send_text(f"认领 {ids[0]}")).text
        assert "先加入爱心资源库" in refused

        await login(web, "hj-chat-w", PASSWORD)
        async with sessions() as db:
            from bot.models import Lead  # the sign-up's lead, to activate it as staff do

            lead = (await db.exec(select(Lead).where(Lead.resource_id == res.id))).one()
        token = await csrf(web, "/staff/leads")
        await web.post(f"/staff/leads/{lead.id}/activate", data={"csrf_token": token})

    # active and bound: the list is near the donor (厚街 first) and says how to claim
    listing = (await donor.send_text("我想认领")).text
    assert listing.startswith("厚街镇附近等待认领的心愿") and "认领 编号" in listing
    assert listing.index(ids[0]) < listing.index(ids[1]) and far[0] not in listing
    for secret in RESIDENT:
        assert secret not in listing
    claimed = (await donor.send_text(f"认领 {ids[1].upper()}")).text
    assert "已为您保留这个心愿" in claimed and "/wall/claims/" in claimed
    async with sessions() as db:
        c = (await db.exec(select(WallClaim))).one()
    assert c.resource_id == res.id and c.donor_name == "厚街爱心粮油店" and c.status == "reserved"
    # the case's owner confirms on the staff page: the donor hears of it in WeChat (details stay on their page)
    async with aiohttp.ClientSession(
        base_url=system.bot_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as web:
        await login(web, "hj-g", PASSWORD)
        token = await csrf(web, "/staff/wall")
        assert (
            await web.post(f"/staff/wall/claims/{c.id}/confirm", data={"csrf_token": token})
        ).status == 200
    async with sessions() as db:
        to_donor = (await db.exec(select(Outbox.text).where(Outbox.openid == donor.openid))).all()
    assert any("已确认" in t and "认领页面" in t for t in to_donor), to_donor
    again = (await donor.send_text(f"认领 {ids[1]}")).text
    assert "不在圆梦墙上" in again or "刚刚被其他爱心人士认领" in again
    # someone not in the pool: "认领 <编号>" points to the sign-up, "我想认领" is an offer of help (a lead)
    assert "/donate" in (await stranger.send_text(f"认领 {ids[0]}")).text
    await stranger.send_text("我想认领")
    async with sessions() as db:
        from bot.models import Lead  # the chat lead of the stranger's offer of help

        assert (await db.exec(select(Lead).where(Lead.openid == stranger.openid))).first() is not None


async def test_praise_in_chat_after_fulfilment_reaches_the_donor_but_a_complaint_does_not(sessions) -> None:
    ids = await _published(sessions, 2)
    praised = await _fulfilled(sessions, ids[0], listed=False, name="甲")
    complained = await _fulfilled(sessions, ids[1], listed=False, name="乙")
    async with transaction(sessions) as db:
        for c, score, text in ((praised, 5, "太感谢了，孩子很喜欢"), (complained, 2, "东西不太合适")):
            w = await db.get(WallWish, c.wish_id)
            db.add(Feedback(case_id=w.case_id, score=score, text=text, created_at=NOW + timedelta(hours=1)))  # type: ignore[union-attr]
    assert (await donor_sweeps(sessions=sessions, now=NOW + timedelta(hours=2)))["wall_thanks"] == 1
    async with sessions() as db:
        got = {c.donor_name: c.thanks for c in (await db.exec(select(WallClaim))).all()}
    assert got == {"甲": "太感谢了，孩子很喜欢", "乙": None}


async def test_a_pool_donor_who_opted_in_at_sign_up_is_listed_for_completed_offers(
    sqlite_url, tmp_path, aiohttp_client
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW)
    sessions = client.app[keys.SESSIONS]
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj-offer")
        for key, listed in (("L01", True), ("L02", False)):
            res = await mk_resource(db, key, name=f"资源{key}")
            res.listed_at = NOW - timedelta(days=40) if listed else None
            case = await mk_wish(db, owner=staff.id, status="completed")
            db.add(
                Offer(
                    case_id=case.id or 0,
                    resource_id=res.id or 0,
                    status="done",
                    finished_at=NOW - timedelta(days=1),
                )
            )
    board = (await (await client.get("/public")).text()).split('id="donor-list"')[1].split("</section>")[0]
    assert "资源L01" in board and "资源L02" not in board and "2026年3月 · 厚街镇" in board


@pytest.mark.redis
async def test_two_workers_share_the_claim_limit_through_redis(sqlite_url, tmp_path, aiohttp_client) -> None:
    """Two app processes' worth (two apps on one database and one Redis): the per-phone count is shared."""
    import redis.asyncio as aioredis  # only this test talks to Redis directly

    direct = aioredis.from_url(TEST_REDIS_URL)
    phone = f"137{time.time_ns() % 10**8:08d}"  # a phone no earlier run counted
    try:
        for key in await direct.keys("dgj:rate:wall:ip:*"):  # the fixed clock's window of an earlier run
            await direct.delete(key)
        first = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW, redis_url=TEST_REDIS_URL)
        second = await app_client(
            sqlite_url, tmp_path / "b", aiohttp_client, now=NOW, redis_url=TEST_REDIS_URL
        )
        ids = await _published(first.app[keys.SESSIONS], 6)
        statuses = []
        for i, pid in enumerate(ids):
            client = first if i % 2 else second
            token = await csrf(client, f"/wall/{pid}")
            data = {"donor_type": "individual", "donor_name": "小林", "phone": phone, "csrf_token": token}
            statuses.append(
                (await client.post(f"/wall/{pid}/claim", data=data, allow_redirects=False)).status
            )
        assert statuses == [302] * 5 + [429]
        assert await direct.keys(f"dgj:rate:wall:phone:{phone}:*")
    finally:
        await direct.aclose()
