"""Nothing lost when the database goes away: deliveries go to the local journal (fsync'd) and are replayed in
order, exactly once, when the database returns, also across a restart; a full disk gives a kind answer.

The app runs on a real port; its PostgreSQL is reached through a TCP switch that cuts and refuses connections.
The audit reads the database directly (not through the switch): every delivery sent is there exactly once."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import webhooks
from bot.app import create_app
from bot.conversation.inbound import KEPT, NOT_KEPT
from tests.helpers import (
    Phone,
    TcpSwitch,
    audit_deliveries,
    make_settings,
    pg_host_port,
    serve,
    start_plain,
    switched_pg_url,
    text_delivery,
    wait_until,
)

pytestmark = pytest.mark.postgres

ACCOUNT = "gh_journal0001"


@pytest.fixture
async def switched_db(pg_template: Any) -> Any:
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable")
    url = await pg_template.copy()
    switch = await TcpSwitch(*pg_host_port()).start()
    yield url.rsplit("/", 1)[1], switched_pg_url(url, switch.port), switch
    await switch.close()


async def test_deliveries_survive_the_database_going_away_and_a_restart(
    switched_db: Any, tmp_path: Path
) -> None:
    db, url, switch = switched_db
    runner, base, app = await start_plain(url, tmp_path)
    journal_dir = tmp_path / "journal"
    phone = Phone(base, account=ACCOUNT)
    try:
        async with aiohttp.ClientSession() as http:
            before = await phone.say(http, "oRes-A", "你好")
            assert before and before not in (KEPT, NOT_KEPT)

            switch.down()
            kept = [
                await phone.say(http, "oRes-A", "查询进度"),
                await phone.say(http, "oRes-B", "你好"),
                await phone.say(http, "oRes-A", "1"),
                await phone.say(http, "oRes-C", "确认"),
            ]
            assert kept == [KEPT] * 4  # told kindly that the message is kept, never an error
            # WeChat retries one of them: still one entry's effect
            retry_key = phone.sent[2][0]
            assert await phone.say(http, "oRes-A", "查询进度", msgid=int(retry_key.split(":")[1])) == KEPT
            lines = b"".join(p.read_bytes() for p in journal_dir.glob("inbound-*"))
            assert lines.count(b"\n") == 5  # fsync'd on disk before the answer
    finally:
        await runner.cleanup()  # a restart while the database is still away

    runner, base, app = await start_plain(url, tmp_path)
    phone.base = base
    try:
        async with aiohttp.ClientSession() as http:
            # still away: a new message queues behind the journalled ones
            assert await phone.say(http, "oRes-B", "查询进度") == KEPT
            switch.up()
            await wait_until(lambda: not list(journal_dir.glob("inbound-*")), timeout=20)
            after = await phone.say(http, "oRes-C", "你好")
            assert after and after not in (KEPT, NOT_KEPT)
        handler = app[webhooks.WEBHOOK_HANDLER]
        assert handler.replayed == 6  # 4 + the retry (a duplicate, no effect) + 1 after the restart
    finally:
        await runner.cleanup()

    rows, outbox = await audit_deliveries(db, phone)
    # each resident's messages replayed in the order they were sent (different residents' may interleave)
    for openid in ("oRes-A", "oRes-B", "oRes-C"):
        recorded = [r["delivery_key"] for r in rows if r["openid"] == openid]
        assert recorded == [k for k, o, _ in phone.sent if o == openid], openid
    # the answers of the replayed messages follow as customer-service messages, once each
    answered = {r["delivery_key"] for r in rows[1:-1] if r["reply_mode"] == "outbox"}
    assert answered and {f"reply:{k}" for k in answered} <= set(outbox)


async def test_a_full_disk_under_the_journal_gives_a_kind_answer_and_a_clear_log_line(
    switched_db: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, url, switch = switched_db
    runner, base, app = await start_plain(url, tmp_path)
    phone = Phone(base, account=ACCOUNT)
    journal = app[webhooks.WEBHOOK_HANDLER].journal
    journal.directory.mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", journal.own)  # every write to the journal: ENOSPC
    try:
        async with aiohttp.ClientSession() as http:
            switch.down()
            with caplog.at_level(logging.ERROR, logger="bot.conversation.inbound"):
                assert await phone.say(http, "oRes-D", "你好") == NOT_KEPT
            assert any("disk full" in r.getMessage() for r in caplog.records)
            assert not journal.pending  # nothing claimed kept that is not
            switch.up()
            phone.sent.clear()  # that one was lost and the resident was told so
            reply = await phone.say(http, "oRes-D", "你好")
            assert reply and reply not in (KEPT, NOT_KEPT)
    finally:
        await runner.cleanup()
    await audit_deliveries(db, phone)


async def test_deliveries_still_in_progress_at_a_shutdown_are_journalled_and_replayed_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    """WeChat was answered ``success`` (the reply budget passed) and will not send the message again; the process
    stops before the delivery was recorded (here the NLU never answers; under overload, a queue of deliveries).
    The shutdown cancels it after its grace, so it goes to the journal; the next start replays it: recorded once,
    answered through the outbox."""
    import asyncio
    from collections.abc import AsyncIterator
    from dataclasses import replace

    import sqlalchemy as sa

    from bot import keys
    from bot.conversation.nlu import KeywordNLU
    from bot.db import make_engine

    class Stalls(KeywordNLU):
        async def parse(self, text: str) -> Any:
            await asyncio.Event().wait()  # never answers

    async def stalled_nlu(app: Any) -> AsyncIterator[None]:
        app[keys.NLU_CLIENT] = Stalls()
        app[webhooks.WEBHOOK_CONFIG] = replace(
            app[webhooks.WEBHOOK_CONFIG], shutdown_grace=0.2, reply_budget=1.0
        )
        yield

    settings = make_settings(sqlite_url, tmp_path, wechat_encoding_aes_key="")
    app = create_app(settings, run_migrations=False, with_scheduler=False)
    app.cleanup_ctx.append(stalled_nlu)
    runner, base = await serve(app)
    phone = Phone(base, account=ACCOUNT)
    try:
        async with aiohttp.ClientSession() as http:
            assert (
                await phone.say(http, "oStop-A", "我想要一辆轮椅") == ""
            )  # `success`: the answer would follow
    finally:
        await runner.cleanup()  # the shutdown: the handler is still waiting for the NLU
    lines = b"".join(p.read_bytes() for p in (tmp_path / "journal").glob("inbound-*"))
    assert lines.count(b"\n") == 1 and b"oStop-A" in lines

    runner, base, app = await start_plain(sqlite_url, tmp_path)  # a new process with a working NLU
    try:
        await wait_until(lambda: not list((tmp_path / "journal").glob("inbound-*")), timeout=15)
        assert app[webhooks.WEBHOOK_HANDLER].replayed == 1
    finally:
        await runner.cleanup()
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text("SELECT delivery_key, reply_mode FROM inboundmessage WHERE openid = 'oStop-A'")
                )
            ).all()
            outbox = (
                await conn.execute(sa.text("SELECT dedupe_key FROM outbox WHERE dedupe_key LIKE 'reply:%'"))
            ).all()
    finally:
        await engine.dispose()
    assert rows == [(phone.sent[0][0], "outbox")]  # once, and its answer went out as a message
    assert [o[0] for o in outbox] == [f"reply:{phone.sent[0][0]}"]


async def test_a_late_answer_not_yet_queued_at_a_shutdown_is_journalled_and_queued_once_after(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The dialogue answered after WeChat's budget, so the answer must go out as a message; the process stops while
    that message waits for the database (under load, the write lock). The delivery is journalled; the next start
    finds its recorded answer and queues it once."""
    import asyncio

    import sqlalchemy as sa

    from bot import keys
    from bot.db import make_engine

    runner, base, app = await start_plain(sqlite_url, tmp_path)
    phone = Phone(base, account=ACCOUNT)
    handler = app[webhooks.WEBHOOK_HANDLER]
    try:
        async with aiohttp.ClientSession() as http:
            answer = await phone.say(http, "oLate-A", "查询进度")
        key = phone.sent[0][0]
        delivery = _text_delivery(key, "oLate-A", "查询进度")
        lock = app[keys.CHAT_SESSIONS].write_lock  # type: ignore[attr-defined]
        assert lock is not None
        await lock.acquire()  # the database is busy: the late answer waits for it
        late = asyncio.ensure_future(handler.deliver_late(delivery, answer))
        await asyncio.sleep(0.05)
        assert not late.done()
    finally:
        await runner.cleanup()  # the shutdown
    late.cancel()
    lock.release()
    lines = b"".join(p.read_bytes() for p in (tmp_path / "journal").glob("inbound-*"))
    assert lines.count(b"\n") == 1 and b"oLate-A" in lines

    runner, base, app = await start_plain(sqlite_url, tmp_path)
    try:
        await wait_until(lambda: not list((tmp_path / "journal").glob("inbound-*")), timeout=15)
    finally:
        await runner.cleanup()
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(sa.text("SELECT reply_mode FROM inboundmessage WHERE openid = 'oLate-A'"))
            ).all()
            outbox = (
                await conn.execute(
                    sa.text("SELECT text FROM outbox WHERE dedupe_key = :k"), {"k": f"reply:{key}"}
                )
            ).all()
    finally:
        await engine.dispose()
    assert rows == [("outbox",)]  # recorded once; its answer went out as a message
    assert outbox == [(answer,)]


