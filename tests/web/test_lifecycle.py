"""The case state machine: every allowed transition, every forbidden one, the outbox rows, retries, claims."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.cases.communities import resolve
from bot.cases.lifecycle import (
    OWNED_STATES,
    ROLES,
    STATE_LABEL,
    TRANSITIONS,
    Actor,
    BindError,
    ClaimConflict,
    StaffCaseInput,
    TransitionError,
    allowed_actions,
    ask_resident,
    bind_case,
    cancel_by_resident,
    claim,
    complete,
    create_staff_case,
    edit_case,
    merge_case,
    reassign,
    record_resident_answer,
    transition,
)
from bot.cases.numbering import create_case
from bot.cases.table import SPECIAL_ACTIONS  # each has its own function and its own tests
from bot.db import make_engine, make_sessions, migrate, transaction
from bot.models import Case, CaseEvent, Outbox, Resident, Staff
from tests.helpers import migrated_sqlite, pg_dsn, pg_url

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
TOWN = "厚街镇"
OTHER = "虎门镇"
ACTIONS = sorted({a for _, a in TRANSITIONS})


@pytest.fixture
async def _l_db(tmp_path):
    url = await migrated_sqlite(tmp_path / "lc.sqlite3")
    engine = make_engine(url)
    yield make_sessions(engine)
    await engine.dispose()


async def _staff(
    db, *, role: str, town: str | None = TOWN, community: str | None = "新围社区", name: str = ""
):
    registry = await resolve(db, town=town, name=community) if town and community else None
    s = Staff(
        username=name or f"{role}-{town}-{os.urandom(3).hex()}",
        display_name=name or f"{role}员",
        role=role,
        town=town,
        community=community,
        community_id=registry.id if registry else None,  # jurisdiction goes by the registry's id
    )
    db.add(s)
    await db.flush()
    return s


async def _case(
    db,
    *,
    status: str = "submitted",
    kind: str = "micro_wish",
    town: str = TOWN,
    owner: Staff | None = None,
    resident: bool = True,
) -> Case:
    rid = None
    if resident:
        r = Resident(openid=f"o-{os.urandom(4).hex()}", phone="13812345678")
        db.add(r)
        await db.flush()
        rid = r.id
    case = await create_case(
        db,
        kind=kind,
        description="家里老人需要轮椅",
        town=town,
        resident_id=rid,
        community="新围社区",
        now=NOW,
    )
    case.status = status
    if status in OWNED_STATES and owner is not None:
        case.claimed_by_id = owner.id
    await db.flush()
    return case


async def _count(db, model, **where) -> int:
    q = select(func.count()).select_from(model)
    for k, v in where.items():
        q = q.where(getattr(model, k) == v)
    return int((await db.exec(q)).one())


def _actor_role(roles: frozenset[str]) -> str:
    for r in (
        "town_staff",
        "town_supervisor",
        "community_worker",
        "city_supervisor",
        "admin",
        "resident",
        "system",
        "volunteer",
    ):
        if r in roles:
            return r
    raise AssertionError(roles)


@pytest.mark.parametrize(("state", "action"), sorted(k for k in TRANSITIONS if k[1] not in SPECIAL_ACTIONS))
async def test_every_allowed_transition(_l_db, state, action):
    rule = TRANSITIONS[(state, action)]
    kind = "micro_project" if "micro_wish" not in rule.kinds else "micro_wish"
    async with transaction(_l_db) as db:
        role = _actor_role(rule.roles)
        staff = await _staff(db, role=role if role in ROLES else "town_staff")
        case = await _case(db, status=state, kind=kind, owner=staff)
        if role in ROLES:
            actor = Actor.of_staff(staff)
        elif role == "resident":
            actor = Actor("resident", case.resident_id, "居民")
        else:
            actor = Actor(role, 99, role)
        note = "理由：已核实情况" if rule.reason else None
        event = await transition(db, case=case, action=action, actor=actor, note=note, now=NOW)
        case_id, case_no = case.id, case.case_no
    async with _l_db() as db:
        stored = await db.get(Case, case_id)
        assert stored.status == rule.to
        ev = await db.get(CaseEvent, event.id)
        assert (ev.from_status, ev.to_status, ev.actor_type) == (state, rule.to, actor.type)
        outbox = list(
            await db.exec(select(Outbox).where(Outbox.case_id == case_id, Outbox.kind == "progress"))
        )
        if rule.message:
            assert len(outbox) == 1
            assert case_no in outbox[0].text and "{" not in outbox[0].text
            assert outbox[0].kind == "progress"
        else:
            assert outbox == []
        if action == "claim":
            assert stored.claimed_by_id == staff.id
        if action == "release":
            assert stored.claimed_by_id is None


@pytest.mark.parametrize("state", sorted(STATE_LABEL))
async def test_every_forbidden_transition_changes_nothing(_l_db, state):
    async with transaction(_l_db) as db:
        boss = await _staff(db, role="town_supervisor")
        case = await _case(db, status=state, owner=boss)
        case_id = case.id
    for action in ACTIONS:
        if (state, action) in TRANSITIONS:
            continue
        with pytest.raises(TransitionError) as err:
            async with transaction(_l_db) as db:
                case = await db.get(Case, case_id)
                await transition(
                    db, case=case, action=action, actor=Actor.of_staff(boss), note="理由", now=NOW
                )
        assert STATE_LABEL[state] in str(err.value)
    async with _l_db() as db:
        assert (await db.get(Case, case_id)).status == state
        assert await _count(db, Outbox) == 0
        assert await _count(db, CaseEvent, case_id=case_id) == 1  # only the creation event


@pytest.mark.parametrize(("state", "action"), sorted(k for k in TRANSITIONS if k[1] not in SPECIAL_ACTIONS))
async def test_roles_outside_the_table_are_refused(_l_db, state, action):
    rule = TRANSITIONS[(state, action)]
    refused = [r for r in ROLES if r not in rule.roles]
    async with transaction(_l_db) as db:
        kind = "micro_project" if "micro_wish" not in rule.kinds else "micro_wish"
        case = await _case(db, status=state, kind=kind)
        actors = [Actor.of_staff(await _staff(db, role=r)) for r in refused]
        case_id = case.id
    for actor in actors:
        with pytest.raises(TransitionError, match="身份"):
            async with transaction(_l_db) as db:
                case = await db.get(Case, case_id)
                await transition(db, case=case, action=action, actor=actor, note="理由", now=NOW)
    async with _l_db() as db:
        assert (await db.get(Case, case_id)).status == state


async def test_other_town_and_other_community_are_refused(_l_db):
    async with transaction(_l_db) as db:
        case = await _case(db, status="submitted")
        hm = Actor.of_staff(await _staff(db, role="town_staff", town=OTHER))
        cw_other = Actor.of_staff(await _staff(db, role="community_worker", community="河田社区"))
        cw_own = Actor.of_staff(await _staff(db, role="community_worker", community="新围社区"))
        with pytest.raises(TransitionError, match="辖区"):
            await transition(db, case=case, action="verify", actor=hm, note=None, now=NOW)
        with pytest.raises(TransitionError, match="辖区"):
            await transition(db, case=case, action="verify", actor=cw_other, note=None, now=NOW)
        await transition(db, case=case, action="verify", actor=cw_own, note=None, now=NOW)
        assert case.status == "verified"


async def test_reason_required_where_a_human_decides(_l_db):
    async with transaction(_l_db) as db:
        staff = await _staff(db, role="town_staff")
        case = await _case(db, status="verified")
        with pytest.raises(TransitionError, match="理由"):
            await transition(db, case=case, action="reject", actor=Actor.of_staff(staff), note="  ", now=NOW)
        assert case.status == "verified"
        await transition(
            db, case=case, action="reject", actor=Actor.of_staff(staff), note="不属于本项目范围", now=NOW
        )
        box = (await db.exec(select(Outbox))).one()
        assert "不属于本项目范围" in box.text and "不能受理" in box.text


async def test_kind_decides_matching_or_dispatch(_l_db):
    async with transaction(_l_db) as db:
        staff = await _staff(db, role="town_staff")
        wish = await _case(db, status="claimed", kind="micro_wish", owner=staff)
        project = await _case(db, status="claimed", kind="micro_project", owner=staff)
        actor = Actor.of_staff(staff)
        assert "match" in allowed_actions(wish, actor) and "dispatch" not in allowed_actions(wish, actor)
        assert "dispatch" in allowed_actions(project, actor) and "match" not in allowed_actions(
            project, actor
        )
        with pytest.raises(TransitionError):
            await transition(db, case=wish, action="dispatch", actor=actor, note=None, now=NOW)


async def test_only_owner_or_supervisor_works_a_claimed_case(_l_db):
    async with transaction(_l_db) as db:
        owner = await _staff(db, role="town_staff", name="张工")
        colleague = await _staff(db, role="town_staff", name="李工")
        boss = await _staff(db, role="town_supervisor", name="王科长")
        case = await _case(db, status="in_progress", owner=owner)
        assert "complete" not in allowed_actions(case, Actor.of_staff(colleague))
        with pytest.raises(TransitionError, match="负责"):
            await complete(db, case=case, actor=Actor.of_staff(colleague), note="送到了", now=NOW)
        await complete(
            db,
            case=case,
            actor=Actor.of_staff(boss),
            note="送到了",
            now=NOW,
            photos=["https://img.example/1.jpg"],
        )
        assert case.status == "completed" and case.completed_at == NOW
        ev = (await db.exec(select(CaseEvent).where(CaseEvent.to_status == "completed"))).one()
        assert ev.data["photos"] == ["https://img.example/1.jpg"]


async def test_retried_request_never_duplicates(_l_db):
    async with transaction(_l_db) as db:
        staff = await _staff(db, role="town_staff")
        case = await _case(db, status="verified")
        case_id = case.id
    events = []
    for _ in range(3):
        async with transaction(_l_db) as db:
            case = await db.get(Case, case_id)
            events.append(
                await transition(
                    db,
                    case=case,
                    action="accept",
                    actor=Actor.of_staff(staff),
                    note=None,
                    now=NOW,
                    request_key="form-abc",
                )
            )
    assert len({e.id for e in events}) == 1
    async with _l_db() as db:
        assert await _count(db, Outbox, case_id=case_id) == 1
        assert await _count(db, CaseEvent, case_id=case_id) == 2
        # the same request without a key is simply illegal now: accepted cannot be accepted again
        case = await db.get(Case, case_id)
        with pytest.raises(TransitionError):
            await transition(db, case=case, action="accept", actor=Actor.of_staff(staff), note=None, now=NOW)


async def test_full_path_with_question_answer_reopen(_l_db):
    async with transaction(_l_db) as db:
        cw = Actor.of_staff(await _staff(db, role="community_worker"))
        st = await _staff(db, role="town_staff")
        me = Actor.of_staff(st)
        case = await _case(db)
        await transition(db, case=case, action="verify", actor=cw, note=None, now=NOW)
        await transition(db, case=case, action="accept", actor=me, note=None, now=NOW)
        await claim(db, case=case, actor=me, now=NOW)
        await ask_resident(db, case=case, actor=me, question="轮椅需要多宽？", now=NOW, request_key="q1")
        await ask_resident(db, case=case, actor=me, question="轮椅需要多宽？", now=NOW, request_key="q1")
        assert case.awaiting_resident and case.paused_at == NOW
        later = NOW + timedelta(hours=2)
        ans = await record_resident_answer(db, case=case, text="门口80厘米", now=later)
        assert ans.kind == "answer" and not case.awaiting_resident and case.paused_at is None
        await transition(db, case=case, action="match", actor=me, note=None, now=later)
        await transition(
            db, case=case, action="start", actor=Actor("volunteer", 5, "爱心企业"), note=None, now=later
        )
        await complete(db, case=case, actor=me, note="已送到", now=later)
        await transition(db, case=case, action="close", actor=Actor.system(), note=None, now=later)
        await transition(
            db,
            case=case,
            action="reopen",
            actor=Actor.of_staff(await _staff(db, role="town_supervisor")),
            note="居民反映轮椅坏了",
            now=later,
        )
        assert case.status == "reopened" and case.closed_at is None
        await transition(db, case=case, action="resume", actor=me, note=None, now=later)
        assert case.status == "in_progress"
        texts = [
            o.text
            for o in await db.exec(select(Outbox).where(Outbox.kind == "progress").order_by(col(Outbox.id)))
        ]
    assert sum("轮椅需要多宽" in t for t in texts) == 1
    # verify, accept, claim, question, match, start, complete, reopen → 8 messages; close and resume are internal
    assert len(texts) == 8, texts


async def test_staff_case_and_bind_code(_l_db):
    async with transaction(_l_db) as db:
        st = await _staff(db, role="town_staff")
        data = StaffCaseInput(
            kind="micro_project",
            description="路灯坏了",
            town=TOWN,
            channel="hotline_12345",
            contact_phone="13900001111",
        )
        case = await create_staff_case(db, actor=Actor.of_staff(st), data=data, now=NOW)
        assert case.channel == "hotline_12345" and case.bind_code and case.resident_id is None
        with pytest.raises(TransitionError, match="本镇街"):
            await create_staff_case(
                db,
                actor=Actor.of_staff(st),
                data=StaffCaseInput(kind="micro_wish", description="x", town=OTHER, channel="window"),
                now=NOW,
            )
        # no WeChat yet: the hotline resident hears of the transition by SMS, at the phone given
        await transition(db, case=case, action="verify", actor=Actor.of_staff(st), note=None, now=NOW)
        [sms] = (await db.exec(select(Outbox))).all()
        assert (sms.phone, sms.openid, sms.kind) == ("13900001111", "", "progress")
        resident = Resident(openid="o-bind")
        db.add(resident)
        await db.flush()
        bound = await bind_case(db, code=case.bind_code.lower(), resident=resident, now=NOW)
        assert bound.resident_id == resident.id and bound.bind_code is None
        with pytest.raises(BindError):
            await bind_case(db, code=data.description, resident=resident, now=NOW)
        # binding queues nothing: the chat reply that carried the code is the confirmation (bind_case)
        assert (await db.exec(select(Outbox).where(Outbox.openid == "o-bind"))).all() == []


async def test_cancel_by_resident_only_own_case(_l_db):
    async with transaction(_l_db) as db:
        case = await _case(db, status="accepted")
        with pytest.raises(TransitionError):
            await cancel_by_resident(db, case=case, resident_id=case.resident_id + 100, reason=None, now=NOW)
        await cancel_by_resident(db, case=case, resident_id=case.resident_id, reason="已经自己买了", now=NOW)
        assert case.status == "cancelled"
        assert "已撤销" in (await db.exec(select(Outbox))).one().text


async def test_merge_reassign_edit(_l_db):
    async with transaction(_l_db) as db:
        st = await _staff(db, role="town_staff")
        other = await _staff(db, role="town_staff", name="李工")
        boss = await _staff(db, role="town_supervisor")
        a = await _case(db, status="accepted")
        b = await _case(db, status="accepted")
        far = await _case(db, status="accepted", town=OTHER)
        with pytest.raises(TransitionError, match="同一镇街"):
            await merge_case(db, case=a, into=far, actor=Actor.of_staff(st), note=None, now=NOW)
        await merge_case(db, case=a, into=b, actor=Actor.of_staff(st), note="同一户", now=NOW)
        assert a.status == "merged" and a.merged_into_id == b.id
        with pytest.raises(TransitionError, match="身份"):
            await reassign(db, case=b, actor=Actor.of_staff(st), to_staff=other, note=None, now=NOW)
        await reassign(db, case=b, actor=Actor.of_staff(boss), to_staff=other, note=None, now=NOW)
        assert b.status == "claimed" and b.claimed_by_id == other.id
        await reassign(db, case=b, actor=Actor.of_staff(boss), to_staff=st, note=None, now=NOW)
        assert b.claimed_by_id == st.id
        with pytest.raises(TransitionError, match="释放"):
            await edit_case(db, case=b, actor=Actor.of_staff(st), now=NOW, town=OTHER)
        evs = await edit_case(db, case=b, actor=Actor.of_staff(st), now=NOW, category="助老")
        assert evs[0].note == "类别：未填 → 助老" and b.category == "助老"


async def _two_claims(sessions, case_id: int, a: Staff, b: Staff) -> list[object]:
    async def one(staff: Staff) -> object:
        try:
            async with transaction(sessions) as db:
                case = await db.get(Case, case_id)
                await claim(db, case=case, actor=Actor.of_staff(staff), now=NOW)
                return staff.id
        except ClaimConflict as exc:
            return exc

    return list(await asyncio.gather(one(a), one(b)))


async def _claim_race(url: str) -> None:
    await migrate(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    try:
        async with transaction(sessions) as db:
            a = await _staff(db, role="town_staff", name=f"甲{os.urandom(2).hex()}")
            b = await _staff(db, role="town_staff", name=f"乙{os.urandom(2).hex()}")
            cases = [(await _case(db, status="accepted")).id for _ in range(5)]
        for case_id in cases:
            results = await _two_claims(sessions, case_id, a, b)
            winners = [r for r in results if isinstance(r, int)]
            losers = [r for r in results if isinstance(r, ClaimConflict)]
            assert len(winners) == 1 and len(losers) == 1, results
            owner = a if winners[0] == a.id else b
            assert losers[0].owner_name == owner.display_name
            async with sessions() as db:
                stored = await db.get(Case, case_id)
                assert stored.claimed_by_id == owner.id and stored.status == "claimed"
                assert await _count(db, CaseEvent, case_id=case_id, to_status="claimed") == 1
                assert await _count(db, Outbox, case_id=case_id) == 1
    finally:
        await engine.dispose()


async def test_concurrent_claims_sqlite_file(tmp_path):
    await _claim_race(f"sqlite+aiosqlite:///{tmp_path / 'race.sqlite3'}")


async def _pg_url() -> str:
    """A new empty database on the suite's one PostgreSQL (TEST_PG_URL); a login error is an error, not a skip."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(), timeout=5)
    name = f"lc_{os.urandom(4).hex()}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return pg_url(name)


@pytest.mark.postgres  # tests/conftest.py require_postgres: a skip, or a failure under CI_STRICT
async def test_concurrent_claims_postgres():
    url = await _pg_url()
    try:
        await _claim_race(url)
    finally:
        import asyncpg

        conn = await asyncpg.connect(pg_dsn())
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        await conn.close()
