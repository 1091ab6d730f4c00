"""A flood and a slow dialogue: what WeChat was answered ``success`` for is on disk before that answer, a process
past its in-flight limit sends deliveries to the journal at once (the resident hears they are kept), the journal
keeps one resident's order while others go on live, and every delivery is recorded once with its answer.

The app runs on a real port over SQLite and over PostgreSQL; Rasa is a stand-in on another real port whose parses
of chosen texts stall until the test opens their gate (a slow dialogue that outlasts the reply budget)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text as sql

import webhooks
from bot import keys
from bot.app import create_app
from bot.conversation import inbound as inbound_module
from bot.conversation.inbound import BUSY_KEPT, KEPT
from tests.helpers import RasaStandIn, make_settings, say_text, serve, wait_until


async def say(
    http: aiohttp.ClientSession, base: str, openid: str, words: str, *, again: str | None = None
) -> tuple[str, str, float]:
    """(delivery key, the passive reply or '' for ``success``, seconds until the answer); ``again``: the key of an
    earlier delivery WeChat sends once more."""
    msgid = int(again.split(":")[1]) if again else None
    said = await say_text(http, base, openid, words, msgid=msgid, account="gh_flood0001")
    return said.key, said.reply, said.seconds


@contextlib.asynccontextmanager
async def running(db_url: str, tmp_path: Path, **over: Any) -> AsyncIterator[Any]:
    rasa = RasaStandIn()
    rasa_runner, rasa_base = await serve(rasa.app())
    settings = make_settings(
        db_url,
        tmp_path,
        rasa_url=rasa_base,
        wechat_encoding_aes_key="",
        wechat_reply_budget=0.6,
        rasa_timeout=30.0,  # a dialogue slower than WeChat's 5 s (an operator's choice, or a stalled downstream)
        messages_per_minute=1000,
        **over,
    )
    app = create_app(settings, run_migrations=False, with_scheduler=False)
    runner, base = await serve(app)
    try:
        yield rasa, app, base, tmp_path / "journal"
    finally:
        rasa.released.set()
        for gate in rasa.gates.values():
            gate.set()
        await runner.cleanup()
        await rasa_runner.cleanup()


@pytest.fixture
async def flooded(db_url: str, tmp_path: Path) -> Any:
    async with running(db_url, tmp_path, inbound_in_flight_limit=1) as system:
        yield system


async def rows(app: Any) -> list[Any]:
    async with app[keys.SESSIONS]() as s:
        found = await s.exec(
            sql("SELECT id, delivery_key, openid, reply_mode FROM inboundmessage ORDER BY id")
        )
        return list(found.all())


async def outbox_keys(app: Any) -> set[str]:
    async with app[keys.SESSIONS]() as s:
        found = await s.exec(sql("SELECT dedupe_key FROM outbox WHERE dedupe_key LIKE 'reply:%'"))
        return {r[0] for r in found.all()}


def lines(journal: Path, prefix: str) -> bytes:
    return b"".join(p.read_bytes() for p in journal.glob(f"{prefix}-*"))


async def test_a_flood_and_a_slow_dialogue_keep_every_delivery_once_and_each_residents_order(
    flooded: Any,
) -> None:
    rasa, app, base, journal = flooded
    inbound = app[webhooks.WEBHOOK_HANDLER]
    rasa.gates = {"慢慢讲一": asyncio.Event(), "慢慢讲二": asyncio.Event()}
    async with aiohttp.ClientSession() as http:
        early_key, early, _ = await say(http, base, "oFlood-2", "查询进度")  # answered live, recorded
        assert early and early not in (KEPT, BUSY_KEPT)
        # 1. a dialogue slower than the budget: WeChat gets success, and only once the delivery is on disk
        slow_key, reply, _ = await say(http, base, "oFlood-1", "慢慢讲一")
        assert reply == ""
        assert slow_key.encode() in lines(journal, "guard")

        # 2. one delivery in hand is this process's limit: the next goes to the journal at once
        shed_key, reply, took = await say(http, base, "oFlood-2", "慢慢讲二")
        assert reply == BUSY_KEPT and took < 0.5
        assert shed_key.encode() in lines(journal, "inbound")
        # the same resident's next message keeps its place behind the journalled one
        behind_key, reply, _ = await say(http, base, "oFlood-2", "你好")
        assert reply == BUSY_KEPT
        assert lines(journal, "inbound").count(b"\n") == 2
        # WeChat sends the early, recorded delivery again: answered from its record, neither shed nor queued
        assert (await say(http, base, "oFlood-2", "查询进度", again=early_key))[1] == early
        assert lines(journal, "inbound").count(b"\n") == 2

        # 3. the slow dialogue ends: its answer is queued late, and the guard forgets it
        rasa.gates["慢慢讲一"].set()
        await wait_until(lambda: not lines(journal, "guard"), timeout=10)
        assert f"reply:{slow_key}" in await outbox_keys(app)

        # 4. someone else is answered live meanwhile, although the journal still holds another resident's messages
        assert inbound.journal.pending and inbound.journal.holds("oFlood-2")
        async with http.get(f"{base}/readyz") as resp:  # still ready: a flood is not an outage
            assert resp.status == 200
        live_key, reply, _ = await say(http, base, "oFlood-3", "你好")
        assert reply and reply not in (KEPT, BUSY_KEPT)

        # 5. the journal drains once its first entry's dialogue ends
        rasa.gates["慢慢讲二"].set()
        await wait_until(lambda: not list(journal.glob("inbound-*")), timeout=15)

    recorded = await rows(app)
    keys_in_order = [r[1] for r in recorded]
    sent = {early_key, slow_key, shed_key, behind_key, live_key}
    assert sorted(keys_in_order) == sorted(sent)  # each delivery exactly once, none lost
    assert keys_in_order.index(shed_key) < keys_in_order.index(behind_key)  # the resident's order
    modes = {r[1]: r[3] for r in recorded}
    assert modes[live_key] == modes[early_key] == "passive"
    answered_late = await outbox_keys(app)
    for key in (slow_key, shed_key, behind_key):  # told "kept" or nothing: the answer follows as a message
        assert modes[key] == "outbox" and f"reply:{key}" in answered_late
    assert (
        inbound.shed == 2 and not inbound.journal.pending
    )  # both of oFlood-2 arrived with the limit reached


async def test_newcomers_go_to_the_journal_once_the_oldest_delivery_in_hand_waited_too_long(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the machine's speed: when the oldest of enough deliveries in hand has waited longer than
    ``inbound_shed_after``, a newcomer is told it is kept at once; a retry of a recorded delivery is still answered
    from its record, and one stalled delivery alone turns nobody away."""
    monkeypatch.setattr(inbound_module, "SHED_MIN", 2)
    async with running(db_url, tmp_path, inbound_shed_after=0.3) as (rasa, app, base, journal):
        rasa.gates = {"慢慢讲一": asyncio.Event(), "慢慢讲二": asyncio.Event()}
        async with aiohttp.ClientSession() as http:
            _, first, _ = await say(http, base, "oQueue-0", "你好")
            assert first and first not in (KEPT, BUSY_KEPT)
            # one stalled delivery in hand (fewer than SHED_MIN): others are answered live
            slow_one = asyncio.create_task(say(http, base, "oQueue-1", "慢慢讲一"))
            await asyncio.sleep(0.5)
            _, reply, _ = await say(http, base, "oQueue-2", "你好")
            assert reply and reply not in (KEPT, BUSY_KEPT)
            # two in hand, the oldest waiting past 0.3 s: a newcomer is kept at once
            slow_two = asyncio.create_task(say(http, base, "oQueue-3", "慢慢讲二"))
            await asyncio.sleep(0.1)
            shed_key, reply, took = await say(http, base, "oQueue-4", "你好")
            assert reply == BUSY_KEPT and took < 0.5
            assert shed_key.encode() in lines(journal, "inbound")
            for gate in rasa.gates.values():
                gate.set()
            await asyncio.gather(slow_one, slow_two)
            await wait_until(lambda: not list(journal.glob("inbound-*")), timeout=15)
            # the slow two were answered before their outcome (kept in the guard file): their work ends on its own
            # time, after the journal's drain on a busy machine; counted once nothing is in hand or guarded
            handler = app[webhooks.WEBHOOK_HANDLER]
            await wait_until(
                lambda: handler.load()["in_flight"] == 0 and not lines(journal, "guard"), timeout=15
            )
        recorded = await rows(app)
        assert len(recorded) == len({r[1] for r in recorded}) == 5  # each delivery once
        assert app[webhooks.WEBHOOK_HANDLER].shed == 1
