"""The outbox dispatcher (unit layer): a recording fake API, a fresh SQLite file per test."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot import db
from bot.cases.flags import flag_unreachable
from bot.cases.numbering import create_case
from bot.delivery.dispatcher import (
    PHONE_FLAG,
    DeliveryConfig,
    NotRetryable,
    dispatch_due,
    retry,
    template_fields,
)
from bot.delivery.outbox import enqueue
from bot.delivery.wechat_api import WeChatError, WeChatUnavailable
from bot.models import CaseEvent, Outbox, Resident
from tests.helpers import migrated_sqlite

NOW = datetime(2025, 6, 3, 2, 0, tzinfo=UTC)


class _DApi:
    """Records sends; ``faults`` maps a channel to the errcodes of its next calls."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.faults: dict[str, list[int]] = {"custom": [], "template": []}

    def _fault(self, channel: str) -> None:
        if self.faults[channel]:
            code = self.faults[channel].pop(0)
            if code == -2:
                raise WeChatUnavailable("network: ClientConnectorError")
            raise WeChatError(code, f"err {code} rid: abc")

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        self._fault("custom")
        self.sent.append(("custom", openid, text))
        return {}

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, str], url: str | None
    ) -> Any:
        self._fault("template")
        self.sent.append(("template", openid, {"data": data, "url": url, "template_id": template_id}))
        return {}


@pytest.fixture
async def _d_sessions(tmp_path: Any) -> Any:
    url = await migrated_sqlite(tmp_path / "d.sqlite3")
    engine = db.make_engine(url)
    yield db.make_sessions(engine)
    await engine.dispose()


async def _resident(sessions: Any, openid: str, *, last: datetime | None, used: int = 0) -> Resident:
    async with db.transaction(sessions) as s:
        r = Resident(openid=openid, last_interaction_at=last, cs_sent_since_interaction=used)
        s.add(r)
    return r


async def _queue(sessions: Any, openid: str, text: str, **kw: Any) -> None:
    async with db.transaction(sessions) as s:
        await enqueue(s, openid=openid, kind=kw.pop("kind", "progress"), text=text, now=NOW, **kw)


async def _rows(sessions: Any) -> list[Outbox]:
    async with sessions() as s:
        return list((await s.exec(select(Outbox).order_by(Outbox.id))).all())


def _cfg(**kw: Any) -> DeliveryConfig:
    return DeliveryConfig(
        rng=random.Random(1), base_url="https://dgj.example", on_unreachable=flag_unreachable, **kw
    )


async def test_custom_inside_window_then_template_when_quota_used(_d_sessions: Any) -> None:
    await _resident(_d_sessions, "o-r1", last=NOW - timedelta(hours=1), used=3)
    for i in range(4):
        await _queue(_d_sessions, "o-r1", f"第{i}条：您的轮椅申请已受理\n请保持电话畅通")
    api = _DApi()
    stats = await dispatch_due(sessions=_d_sessions, api=api, now=NOW, concurrency=1, config=_cfg())
    assert [c for c, *_ in api.sent] == ["custom", "custom", "template", "template"]
    assert stats.sent == 4 and stats.via_custom == 2 and stats.via_template == 2
    tpl = api.sent[2][2]
    assert all(len(v) <= 20 and "\n" not in v for v in tpl["data"].values())
    assert not {"first", "remark"} & set(tpl["data"])
    assert tpl["url"] == "https://dgj.example/"
    assert {r.status for r in await _rows(_d_sessions)} == {"sent"}


async def test_outside_48h_window_goes_by_template(_d_sessions: Any) -> None:
    await _resident(_d_sessions, "o-old", last=NOW - timedelta(hours=49))
    await _queue(
        _d_sessions,
        "o-old",
        "进度更新",
        template={"thing1": "您的申请已经办理完成，请您对本次服务进行评价谢谢", "first": "x"},
        link="https://dgj.example/r/abc",
    )
    api = _DApi()
    await dispatch_due(sessions=_d_sessions, api=api, now=NOW, concurrency=2, config=_cfg())
    ((channel, openid, payload),) = api.sent
    assert channel == "template" and openid == "o-old"
    assert payload["data"] == {"thing1": "您的申请已经办理完成，请您对本次服务进…"}
    assert payload["url"] == "https://dgj.example/r/abc"


@pytest.mark.parametrize("code", [45015, 45047])
async def test_window_errors_fall_back_to_template(_d_sessions: Any, code: int) -> None:
    await _resident(_d_sessions, "o-r", last=NOW - timedelta(hours=1))
    await _queue(_d_sessions, "o-r", "您好")
    await _queue(_d_sessions, "o-r", "第二条")
    api = _DApi()
    api.faults["custom"] = [code]
    await dispatch_due(sessions=_d_sessions, api=api, now=NOW, concurrency=1, config=_cfg())
    assert [c for c, *_ in api.sent] == ["template", "template"]  # the second does not try custom again
    rows = await _rows(_d_sessions)
    assert [(r.status, r.channel) for r in rows] == [("sent", "template")] * 2