async def test_a_late_answer_is_queued_when_the_database_returns_within_the_retries(
    switched_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away just as a late answer is to be queued (PostgreSQL behind a switch that cuts and
    refuses connections): the answer is retried and queued once the database is back, not dropped with a log line."""
    import asyncio

    from bot.conversation import inbound as inbound_module

    monkeypatch.setattr(inbound_module, "LATE_RETRY_PAUSES", (0.3, 0.3, 0.5, 1.0, 2.0))
    db, url, switch = switched_db
    runner, base, app = await start_plain(url, tmp_path)
    phone = Phone(base, account=ACCOUNT)
    handler = app[webhooks.WEBHOOK_HANDLER]
    try:
        async with aiohttp.ClientSession() as http:
            answer = await phone.say(http, "oRetry-A", "查询进度")
        key = phone.sent[0][0]
        delivery = _text_delivery(key, "oRetry-A", "查询进度")
        switch.down()
        late = asyncio.ensure_future(handler.deliver_late(delivery, answer))
        await asyncio.sleep(0.8)
        assert not late.done()  # still retrying
        switch.up()
        await asyncio.wait_for(late, timeout=15)
    finally:
        await runner.cleanup()
    rows, outbox = await audit_deliveries(db, phone)
    assert [r["reply_mode"] for r in rows] == ["outbox"]
    assert outbox == [f"reply:{key}"]
    assert not list((tmp_path / "journal").glob("inbound-*"))  # queued, nothing left for a shutdown to keep


def _text_delivery(key: str, openid: str, text: str) -> Any:
    return text_delivery(key, openid, text, account=ACCOUNT)
