"""A database that hangs (accepts the connection, never answers) rather than refusing: the webhook still answers
WeChat within its 5 s, the delivery goes to the journal, and it is replayed exactly once when the database answers
again. Through the real app on a real port; PostgreSQL reached through a TCP switch that stops forwarding."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

import webhooks
from bot.conversation.inbound import KEPT, NOT_KEPT
from tests.helpers import (
    Phone,
    TcpSwitch,
    audit_deliveries,
    pg_dsn,
    pg_host_port,
    start_plain,
    switched_pg_url,
    wait_until,
)

pytestmark = pytest.mark.postgres

WECHAT_GIVES_UP = 5.0  # seconds: WeChat drops the answer (and retries) after this
ACCOUNT = "gh_dbhang0001"


@pytest.fixture
async def stalled_db(pg_template: Any) -> Any:
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable")
    url = await pg_template.copy()
    switch = await TcpSwitch(*pg_host_port()).start()
    yield url.rsplit("/", 1)[1], switched_pg_url(url, switch.port), switch
    await switch.close()


async def _timed(
    phone: Phone, http: aiohttp.ClientSession, openid: str, text: str, **kw: Any
) -> tuple[str, float]:
    started = time.monotonic()
    reply = await phone.say(http, openid, text, **kw)
    return reply, time.monotonic() - started


async def test_a_hanging_database_is_answered_within_wechats_5_s_and_replayed_once(
    stalled_db: Any, tmp_path: Path
) -> None:
    db, url, switch = stalled_db
    runner, base, app = await start_plain(url, tmp_path)
    handler = app[webhooks.WEBHOOK_HANDLER]
    journal_dir = tmp_path / "journal"
    phone = Phone(base, account=ACCOUNT)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            before = await phone.say(http, "oHang-A", "你好")  # the pool holds a live connection now
            assert before and before not in (KEPT, NOT_KEPT)

            switch.stall()  # open connections stay open, new ones are accepted; nothing comes back
            first, took = await _timed(phone, http, "oHang-A", "查询进度")
            assert first == KEPT and took < WECHAT_GIVES_UP, (first, took)
            # the journal is on disk before the answer
            assert b"".join(p.read_bytes() for p in journal_dir.glob("inbound-*")).count(b"\n") == 1
            # while the journal holds entries, the next ones queue behind it at once
            second, took2 = await _timed(phone, http, "oHang-B", "你好")
            assert second == KEPT and took2 < 1.0, took2
            # WeChat's retry of the first: kept again, one effect
            retry_id = int(phone.sent[1][0].split(":")[1])
            again, _ = await _timed(phone, http, "oHang-A", "查询进度", msgid=retry_id)
            assert again == KEPT

            # still hanging: the replayer keeps trying and gives up each time within its budget
            await wait_until(lambda: handler.replayed == 0 and journal_dir.exists(), timeout=5)
            assert list(journal_dir.glob("inbound-*"))

            switch.up()
            await wait_until(lambda: not list(journal_dir.glob("inbound-*")), timeout=30)
            after = await phone.say(http, "oHang-C", "你好")
            assert after and after not in (KEPT, NOT_KEPT)
        assert handler.replayed == 3  # two deliveries and the retry (a duplicate, no second effect)
    finally:
        await runner.cleanup()

    rows, outbox = await audit_deliveries(db, phone)  # every delivery once, none left pending
    kept_keys = {phone.sent[1][0], phone.sent[2][0]}
    answered = {r["delivery_key"] for r in rows if r["reply_mode"] == "outbox"}
    assert kept_keys <= answered  # the real answers followed as customer-service messages
    assert {f"reply:{k}" for k in kept_keys} <= set(outbox)


async def test_a_busy_database_that_answers_a_ping_is_waited_for_not_journalled(
    stalled_db: Any, tmp_path: Path
) -> None:
    """Another session holds the resident's row for longer than the reply budget (a long staff transaction, a
    loaded server): nothing of this process completes meanwhile, but a fresh connection answers ``SELECT 1`` at
    once. The delivery is busy, not away: WeChat gets ``success`` at the budget, the answer follows as a
    customer-service message when the row is free, and nothing goes to the journal."""
    db, url, _switch = stalled_db
    runner, base, app = await start_plain(url, tmp_path)
    handler = app[webhooks.WEBHOOK_HANDLER]
    phone = Phone(base, account=ACCOUNT)
    blocker = await asyncpg.connect(pg_dsn(db))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            assert await phone.say(http, "oBusy-A", "你好")  # the resident exists
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("SELECT id FROM resident WHERE openid = 'oBusy-A' FOR UPDATE")
            release = asyncio.get_running_loop().call_later(5.0, lambda: asyncio.ensure_future(tx.rollback()))
            first, took = await _timed(phone, http, "oBusy-A", "查询进度")
            assert first == "" and took < WECHAT_GIVES_UP, (first, took)  # `success`: the answer follows
            # the row is freed; the answer is then written and queued for the outbox
            await asyncio.sleep(max(0.0, release.when() - asyncio.get_running_loop().time()) + 2.0)
        assert handler.spooled == 0
        assert not list((tmp_path / "journal").glob("inbound-*"))
    finally:
        await blocker.close()
        await runner.cleanup()
    rows, outbox = await audit_deliveries(db, phone)
    late = phone.sent[1][0]
    assert {r["delivery_key"]: r["reply_mode"] for r in rows}[late] == "outbox"
    assert f"reply:{late}" in outbox
