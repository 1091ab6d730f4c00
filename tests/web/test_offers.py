"""The offer cascade through the database with time injected: offer, accept, decline, timeout → next,
exhaustion → flag, top-k first-accept-wins, concurrent accepts, progress reports, anti-hoarding."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import col, select

import bot.pool as pool
from bot.cases.lifecycle import Actor
from bot.db import transaction
from bot.deadlines.sweeps import offer_timeouts
from bot.models import Case, CaseEvent, Offer, Outbox, Resource
from matching.scoring import Rules
from tests.factories import NOW, OTHER, TOWN, mk_resource, mk_staff, mk_wish


@pytest.fixture(autouse=True)
def _fresh_cache():
    pool.POOL_CACHE.clear()
    yield
    pool.POOL_CACHE.clear()


async def _setup(sessions, n: int = 3, *, town: str = TOWN):
    """n volunteers of the town (v1 most reliable), one staff member owning a claimed wheelchair wish."""
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj", openid="o-staff-hj")
        res = [
            await mk_resource(db, f"V{i}", openid=f"o-vol-{i}", declines=i - 1, town=town)
            for i in range(1, n + 1)
        ]
        case = await mk_wish(db, owner=staff.id, town=town)
    return staff, res, case


async def _offers(sessions, case_id: int) -> list[tuple[str, str]]:
    async with sessions() as db:
        rows = (
            await db.exec(
                select(Offer, Resource)
                .join(Resource, col(Resource.id) == Offer.resource_id)
                .where(Offer.case_id == case_id)
                .order_by(col(Offer.id))
            )
        ).all()
        return [(r.key, o.status) for o, r in rows]


async def _case(sessions, case_id: int) -> Case:
    async with sessions() as db:
        return await db.get(Case, case_id)


async def _outbox(sessions, openid: str) -> list[Outbox]:
    async with sessions() as db:
        return list(
            (await db.exec(select(Outbox).where(Outbox.openid == openid).order_by(col(Outbox.id)))).all()
        )


async def _offer_to(sessions, case, staff, **kw):
    async with transaction(sessions) as db:
        c = await db.get(Case, case.id)
        return await pool.offer(db, case=c, actor=Actor.of_staff(staff), now=kw.pop("now", NOW), **kw)


async def test_single_offer_goes_to_the_best_candidate_with_a_signed_link(sessions):
    staff, res, case = await _setup(sessions)
    out = await _offer_to(sessions, case, staff)
    assert len(out.sent) == 1
    assert await _offers(sessions, case.id) == [("V1", "offered")]
    c = await _case(sessions, case.id)
    assert c.status == "matching"
    msgs = await _outbox(sessions, "o-vol-1")
    assert len(msgs) == 1 and msgs[0].recipient_type == "volunteer"
    assert case.case_no in msgs[0].text and "厚街镇" in msgs[0].text and "接受" in msgs[0].text
    assert "13912345678" not in msgs[0].text  # the resident's phone only after acceptance, on the page
    assert msgs[0].link == f"sign:offer:{out.sent[0].id}"
    assert all(len(v) <= 20 for v in msgs[0].template.values())
    async with sessions() as db:
        o = await db.get(Offer, out.sent[0].id)
        assert o.deadline == NOW + timedelta(hours=24) and o.score and "distance" in o.components
        assert (await db.get(Resource, res[0].id)).offers == 1
    assert await _outbox(sessions, "o-vol-2") == []


async def test_accept_matches_moves_the_case_and_tells_the_resident(sessions):
    staff, res, case = await _setup(sessions)
    out = await _offer_to(sessions, case, staff)
    async with transaction(sessions) as db:
        answer = await pool.accept(db, offer_id=out.sent[0].id, now=NOW + timedelta(hours=1))
    assert answer.ok and answer.code == "matched"
    assert await _offers(sessions, case.id) == [("V1", "accepted")]
    c = await _case(sessions, case.id)
    assert c.status == "in_progress"
    async with sessions() as db:
        assert (await db.get(Resource, res[0].id)).accepts == 1
        resident_msgs = (await db.exec(select(Outbox).where(Outbox.recipient_type == "resident"))).all()
    assert any("已有爱心人士认领" in m.text for m in resident_msgs)
    # a second accept by the same volunteer changes nothing
    async with transaction(sessions) as db:
        again = await pool.accept(db, offer_id=out.sent[0].id, now=NOW + timedelta(hours=2))
    assert not again.ok and again.code == "already_answered"


async def test_decline_offers_the_next_candidate(sessions):
    staff, res, case = await _setup(sessions)
    out = await _offer_to(sessions, case, staff)
    async with transaction(sessions) as db:
        answer = await pool.decline(db, resource_id=res[0].id, case_id=case.id, now=NOW + timedelta(hours=2))
    assert answer.ok and answer.code == "declined"
    assert await _offers(sessions, case.id) == [("V1", "declined"), ("V2", "offered")]
    async with sessions() as db:
        assert (await db.get(Resource, res[0].id)).declines == 1
        nxt = (await db.exec(select(Offer).where(Offer.status == "offered"))).one()
        assert nxt.deadline == NOW + timedelta(hours=26)  # a full deadline from when it really went out
    assert len(await _outbox(sessions, "o-vol-2")) == 1
    assert out.sent[0].id != nxt.id


async def test_timeouts_cascade_then_exhaustion_flags_the_case_and_alerts_staff(sessions):
    staff, res, case = await _setup(sessions, n=2)
    await _offer_to(sessions, case, staff)
    hook = pool.make_offer_timeout_hook(pool.DEFAULT_CONFIG)
    # nothing is due before the deadline
    assert await offer_timeouts(sessions=sessions, now=NOW + timedelta(hours=23), hook=hook) == 0
    assert await offer_timeouts(sessions=sessions, now=NOW + timedelta(hours=24, minutes=1), hook=hook) == 1
    assert await _offers(sessions, case.id) == [("V1", "timeout"), ("V2", "offered")]
    assert (await _case(sessions, case.id)).flag is None
    assert await offer_timeouts(sessions=sessions, now=NOW + timedelta(hours=49), hook=hook) == 1
    assert await _offers(sessions, case.id) == [("V1", "timeout"), ("V2", "timeout")]
    c = await _case(sessions, case.id)
    assert c.flag == "match_exhausted" and c.status == "matching"
    async with sessions() as db:
        notes = (
            await db.exec(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "note"))
        ).all()
        assert any("均未接受" in e.note and "超时2位" in e.note for e in notes)
        assert (await db.get(Resource, res[0].id)).timeouts == 1
    alerts = await _outbox(sessions, "o-staff-hj")
    assert len(alerts) == 1 and alerts[0].kind == "alert" and case.case_no in alerts[0].text
    # the sweep running again (restart) doubles nothing
    assert await offer_timeouts(sessions=sessions, now=NOW + timedelta(hours=50), hook=hook) == 0
    assert len(await _outbox(sessions, "o-staff-hj")) == 1
    # staff re-offer after adding a new volunteer: the flag clears
    async with transaction(sessions) as db:
        await mk_resource(db, "V9", openid="o-vol-9")
    out = await _offer_to(sessions, case, staff, now=NOW + timedelta(hours=51))
    assert [o.resource_id for o in out.sent] and (await _case(sessions, case.id)).flag is None


async def test_top_k_first_accept_wins_and_the_others_are_withdrawn(sessions):
    staff, res, case = await _setup(sessions, n=4)
    out = await _offer_to(sessions, case, staff, mode="top_k", k=3)
    assert len(out.sent) == 3
    assert await _offers(sessions, case.id) == [("V1", "offered"), ("V2", "offered"), ("V3", "offered")]
    async with transaction(sessions) as db:
        win = await pool.accept(db, resource_id=res[1].id, case_id=case.id, now=NOW + timedelta(hours=1))
    assert win.ok
    assert await _offers(sessions, case.id) == [("V1", "withdrawn"), ("V2", "accepted"), ("V3", "withdrawn")]
    assert any("其他爱心人士认领" in m.text for m in await _outbox(sessions, "o-vol-1"))
    async with transaction(sessions) as db:
        late = await pool.accept(db, resource_id=res[2].id, case_id=case.id, now=NOW + timedelta(hours=2))
    assert not late.ok and late.code == "already_matched" and "其他爱心人士" in late.message
    assert await _outbox(sessions, "o-vol-4") == []


async def test_top_k_decline_refills_the_slot(sessions):
    staff, res, case = await _setup(sessions, n=4)
    await _offer_to(sessions, case, staff, mode="top_k", k=2)
    async with transaction(sessions) as db:
        await pool.decline(db, resource_id=res[0].id, case_id=case.id, now=NOW + timedelta(hours=1))
    assert await _offers(sessions, case.id) == [("V1", "declined"), ("V2", "offered"), ("V3", "offered")]


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_accepts_give_exactly_one_match(sessions, round_):
    staff, res, case = await _setup(sessions, n=3)
    out = await _offer_to(sessions, case, staff, mode="top_k", k=3)

    async def accept(offer_id: int):
        async with transaction(sessions) as db:
            return await pool.accept(db, offer_id=offer_id, now=NOW + timedelta(minutes=5))

    answers = await asyncio.gather(*(accept(o.id) for o in out.sent))
    assert sorted(a.ok for a in answers) == [False, False, True]
    assert {a.code for a in answers if not a.ok} == {"already_matched"}
    statuses = [s for _, s in await _offers(sessions, case.id)]
    assert statuses.count("accepted") == 1 and statuses.count("withdrawn") == 2
    assert (await _case(sessions, case.id)).status == "in_progress"


async def test_progress_reports_complete_the_case_and_notify_the_resident(sessions):
    staff, res, case = await _setup(sessions, n=1)
    out = await _offer_to(sessions, case, staff)
    async with transaction(sessions) as db:
        await pool.accept(db, offer_id=out.sent[0].id, now=NOW + timedelta(hours=1))
    async with transaction(sessions) as db:
        o = await db.get(Offer, out.sent[0].id)
        await pool.report_progress(
            db,
            offer=o,
            stage="delivered",
            photo_url="https://img.example/1.jpg",
            now=NOW + timedelta(hours=5),
        )
    async with transaction(sessions) as db:
        o = await db.get(Offer, out.sent[0].id)
        with pytest.raises(pool.PoolError):
            await pool.report_progress(db, offer=o, stage="delivered", now=NOW + timedelta(hours=6))
    async with transaction(sessions) as db:
        o = await db.get(Offer, out.sent[0].id)
        await pool.report_progress(db, offer=o, stage="done", now=NOW + timedelta(hours=8))
    c = await _case(sessions, case.id)
    assert c.status == "completed"
    async with sessions() as db:
        assert (await db.get(Offer, out.sent[0].id)).status == "done"
        assert (await db.get(Resource, res[0].id)).completions == 1
        texts = [
            m.text for m in (await db.exec(select(Outbox).where(Outbox.recipient_type == "resident"))).all()
        ]
        photos = (await db.exec(select(CaseEvent).where(CaseEvent.kind == "photo"))).all()
    assert any("已送达" in t for t in texts) and any("已办结" in t for t in texts)
    assert photos and photos[0].data["photos"] == ["https://img.example/1.jpg"]


async def test_bad_photo_url_is_refused(sessions):
    staff, res, case = await _setup(sessions, n=1)
    out = await _offer_to(sessions, case, staff)
    async with transaction(sessions) as db:
        await pool.accept(db, offer_id=out.sent[0].id, now=NOW)
    async with transaction(sessions) as db:
        o = await db.get(Offer, out.sent[0].id)
        with pytest.raises(pool.PoolError, match="照片"):
            await pool.report_progress(db, offer=o, stage="done", photo_url="javascript:alert(1)", now=NOW)


async def test_anti_hoarding_and_hard_filters_through_the_database(sessions):
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj")
        busy = await mk_resource(db, "BUSY", capacity_open=10, capacity_month=20, accepts=50)
        await mk_resource(db, "OTHERTOWN", town=OTHER, accepts=50)
        await mk_resource(db, "OFF", active=False, accepts=50)
        await mk_resource(db, "TUTOR", categories=("助学",), items=("课业辅导",), accepts=50)
        await mk_resource(db, "FREE")
        # BUSY holds two accepted, unfinished matches
        for _ in range(2):
            other = await mk_wish(db, owner=staff.id, status="in_progress")
            db.add(
                Offer(
                    case_id=other.id, resource_id=busy.id, status="accepted", offered_at=NOW, answered_at=NOW
                )
            )
        case = await mk_wish(db, owner=staff.id)
    config = pool.PoolConfig(rules=Rules(max_unfinished=2))
    async with sessions() as db:
        c = await db.get(Case, case.id)
        keys = [x.key for x in await pool.rank_for_case(db, case=c, now=NOW, config=config)]
        assert keys == ["FREE"]
        keys = [x.key for x in await pool.rank_for_case(db, case=c, now=NOW)]
        assert "BUSY" in keys and "FREE" in keys and "OTHERTOWN" not in keys and "OFF" not in keys


async def test_snapshot_cache_sees_changes(sessions):
    staff, res, case = await _setup(sessions, n=2)
    async with sessions() as db:
        c = await db.get(Case, case.id)
        assert [x.key for x in await pool.rank_for_case(db, case=c, now=NOW)] == ["V1", "V2"]
    async with transaction(sessions) as db:
        await pool.set_active(
            db, staff=staff, resource=await db.get(Resource, res[0].id), active=False, now=NOW
        )
    async with sessions() as db:
        c = await db.get(Case, case.id)
        assert [x.key for x in await pool.rank_for_case(db, case=c, now=NOW)] == ["V2"]


async def test_offer_refuses_projects_and_cases_without_category(sessions):
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj")
        await mk_resource(db, "V1")
        nocat = await mk_wish(db, owner=staff.id, category=None)
        nocat.category = None
        await db.flush()
    with pytest.raises(pool.PoolError, match="类别"):
        await _offer_to(sessions, nocat, staff)
    assert await _offers(sessions, nocat.id) == []


async def test_unclaimed_wish_is_claimed_by_the_offering_staff(sessions):
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj")
        await mk_resource(db, "V1")
        case = await mk_wish(db, status="accepted")
    await _offer_to(sessions, case, staff)
    c = await _case(sessions, case.id)
    assert c.status == "matching" and c.claimed_by_id == staff.id


async def test_automatic_offer_for_configured_towns_only(sessions):
    async with transaction(sessions) as db:
        staff = await mk_staff(db, "hj")
        await mk_resource(db, "V1", openid="o-v1")
        await mk_resource(db, "V2", openid="o-v2")
        await mk_resource(db, "H1", town=OTHER, openid="o-h1")
        auto = await mk_wish(db, owner=staff.id)
        manual = await mk_wish(db, owner=staff.id, town=OTHER)
    config = pool.PoolConfig(auto_offer_towns=frozenset({"厚街镇"}), auto_k=2)
    async with transaction(sessions) as db:
        assert await pool.auto_offer_due(db, now=NOW, config=config) == 1
    assert [s for _, s in await _offers(sessions, auto.id)] == ["offered", "offered"]
    assert await _offers(sessions, manual.id) == []
    async with transaction(sessions) as db:  # idempotent
        assert await pool.auto_offer_due(db, now=NOW, config=config) == 0
