"""The outbox dispatcher chooses the channel by WeChat's 48-hour window (README: "customer-service message inside
WeChat's 48-hour window, otherwise a template message"), to the second: a resident last heard 47 h 59 min ago gets a
customer-service message, one last heard 48 h ago or longer a template message, and one never heard a template.

The suite's older tests stood at 1 h and 49 h, so a window shortened to a day passed them. A recording stand-in
for the WeChat API (the real client against the simulator is tested in test_delivery_sim.py); a migrated SQLite
file per test."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import db
from bot.cases.flags import flag_unreachable
from bot.delivery.dispatcher import DeliveryConfig, dispatch_due
from bot.delivery.outbox import enqueue
from bot.models import Resident
from tests.helpers import migrated_sqlite

NOW = datetime(2025, 6, 3, 2, 0, tzinfo=UTC)


class RecordingApi:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        self.sent.append(("custom", openid))
        return {}

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, str], url: str | None
    ) -> Any:
        self.sent.append(("template", openid))
        return {}


@pytest.fixture
async def sessions(tmp_path: Any) -> Any:
    url = await migrated_sqlite(tmp_path / "window.sqlite3")
    engine = db.make_engine(url)
    yield db.make_sessions(engine)
    await engine.dispose()


@pytest.mark.parametrize(
    ("last_heard", "channel"),
    [
        (timedelta(hours=47, minutes=59, seconds=59), "custom"),
        (timedelta(hours=24, minutes=1), "custom"),
        (timedelta(seconds=1), "custom"),
        (timedelta(hours=48), "template"),
        (timedelta(hours=48, seconds=1), "template"),
        (timedelta(days=30), "template"),
        (None, "template"),
    ],
)
async def test_the_channel_follows_the_48_hour_window(
    sessions: Any, last_heard: timedelta | None, channel: str
) -> None:
    async with db.transaction(sessions) as s:
        s.add(
            Resident(openid="o-window", last_interaction_at=None if last_heard is None else NOW - last_heard)
        )
    async with db.transaction(sessions) as s:
        await enqueue(s, openid="o-window", kind="progress", text="您的申请已受理", now=NOW)
    api = RecordingApi()
    config = DeliveryConfig(
        rng=random.Random(1), base_url="https://dgj.example", on_unreachable=flag_unreachable
    )
    stats = await dispatch_due(sessions=sessions, api=api, now=NOW, concurrency=1, config=config)
    assert api.sent == [(channel, "o-window")]
    assert stats.sent == 1
