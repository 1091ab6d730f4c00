"""Two spendings at the same moment cannot take a town's fund below zero (SQLite and PostgreSQL): each runs in its
own engine, as two web workers would, and the first holds its transaction open while the second tries."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from bot.cases.actors import Actor
from bot.cases.funds import FundError, allocate, spend
from bot.db import make_engine, make_sessions, transaction
from bot.models import FundAccount, FundEntry
from tests.factories import NOW, TOWN, add_staff


async def test_two_concurrent_spendings_never_overdraw(db_url: str) -> None:
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        first, second = (make_sessions(e) for e in engines)
        lead = await add_staff(first, "hj-lead", "town_supervisor")
        worker = await add_staff(first, "hj-staff", "town_staff")
        async with transaction(first) as db:
            await allocate(
                db,
                town=TOWN,
                source="charity",
                amount_fen=100_000,
                note="拨款",
                actor=Actor.of_staff(lead),
                now=NOW,
            )
        actor = Actor.of_staff(worker)
        started = asyncio.Event()

        async def one(sessions, hold: float) -> str:
            try:
                async with transaction(sessions) as db:
                    await spend(
                        db,
                        town=TOWN,
                        source="charity",
                        amount_fen=70_000,
                        note="轮椅",
                        actor=actor,
                        now=NOW,
                        case_id=None,
                    )
                    started.set()
                    await asyncio.sleep(hold)  # keep the transaction (and its row lock) open
                return "spent"
            except FundError:
                return "refused"

        async def late(sessions) -> str:
            await started.wait()
            return await one(sessions, 0)

        outcomes = await asyncio.gather(one(first, 0.5), late(second))
        assert sorted(outcomes) == ["refused", "spent"]
        async with first() as db:
            account = (await db.exec(select(FundAccount).where(FundAccount.source == "charity"))).one()
            spendings = (await db.exec(select(FundEntry).where(FundEntry.kind == "spending"))).all()
        assert account.balance_fen == 30_000
        assert [(e.amount_fen, e.balance_after_fen) for e in spendings] == [(70_000, 30_000)]
    finally:
        for e in engines:
            await e.dispose()


@pytest.mark.parametrize("spenders", [5])
async def test_many_spendings_at_once_stop_at_zero(db_url: str, spenders: int) -> None:
    engines = [make_engine(db_url) for _ in range(spenders)]
    try:
        makers = [make_sessions(e) for e in engines]
        lead = await add_staff(makers[0], "hj-lead", "town_supervisor")
        async with transaction(makers[0]) as db:
            await allocate(
                db,
                town=TOWN,
                source="town",
                amount_fen=100_000,
                note="拨款",
                actor=Actor.of_staff(lead),
                now=NOW,
            )
        actor = Actor.of_staff(lead)

        async def one(sessions) -> bool:
            try:
                async with transaction(sessions) as db:
                    await spend(
                        db,
                        town=TOWN,
                        source="town",
                        amount_fen=30_000,
                        note="x",
                        actor=actor,
                        now=NOW,
                        case_id=None,
                    )
                return True
            except FundError:
                return False

        done = await asyncio.gather(*(one(m) for m in makers))
        assert sum(done) == 3  # 3 x 300 元 fit in 1,000 元; the other two are refused
        async with makers[0]() as db:
            account = (await db.exec(select(FundAccount).where(FundAccount.source == "town"))).one()
        assert account.balance_fen == 10_000
    finally:
        for e in engines:
            await e.dispose()
