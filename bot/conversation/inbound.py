"""From a verified WeChat delivery to a reply: record it once, understand it, let the dialogue decide.

Implements webhooks.InboundHandler. Each delivery is recorded under its unique key before anything else happens,
so a retry (also a concurrent one) has exactly one effect and gets the same answer, or "success"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot import keys
from bot.conversation.dialogue import Turn, respond
from bot.conversation.nlu.fillers import strip_fillers
from bot.conversation.ratelimit import RateLimiter
from bot.db import transaction
from bot.delivery.outbox import enqueue
from bot.models import InboundMessage, Resident
from reference import privacy
from webhooks import Delivery

log = logging.getLogger(__name__)
TOO_FAST = "您发得有点快，我先记下了。请稍等一分钟再接着说，我会一条条帮您处理。"
SORRY = "不好意思，系统刚才开了小差。您的消息我们已经记下，工作人员会尽快跟进；您也可以稍后再发一次。"


class Inbound:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        # one message at a time per resident in this process, so two quick messages don't race on the draft
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._limiter = RateLimiter(limit=app[keys.SETTINGS].messages_per_minute, redis=app[keys.REDIS])

    async def handle(self, delivery: Delivery) -> str | None:
        now = self.app[keys.CLOCK]()
        lock = self._locks[delivery.openid]
        try:
            async with lock:
                return await self._handle(delivery, now)
        finally:
            if not lock.locked():
                self._locks.pop(delivery.openid, None)

    async def _handle(self, delivery: Delivery, now: datetime) -> str | None:
        app = self.app
        sessions = app[keys.SESSIONS]
        try:
            async with transaction(sessions) as session:
                resident = await _resident(session, delivery.openid, now)
                row = InboundMessage(
                    delivery_key=delivery.key,
                    openid=delivery.openid,
                    resident_id=resident.id,
                    msg_type=delivery.msg_type,
                    event=delivery.event,
                    text=delivery.text,
                    media=_jsonable(delivery.media),
                    received_at=now,
                )
                session.add(row)
                await session.flush()
                if delivery.msg_type != "event" or delivery.event in {"subscribe", "click", "scan"}:
                    resident.last_interaction_at = now  # opens WeChat's 48-hour window
                    resident.cs_sent_since_interaction = 0
                row_id = row.id
        except IntegrityError:
            app[keys.METRICS].duplicates.inc()
            return await self._duplicate(delivery)
        app[keys.METRICS].inbound.labels(delivery.msg_type).inc()
        # the window is read on the app's clock (tests pin the minute)
        if delivery.msg_type != "event" and not await self._limiter.allow(
            delivery.openid, now=now.timestamp()
        ):
            # flooding: the message is kept (staff can read it) but neither parsed nor acted on
            async with transaction(sessions) as session:
                await session.exec(
                    update(InboundMessage)
                    .where(col(InboundMessage.id) == row_id)
                    .values(reply=TOO_FAST, reply_mode="limited")
                )
            app[keys.METRICS].replies.labels("limited").inc()
            return TOO_FAST

        try:
            return await self._understand_and_reply(delivery, row_id, now)
        except Exception:
            # never an error to the resident, never a lost message: it stays recorded, marked for staff
            log.exception(
                "the dialogue failed on delivery %s; the message is kept as failed",
                privacy.pseudonym(delivery.key),
            )
            app[keys.METRICS].replies.labels("failed").inc()
            async with transaction(sessions) as session:
                await session.exec(
                    update(InboundMessage)
                    .where(col(InboundMessage.id) == row_id)
                    .values(reply=SORRY, reply_mode="failed")
                )
            return SORRY

    async def _understand_and_reply(
        self, delivery: Delivery, row_id: int | None, now: datetime
    ) -> str | None:
        app = self.app
        sessions = app[keys.SESSIONS]
        # the NLU is asked outside any transaction, so a slow Rasa never holds a database lock
        parse = None
        text = (delivery.text or "").strip()
        if delivery.msg_type in {"text", "voice"} and text:
            started = time.perf_counter()
            # greetings and fillers ("喂 你好 …", "… 谢谢") never hide a request: the NLU sees what lies between
            parse = await app[keys.NLU_CLIENT].parse((strip_fillers(text) or text)[:500])
            app[keys.METRICS].nlu.labels(parse.source).observe(time.perf_counter() - started)

        async with transaction(sessions) as session:
            stored = await session.get(InboundMessage, row_id)
            assert stored is not None and stored.resident_id is not None
            row = stored
            who = await session.get(Resident, stored.resident_id)
            assert who is not None
            resident = who
            reply = await respond(
                Turn(
                    session=session,
                    resident=resident,
                    delivery=delivery,
                    parse=parse,
                    inbound=row,
                    now=now,
                    settings=app[keys.SETTINGS],
                )
            )
            if parse is not None:
                row.intent, row.confidence, row.nlu_source = parse.intent, parse.confidence, parse.source
            row.reply = reply
            row.reply_mode = "passive" if reply else "none"
        app[keys.METRICS].replies.labels("passive" if reply else "none").inc()
        return reply

    async def _duplicate(self, delivery: Delivery) -> str | None:
        async with self.app[keys.SESSIONS]() as session:
            row = (
                await session.exec(
                    select(InboundMessage).where(col(InboundMessage.delivery_key) == delivery.key)
                )  # type: ignore[call-overload]
            ).scalar_one_or_none()
        log.info(  # the delivery key holds the openid: only its pseudonym goes to the log
            "duplicate delivery %s (first reply %s)",
            privacy.pseudonym(delivery.key),
            row.reply_mode if row else "?",
        )
        if row is not None and row.reply_mode == "passive":
            return row.reply
        return None

    async def deliver_late(self, delivery: Delivery, reply: str) -> None:
        """The dialogue took longer than the reply budget: the answer goes out as a customer-service message."""
        async with transaction(self.app[keys.SESSIONS]) as session:
            await session.exec(
                update(InboundMessage)
                .where(col(InboundMessage.delivery_key) == delivery.key)
                .values(reply_mode="outbox")
            )
            await enqueue(
                session, openid=delivery.openid, kind="reply", text=reply, dedupe_key=f"reply:{delivery.key}"
            )
        self.app[keys.METRICS].replies.labels("outbox").inc()
        try:
            # the immediate dispatch belongs to the process layer (bot.ops), above this package: looked up only
            # when a reply is late, so the conversation package does not depend on the scheduler at import time
            from bot.ops.scheduler import dispatch_now

            await dispatch_now(self.app)
        except Exception:  # the periodic dispatcher will pick it up
            log.exception("immediate dispatch of a late reply failed; it stays queued")


async def _resident(session: Any, openid: str, now: Any) -> Resident:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.exec(
        insert(Resident)
        .values(
            openid=openid, created_at=now, subscribed=True, survey_opt_out=False, cs_sent_since_interaction=0
        )
        .on_conflict_do_nothing(index_elements=["openid"])
    )
    return (await session.exec(select(Resident).where(col(Resident.openid) == openid))).scalar_one()


def _jsonable(media: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | None) else str(v) for k, v in media.items()}
