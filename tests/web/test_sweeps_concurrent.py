"""Two schedulers at once (two engines = two processes' connection pools): no case reminded twice, no message
sent twice. On SQLite and on PostgreSQL (FOR UPDATE SKIP LOCKED) when reachable."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from bot import db
from bot.deadlines import sweeps
from bot.delivery.dispatcher import DeliveryConfig, dispatch_all
from bot.delivery.outbox import enqueue
from bot.models import Case, Outbox, Staff

NOW = datetime(2025, 6, 10, 8, tzinfo=UTC)


class _SlowApi:
    def __init__(self, sent: Counter[str]) -> None:
        self.sent = sent

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        await asyncio.sleep(0.002)
        self.sent[text] += 1
        return {}

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, str], url: str | None
    ) -> Any:
        await asyncio.sleep(0.002)
        self.sent[data.get("thing2") or data["case_no"]] += 1
        return {}


async def test_two_schedulers_no_duplicates(db_url: str) -> None:
    engines = [db.make_engine(db_url), db.make_engine(db_url)]
    try:
        a, b = (db.make_sessions(e) for e in engines)
        async with db.transaction(a) as s:
            s.add(Staff(username="w", role="town_staff", town="厚街镇", openid="o-w"))
            for i in range(150):
                s.add(
                    Case(
                        case_no=f"MS20250610-{i:04d}",
                        kind="micro_wish",
                        status="verified",
                        town="厚街镇",
                        stage_deadline=NOW + timedelta(hours=1),
                    )
                )
            for i in range(200):
                await enqueue(s, openid=f"o-{i}", kind="progress", text=f"m{i}", now=NOW)
        counts = await asyncio.gather(
            sweeps.remind_due(sessions=a, now=NOW, batch=40),
            sweeps.remind_due(sessions=b, now=NOW, batch=40),
            sweeps.remind_due(sessions=a, now=NOW, batch=40),
            sweeps.remind_due(sessions=b, now=NOW, batch=40),
            sweeps.remind_due(sessions=a, now=NOW, batch=40),
        )
        assert sum(counts) == 150  # every case handled by exactly one sweep
        assert await sweeps.remind_due(sessions=b, now=NOW) == 0

        sent: Counter[str] = Counter()
        api = _SlowApi(sent)
        cfg = DeliveryConfig()
        stats = await asyncio.gather(
            *(
                dispatch_all(sessions=x, api=api, clock=lambda: NOW, concurrency=4, batch=25, config=cfg)
                for x in (a, b, a, b)
            )
        )
        total = 200 + 150
        assert sum(st.sent for st in stats) == total
        assert sum(sent.values()) == total  # WeChat was called once per message
        async with a() as s:
            rows = (await s.exec(select(Outbox))).all()
        assert len(rows) == total and {r.status for r in rows} == {"sent"}
        assert all(r.attempts == 1 for r in rows)
        assert all(sent[f"m{i}"] == 1 for i in range(200))
        assert all(sent[f"MS20250610-{i:04d}"] == 1 for i in range(150))
    finally:
        for e in engines:
            await e.dispose()