async def test_unsubscribed_marks_resident_and_flags_case(_d_sessions: Any) -> None:
    r = await _resident(_d_sessions, "o-gone", last=NOW - timedelta(hours=1))
    async with db.transaction(_d_sessions) as s:
        case = await create_case(
            s, kind="micro_wish", description="轮椅", town="厚街镇", resident_id=r.id, now=NOW
        )
    await _queue(_d_sessions, "o-gone", "进度", case_id=case.id)
    await _queue(_d_sessions, "o-gone", "进度2", case_id=case.id)
    api = _DApi()
    api.faults["custom"] = [43004, 43004]
    stats = await dispatch_due(sessions=_d_sessions, api=api, now=NOW, concurrency=1, config=_cfg())
    assert stats.unreachable == 2 and api.sent == []
    rows = await _rows(_d_sessions)
    assert {r.status for r in rows} == {"unreachable"}
    assert rows[0].last_error and rows[0].last_error.startswith("43004")
    async with _d_sessions() as s:
        res = (await s.exec(select(Resident).where(Resident.openid == "o-gone"))).one()
        assert res.subscribed is False and res.unsubscribed_at == NOW
        from bot.models import Case

        c = await s.get(Case, case.id)
        assert c is not None and c.flag == PHONE_FLAG
        notes = (
            await s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "note"))
        ).all()
        assert len(notes) == 1 and "请电话联系" in notes[0].note


async def test_busy_and_network_back_off_then_park_as_failed(_d_sessions: Any) -> None:
    await _resident(_d_sessions, "o-b", last=NOW - timedelta(hours=1))
    await _queue(_d_sessions, "o-b", "稍后")
    api = _DApi()
    api.faults["custom"] = [-1, -2, -1]
    cfg = _cfg(max_attempts=3)
    now = NOW
    waits = []
    for _ in range(3):
        await dispatch_due(sessions=_d_sessions, api=api, now=now, concurrency=1, config=cfg)
        (row,) = await _rows(_d_sessions)
        # nothing is due before the backoff ends
        assert (
            await dispatch_due(sessions=_d_sessions, api=api, now=now, concurrency=1, config=cfg)
        ).claimed == 0
        waits.append(row.next_attempt_at - now)
        now = row.next_attempt_at
    assert row.status == "failed" and row.attempts == 3
    assert row.last_error is not None and row.last_error.startswith("-1")
    assert waits[1] > waits[0]  # exponential (jitter is ±50 %, doubling wins with this seed)
    assert api.sent == []
    # staff press "retry": it goes out now
    async with db.transaction(_d_sessions) as s:
        await retry(s, outbox_id=row.id, now=now)
    stats = await dispatch_due(sessions=_d_sessions, api=api, now=now, concurrency=1, config=cfg)
    assert stats.sent == 1 and api.sent[0][2] == "稍后"
    async with db.transaction(_d_sessions) as s:
        with pytest.raises(NotRetryable):
            await retry(s, outbox_id=row.id, now=now)


async def test_permanent_error_parks_at_once(_d_sessions: Any) -> None:
    await _queue(_d_sessions, "o-x", "无窗口")
    api = _DApi()
    api.faults["template"] = [40037]
    stats = await dispatch_due(sessions=_d_sessions, api=api, now=NOW, concurrency=1, config=_cfg())
    assert stats.failed == 1
    (row,) = await _rows(_d_sessions)
    assert row.status == "failed" and "40037" in (row.last_error or "")


async def test_crash_mid_send_is_retried_after_the_lease(_d_sessions: Any) -> None:
    await _queue(_d_sessions, "o-c", "只发一次")
    from bot.delivery.dispatcher import claim_due

    async with db.transaction(_d_sessions) as s:  # a dispatcher claims, then dies
        (claimed,) = await claim_due(s, now=NOW, batch=10, lease=timedelta(seconds=60))
    api = _DApi()
    cfg = _cfg(lease=timedelta(seconds=60))
    assert (
        await dispatch_due(
            sessions=_d_sessions, api=api, now=NOW + timedelta(seconds=30), concurrency=1, config=cfg
        )
    ).claimed == 0
    stats = await dispatch_due(
        sessions=_d_sessions, api=api, now=NOW + timedelta(seconds=61), concurrency=1, config=cfg
    )
    assert stats.sent == 1 and len(api.sent) == 1
    (row,) = await _rows(_d_sessions)
    assert row.status == "sent" and row.attempts == 2


async def test_stopping_finishes_the_send_under_way_and_returns_the_rest_to_the_queue(
    _d_sessions: Any,
) -> None:
    """A stop arriving during a batch: the send under way is recorded, the batch's other rows are pending again,
    due at once and with their attempt uncounted (not left "sending" until their lease runs out)."""
    for i in range(3):
        await _queue(_d_sessions, f"o-s{i}", f"第{i}条")
    cfg = _cfg(lease=timedelta(seconds=60))

    class _StopsDuringFirst(_DApi):
        async def send_template(self, *args: Any) -> Any:
            cfg.stopping.set()  # the process is asked to stop while this send is under way
            return await super().send_template(*args)

    api = _StopsDuringFirst()
    stats = await dispatch_due(sessions=_d_sessions, api=api, now=NOW, concurrency=1, config=cfg)
    assert stats.claimed == 3 and stats.sent == 1 and len(api.sent) == 1
    rows = await _rows(_d_sessions)
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1), ("pending", 0), ("pending", 0)]
    again = await dispatch_due(sessions=_d_sessions, api=_DApi(), now=NOW, concurrency=1, config=_cfg())
    assert again.sent == 2  # due at once for the next process


def test_template_fields_from_text() -> None:
    row = Outbox(
        openid="o",
        kind="reminder",
        text="\n\n案件 MS20250603-0001 将于明天18:00到期，请尽快处理并反馈结果\n第二行",
    )
    fields = template_fields(row, now=NOW)
    assert fields["thing1"] == "办理提醒"
    assert fields["thing2"] == "案件 MS20250603-0001…"
    assert fields["time3"] == "2025-06-03 10:00"
    assert all(len(v) <= 20 and "\n" not in v for v in fields.values())
