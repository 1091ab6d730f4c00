"""The edge's reply budget with a handler that keeps deliveries (``webhooks.KeepsUnanswered``): asked once, before
``success``, only for work still running; a kept delivery's reply goes out late exactly once, also when it arrives
while the handler is writing it down; a handler without ``keep`` is never asked and answers as before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from webhooks import Delivery, InboundHandler, KeepsUnanswered
from webhooks.budget import ReplyRunner


def delivery(key: str = "msg:1") -> Delivery:
    return Delivery(
        key=key,
        openid="oKeep",
        account="gh_keep",
        msg_type="text",
        event=None,
        text="你好",
        media={},
        create_time=datetime(2026, 12, 6, tzinfo=UTC),
        raw_xml="<xml/>",
    )


class Slow:
    """A handler whose answer comes when ``finish`` is set; ``keep`` takes ``keep_pause`` seconds."""

    def __init__(self, keep_pause: float = 0.0) -> None:
        self.finish = asyncio.Event()
        self.kept: list[str] = []
        self.late: list[tuple[str, str]] = []
        self.keep_pause = keep_pause

    async def handle(self, d: Delivery) -> str | None:
        await self.finish.wait()
        return "答复"

    async def deliver_late(self, d: Delivery, reply: str) -> None:
        self.late.append((d.key, reply))


class SlowKeeping(Slow):
    async def keep(self, d: Delivery) -> None:
        self.kept.append(d.key)
        await asyncio.sleep(self.keep_pause)


async def settle(runner: ReplyRunner) -> None:
    while runner.running:
        await asyncio.sleep(0.01)


async def test_a_late_job_is_kept_once_before_success_and_answered_late() -> None:
    runner, handler = ReplyRunner(), SlowKeeping()
    assert isinstance(handler, KeepsUnanswered) and isinstance(handler, InboundHandler)
    assert await runner.answer(handler, delivery(), timeout=0.05) is None
    assert handler.kept == ["msg:1"]
    # a WeChat retry joining the kept job is answered success too, and not kept again
    assert await runner.answer(handler, delivery(), timeout=0.05) is None
    assert handler.kept == ["msg:1"]
    handler.finish.set()
    await settle(runner)
    assert handler.late == [("msg:1", "答复")]


async def test_a_reply_arriving_while_the_delivery_is_being_kept_goes_out_late_once_not_passively() -> None:
    runner, handler = ReplyRunner(), SlowKeeping(keep_pause=0.2)

    async def finish_soon() -> None:
        await asyncio.sleep(0.1)  # the budget has passed, keep is writing
        handler.finish.set()

    finisher = asyncio.create_task(finish_soon())
    assert await runner.answer(handler, delivery(), timeout=0.05) is None
    await finisher
    await settle(runner)
    assert handler.late == [("msg:1", "答复")]
    assert runner.passive_replies == 0


async def test_a_fast_job_is_never_kept_and_a_handler_without_keep_is_never_asked() -> None:
    runner, keeping = ReplyRunner(), SlowKeeping()
    keeping.finish.set()
    assert await runner.answer(keeping, delivery("msg:2"), timeout=1.0) == "答复"
    assert keeping.kept == [] and keeping.late == []

    plain = Slow()
    assert not isinstance(plain, KeepsUnanswered)
    assert await runner.answer(plain, delivery("msg:3"), timeout=0.05) is None
    plain.finish.set()
    await settle(runner)
    assert plain.late == [("msg:3", "答复")]
