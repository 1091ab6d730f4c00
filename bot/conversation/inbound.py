"""From a verified WeChat delivery to a reply: record it once, understand it, let the dialogue decide.

Implements webhooks.InboundHandler. Each delivery is recorded under its unique key before anything else happens,
so a retry (also a concurrent one) has exactly one effect and gets the same answer, or "success".

When the database is unavailable, a delivery goes to the local journal (``spool.Journal``, fsync'd) instead, the
resident is told it is kept, and a background task replays the journal in order once the database answers again;
the answer then follows as a customer-service message. While the journal holds entries of a resident, that
resident's new deliveries queue behind them, so their messages are acted on in the order they were sent; while the
database is away, everyone's do.

Under a flood (more deliveries in hand than ``inbound_in_flight_limit``, or one waiting ``DB_WAIT_LIMIT`` for a
busy database) a delivery goes to the journal at once and the resident is told it is kept: memory and the
database's queue stay bounded, and the journal drains while others go on live. A delivery WeChat is answered
``success`` for while its handling still runs is written to the guard file first (``keep``): a kill -9 loses
nothing that was acknowledged."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot import keys
from bot.conversation.dbwatch import (
    DB_BUDGET_MARGIN,
    DatabaseAway,
    DatabaseBusy,
    DatabaseWatch,
    unavailable,
)
from bot.conversation.dialogue import Turn, respond
from bot.conversation.dialogue.turn import Awaiting, Received
from bot.conversation.nlu import Parse
from bot.conversation.nlu.fillers import strip_fillers
from bot.conversation.ratelimit import RateLimiter
from bot.conversation.record import ReadConversation, record, store
from bot.conversation.spool import Entry, Guard, Journal, describe
from bot.db import Sessions, transaction
from bot.delivery.outbox import enqueue
from bot.driver import stale_plan
from bot.media import keep as keep_media
from bot.models import InboundMessage, Resident
from reference import privacy
from webhooks import Delivery

log = logging.getLogger(__name__)
TOO_FAST = "您发得有点快，我先记下了。请稍等一分钟再接着说，我会一条条帮您处理。"
SORRY = "不好意思，系统刚才开了小差。您的消息我们已经记下，工作人员会尽快跟进；您也可以稍后再发一次。"
KEPT = "您的消息已经收到并记下了。系统正在维护，处理好后会在这里回复您，不用重复发送。"
BUSY_KEPT = "您的消息已经收到并记下了。现在留言的人比较多，处理好后会在这里回复您，不用重复发送。"
NOT_KEPT = "不好意思，系统正在维护，这条消息暂时没能记下。请过几分钟再发一次，给您添麻烦了。"
#: how often the journal is retried while the database is away (seconds)
REPLAY_INTERVAL = 0.5
#: journal entries replayed together (one resident's in order, several residents' at once)
REPLAY_WINDOW = 64
#: a late answer that cannot be queued because the database is away or its pool exhausted is retried after these
#: pauses (seconds); then it stays with the process and a shutdown journals it
LATE_RETRY_PAUSES = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: seconds after a delivery went to the journal for a flood during which a resident queued behind their journalled
#: messages is told "many people" rather than "maintenance"
FLOOD_MEMORY = 60.0
#: deliveries in hand below which their waiting never sheds newcomers (one stalled dialogue must not turn everyone
#: away; the in-flight limit still applies)
SHED_MIN = 16
#: how many recently recorded delivery keys a process remembers (a WeChat retry comes within seconds)
RECENT_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Prepared:
    """A delivery's part that needs no database (``Inbound._prepare``)."""

    duplicate: bool = False
    limited: bool = False
    parse: Parse | None = None


class Inbound:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        # one message at a time per resident in this process, so two quick messages don't race on the draft
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._limiter = RateLimiter(limit=app[keys.SETTINGS].messages_per_minute, redis=app[keys.REDIS])
        self.journal = Journal(app[keys.SETTINGS].data_dir / "journal")
        self.guard = Guard(self.journal.directory, self.journal.token)
        self._limit = app[keys.SETTINGS].inbound_in_flight_limit
        # the database was found away and nothing has committed since: everyone's deliveries go to the journal
        self._away = False
        self._flooded_at = -FLOOD_MEMORY
        self.shed = 0
        self._replayer: asyncio.Task[None] | None = None
        # busy or away: the database's answers to this process, watched
        self.watch = DatabaseWatch(self._engines(), self._chat_engine())
        self.spooled = 0
        self.replayed = 0
        # keys this process recorded lately: a retry of one is answered from its record without asking the NLU
        self._recent: OrderedDict[str, None] = OrderedDict()
        # deliveries being handled and not yet committed, journalled or answered: what a shutdown would lose
        self._inflight: dict[str, tuple[Delivery, datetime]] = {}
        self._since: dict[str, float] = {}  # when each of them arrived (monotonic), oldest first
        # replayed deliveries whose answer went into the outbox in their own transaction
        self._queued_with_record: set[str] = set()
        self._shed_after = app[keys.SETTINGS].inbound_shed_after
        # answered deliveries whose late answer is not queued yet (deliver_late waiting, cancelled or failed)
        self._late: dict[str, tuple[Delivery, datetime]] = {}

    def _engines(self) -> list[Any]:
        engines = [self.app.get(keys.ENGINE), self.app.get(keys.CHAT_ENGINE)]
        return [e for i, e in enumerate(engines) if e is not None and e not in engines[:i]]

    @property
    def _sessions(self) -> Sessions:
        """The conversation's sessions (on SQLite, statements on the loop's thread: bot/db.py)."""
        return self.app.get(keys.CHAT_SESSIONS) or self.app[keys.SESSIONS]

    async def handle(self, delivery: Delivery) -> str | None:
        now = self.app[keys.CLOCK]()
        # a retry of a delivery recorded lately is answered from its record: it has no effect to order or to shed
        retry = delivery.key in self._recent
        if not retry and delivery.key not in self._inflight and self._flood():
            # a flood: more in hand than the process can answer in time; kept on disk, replayed as others finish
            self.shed += 1
            self.app[keys.METRICS].replies.labels("shed").inc()
            return self._spool(delivery, now, busy=True)
        # one message at a time per resident; a retry answered from its record waits for nobody
        lock = self._locks[delivery.openid] if not retry else asyncio.Lock()
        self._inflight.setdefault(delivery.key, (delivery, now))
        self._since.setdefault(delivery.key, time.monotonic())
        reply: str | None
        spooled = False
        try:
            async with lock:
                # the order of a resident's messages: behind what is journalled of theirs (of everyone's while the
                # database is away)
                if not retry and (
                    self.journal.holds(delivery.openid) or (self._away and self.journal.pending)
                ):
                    reply, spooled = self._spool(delivery, now, busy=self._flooded()), True
                else:
                    try:
                        reply = await self._handle(delivery, now)
                        self._away = False
                    except DatabaseBusy as exc:
                        log.warning("database busy (%s): delivery goes to the journal", exc)
                        reply, spooled = self._spool(delivery, now, busy=True), True
                    except DatabaseAway as exc:
                        log.warning("database unavailable (%s): delivery goes to the journal", exc)
                        self._away = True
                        reply, spooled = self._spool(delivery, now), True
        finally:
            if not retry and not lock.locked():
                self._locks.pop(delivery.openid, None)
        # done: committed, journalled or answered as a duplicate (a cancelled call stays in flight, see stop)
        self._inflight.pop(delivery.key, None)
        self._since.pop(delivery.key, None)
        if reply is None or spooled:
            self.guard.release(
                delivery.key
            )  # else a kept delivery's answer is still to be queued (deliver_late)
        return reply

    def _flood(self) -> bool:
        """More in hand than the limit, or (with at least ``SHED_MIN`` in hand) the oldest waiting longer than
        ``inbound_shed_after``: the process cannot answer newcomers in time, whatever its capacity."""
        if len(self._inflight) >= self._limit:
            return True
        if len(self._since) < SHED_MIN or self._shed_after <= 0:
            return False
        return time.monotonic() - next(iter(self._since.values())) > self._shed_after

    def load(self) -> dict[str, int]:
        """For /readyz: deliveries in hand, journalled and waiting, written to the guard, shed since start."""
        return {
            "in_flight": len(self._inflight),
            "in_flight_limit": self._limit,
            "waiting": self.journal.waiting,
            "guarded": len(self.guard),
            "shed": self.shed,
        }

    async def keep(self, delivery: Delivery) -> None:
        """WeChat is about to be answered ``success`` while this delivery is still being handled: write it to the
        guard file first, so a kill -9 before its outcome is committed (and its answer queued) loses nothing. A
        restart adopts the file and replays it; the unique key makes a delivery that did commit a no-op there."""
        held = self._inflight.get(delivery.key)
        if held is None:  # finished meanwhile (its outcome is committed or journalled)
            return
        try:
            await self.guard.keep(*held)
        except OSError as exc:
            log.error(
                "guard: cannot keep delivery %s (%s) at %s; a crash now would lose it",
                privacy.pseudonym(delivery.key),
                describe(exc),
                self.guard.path,
            )

    # ------------------------------------------------------------------ the journal
    def _flooded(self) -> bool:
        """Whether deliveries went to the journal for a flood lately (the words a resident queued behind hears)."""
        return not self._away and time.monotonic() - self._flooded_at < FLOOD_MEMORY

    def _spool(self, delivery: Delivery, now: datetime, *, busy: bool = False) -> str:
        try:
            self.journal.append(delivery, now)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            log.error(
                "journal: cannot keep delivery %s (%s%s) at %s; the resident was asked to send it again",
                privacy.pseudonym(delivery.key),
                "disk full: " if full else "",
                describe(exc),
                self.journal.directory,
            )
            self.app[keys.METRICS].replies.labels("not_kept").inc()
            return NOT_KEPT
        self.spooled += 1
        if busy:
            self._flooded_at = time.monotonic()
        self.app[keys.METRICS].replies.labels("journalled").inc()
        self.start()
        return BUSY_KEPT if busy else KEPT

    def start(self) -> None:
        """Start the replayer (idempotent); called at startup and whenever something is journalled."""
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.get_running_loop().create_task(
                self._replay_loop(), name="journal-replay"
            )

    async def stop(self) -> None:
        self._evacuate()
        await self.watch.stop()
        if self._replayer is not None:
            self._replayer.cancel()
            try:
                await self._replayer
            except (asyncio.CancelledError, Exception):
                pass
        self.journal.close()
        self.guard.close()

    def _evacuate(self) -> None:
        """At shutdown, deliveries still in flight (the webhook's tasks past their grace, cancelled: WeChat was
        answered ``success`` and will not send them again) and answers not yet queued for late delivery go to the
        journal, replayed at the next start, once (their key dedupes one that did commit; a recorded answer is
        queued for the outbox under its dedupe key). Seen under overload: thousands of queued deliveries cancelled at a
        shutdown (benchmarks/README.md, webhook --full)."""
        entries = [*self._inflight.values(), *self._late.values()]
        if not entries:
            return
        try:
            self.journal.append_many(entries)
        except OSError as exc:
            log.error(
                "shutdown: %d deliveries in progress could not be journalled (%s) at %s",
                len(entries),
                describe(exc),
                self.journal.directory,
            )
            return
        self._inflight.clear()
        self._since.clear()
        self._late.clear()
        self.guard.discard()  # everything it held is in the journal now
        log.warning(
            "shutdown: %d deliveries in progress journalled; replayed at the next start", len(entries)
        )

    async def _replay_loop(self) -> None:
        while self.journal.pending:
            try:
                await self.replay()
            except DatabaseAway:
                pass
            except Exception:
                log.exception("journal: replay failed; retrying")
            if self.journal.pending:
                await asyncio.sleep(REPLAY_INTERVAL)

    async def replay(self) -> int:
        """Replay the journal until it is empty or the database fails again; returns how many. Entries go in windows
        of ``REPLAY_WINDOW``: one resident's in order, different residents' at the same time (a flood's journal
        drains at the database's pace, not at one round trip after another); a window counts as replayed only when
        all of it is (after a failure it is replayed again: the unique key makes what did commit a no-op)."""
        count = 0
        window: list[tuple[Path, int, Entry | None]] = []
        for item in self.journal.entries():
            window.append(item)
            if len(window) >= REPLAY_WINDOW:
                count += await self._replay_window(window)
                window = []
        if window:
            count += await self._replay_window(window)
        self.journal.finish_files()
        if count:
            log.info("journal: %d deliveries replayed", count)
        return count

    async def _replay_window(self, window: list[tuple[Path, int, Entry | None]]) -> int:
        by_resident: defaultdict[str, list[Entry]] = defaultdict(list)
        for _, _, entry in window:
            if entry is not None:
                by_resident[entry.delivery.openid].append(entry)

        queued = 0

        async def in_order(entries: list[Entry]) -> None:
            nonlocal queued
            for entry in entries:
                queued += await self._replay_one(entry)

        outcomes = await asyncio.gather(*(in_order(e) for e in by_resident.values()), return_exceptions=True)
        if queued:  # the answers queued with their records go out now, in one dispatch for the window
            await self._dispatch_now()
        failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failed is not None:
            raise failed
        for path, offset, entry in window:
            self.journal.done(path, offset, entry)
        return sum(len(e) for e in by_resident.values())

    async def _replay_one(self, entry: Entry) -> bool:
        """Replay one entry; True when its answer was queued with its record (to be dispatched)."""
        delivery = entry.delivery
        lock = self._locks[delivery.openid]
        try:
            async with lock:
                reply = await self._handle(delivery, entry.received_at, replaying=True)
        finally:
            if not lock.locked():
                self._locks.pop(delivery.openid, None)
        self.replayed += 1
        self._away = False
        if delivery.key in self._queued_with_record:
            self._queued_with_record.discard(delivery.key)
            self.guard.release(delivery.key)
            return True
        if reply:  # recorded earlier and never answered, or failed: the answer follows as a message
            await self.deliver_late(delivery, reply)
        return False

    # ------------------------------------------------------------------ one delivery
    async def _handle(self, delivery: Delivery, now: datetime, *, replaying: bool = False) -> str | None:
        budget = max(1.0, self.app[keys.SETTINGS].wechat_reply_budget - DB_BUDGET_MARGIN)
        # what needs no database comes first, outside the watch: a slow NLU is not a database that went away
        prepared = await self._prepare(delivery, now, replaying)
        return await self.watch.run(self._handle_once(delivery, now, replaying, prepared), budget=budget)

    def _chat_engine(self) -> Any:
        return self.app.get(keys.CHAT_ENGINE) or self.app.get(keys.ENGINE)

    async def _prepare(self, delivery: Delivery, now: datetime, replaying: bool) -> Prepared:
        """What needs no database, before the transaction: a retry of a key recorded lately, the flood check and
        the NLU (a slow Rasa never holds a database lock)."""
        if delivery.key in self._recent and not replaying:
            return Prepared(duplicate=True)
        # the window is read on the app's clock (tests pin the minute)
        is_message = delivery.msg_type != "event"
        limited = is_message and not await self._limiter.allow(delivery.openid, now=now.timestamp())
        return Prepared(limited=limited, parse=None if limited else await self._parse(delivery))

    async def _handle_once(
        self, delivery: Delivery, now: datetime, replaying: bool, prepared: Prepared, *, again: bool = False
    ) -> str | None:
        """One transaction per message: the resident, the record under the unique key, the dialogue, the reply.

        A duplicate fails on the unique key before the dialogue acts; a dialogue failure rolls the transaction back
        and the message is then recorded alone, marked failed, for staff."""
        app = self.app
        sessions = self._sessions
        if prepared.duplicate:
            app[keys.METRICS].duplicates.inc()
            return await self._duplicate(delivery)
        limited, parse = prepared.limited, prepared.parse
        try:
            # one resident's deliveries one after another across workers too (``Inbound._locks`` does it within
            # a process): two at once (a reply went out late and the resident wrote again, the next message reached
            # another worker) took the resident's and the conversation's rows in opposite orders and deadlocked
            # (seen with 4 workers in benchmarks/scaleout.py); on PostgreSQL a lock held until the commit
            async with transaction(sessions, lock=f"resident:{delivery.openid}") as session:
                row, resident, conv, waiting = await record(session, delivery, now)
                # an image or voice is downloaded into the project's storage after the commit (WeChat keeps it 3 days)
                await keep_media(session, row, now=now, deps=app.get(keys.MEDIA))
                if limited:
                    # flooding: the message is kept (staff can read it) but neither parsed nor acted on
                    row.reply, row.reply_mode = TOO_FAST, "limited"
                    reply: str | None = TOO_FAST
                else:
                    reply = await self._act(
                        session, row, resident, delivery, parse, now, conv=conv, waiting=waiting
                    )
                # the resident was told the message is kept (a replay), or WeChat was told ``success`` (kept by the
                # edge): its answer is queued with its record, so a retry never finds it passive as well
                late = bool(reply) and not limited and (replaying or delivery.key in self.guard)
                if late:
                    row.reply_mode = "outbox"
                    await enqueue(
                        session,
                        openid=delivery.openid,
                        kind="reply",
                        text=str(reply),
                        dedupe_key=f"reply:{delivery.key}",
                        now=now,
                    )
                await store(session, row)
        except IntegrityError:
            if replaying:  # in the database already: finish it if it was never answered
                return await self._finish_recorded(delivery, now)
            app[keys.METRICS].duplicates.inc()
            return await self._duplicate(delivery)
        except Exception as exc:
            if unavailable(exc):
                raise DatabaseAway(describe(exc)) from exc
            if stale_plan(exc) and not again:
                # a migration changed a table under a statement this connection had prepared: the driver dropped
                # the plan with the failed transaction, so the same unit of work once more succeeds
                log.warning("a prepared statement outlived a schema change; delivery handled once more")
                return await self._handle_once(delivery, now, replaying, prepared, again=True)
            # never an error to the resident, never a lost message: it is recorded alone, marked for staff
            log.exception(
                "the dialogue failed on delivery %s; the message is kept as failed",
                privacy.pseudonym(delivery.key),
            )
            try:
                async with transaction(sessions) as session:
                    row = (await record(session, delivery, now)).row
                    row.reply, row.reply_mode = SORRY, "failed"
                    await store(session, row)
            except IntegrityError:
                return await self._duplicate(delivery)
            app[keys.METRICS].inbound.labels(delivery.msg_type).inc()
            app[keys.METRICS].replies.labels("failed").inc()
            return SORRY
        self._remember(delivery.key)
        app[keys.METRICS].inbound.labels(delivery.msg_type).inc()
        if late:
            self._queued_with_record.add(delivery.key)
            app[keys.METRICS].replies.labels("outbox").inc()
        else:
            app[keys.METRICS].replies.labels("limited" if limited else "passive" if reply else "none").inc()
        return reply

    def _remember(self, key: str) -> None:
        self._recent[key] = None
        while len(self._recent) > RECENT_KEYS:
            self._recent.popitem(last=False)

    async def _parse(self, delivery: Delivery) -> Parse | None:
        text = (delivery.text or "").strip()
        if delivery.msg_type not in {"text", "voice"} or not text:
            return None
        started = time.perf_counter()
        # greetings and fillers ("喂 你好 …", "… 谢谢") never hide a request: the NLU sees what lies between
        parse: Parse = await self.app[keys.NLU_CLIENT].parse((strip_fillers(text) or text)[:500])
        self.app[keys.METRICS].nlu.labels(parse.source).observe(time.perf_counter() - started)
        return parse

    async def _act(
        self,
        session: Any,
        row: Received,
        resident: Resident,
        delivery: Delivery,
        parse: Parse | None,
        now: datetime,
        *,
        conv: ReadConversation = None,
        waiting: Awaiting | None = None,
    ) -> str | None:
        """``conv``, ``waiting``: the conversation and the rare states if already read in this transaction
        (``ReadConversation``, ``Turn.read_awaiting``)."""
        reply = await respond(
            Turn(
                session=session,
                resident=resident,
                delivery=delivery,
                parse=parse,
                inbound=row,
                now=now,
                settings=self.app[keys.SETTINGS],
                read_conv=conv,
                read_awaiting=waiting,
            )
        )
        if parse is not None:
            row.intent, row.confidence, row.nlu_source = parse.intent, parse.confidence, parse.source
        row.reply = reply
        row.reply_mode = "passive" if reply else "none"
        return reply

    async def _finish_recorded(self, delivery: Delivery, now: datetime) -> str | None:
        """A replayed delivery already recorded: act on it only if it never got an answer (a row left by a
        process that recorded first and acted in a second transaction). A row answered "passive" was committed
        while the resident was told "kept" instead (the database answered past the budget): its answer never
        reached the phone, so it is returned for the late delivery (the outbox key makes that once)."""
        async with self._sessions() as session:
            found = (
                await session.exec(
                    select(
                        col(InboundMessage.id), col(InboundMessage.reply_mode), col(InboundMessage.reply)
                    ).where(col(InboundMessage.delivery_key) == delivery.key)
                )  # type: ignore[call-overload]
            ).first()
        if found is not None and found[1] == "passive" and found[2]:
            return str(found[2])
        if found is None or found[1] not in (None, "pending"):
            return None
        parse = await self._parse(delivery)
        async with transaction(self._sessions) as session:
            stored = await session.get(InboundMessage, found[0])
            resident = await session.get(Resident, stored.resident_id) if stored is not None else None
            assert stored is not None and stored.id is not None and resident is not None
            row = Received(
                id=stored.id, openid=stored.openid, msg_type=stored.msg_type, media=stored.media or {}
            )
            reply = await self._act(session, row, resident, delivery, parse, now)
            await store(session, row)
            return reply

    async def _duplicate(self, delivery: Delivery) -> str | None:
        async with self._sessions() as session:
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
        """The dialogue took longer than the reply budget: the answer goes out as a customer-service message.
        Until it is queued, a shutdown journals the delivery (its replay finds the answer and queues it, once).
        A delivery the edge kept had its answer queued with its record: it is only dispatched."""
        if delivery.key in self._queued_with_record:
            self._queued_with_record.discard(delivery.key)
            self.guard.release(delivery.key)
            await self._dispatch_now()
            return
        now = self.app[keys.CLOCK]()
        self._late[delivery.key] = (delivery, now)
        for attempt, pause in enumerate((*LATE_RETRY_PAUSES, None), start=1):
            try:
                await self._queue_late(delivery, reply, now)
                break
            except Exception as exc:
                if pause is None or not unavailable(exc):
                    # kept in ``_late``: a shutdown journals it and the next start queues the answer
                    raise
                log.warning(
                    "late answer to %s not queued (%s, attempt %d); retrying in %.0f s",
                    privacy.pseudonym(delivery.key),
                    describe(exc),
                    attempt,
                    pause,
                )
                await asyncio.sleep(pause)
        self._late.pop(delivery.key, None)  # queued: the outbox has it
        self.guard.release(delivery.key)
        self.app[keys.METRICS].replies.labels("outbox").inc()
        await self._dispatch_now()

    async def _dispatch_now(self) -> None:
        try:
            # the immediate dispatch belongs to the process layer (bot.ops), above this package: the app
            # factory hands it down as app[keys.DISPATCH_NOW]
            await self.app[keys.DISPATCH_NOW](self.app)
        except Exception:  # the periodic dispatcher will pick it up
            log.exception("immediate dispatch of a late reply failed; it stays queued")

    async def _queue_late(self, delivery: Delivery, reply: str, now: datetime) -> None:
        async with transaction(self._sessions) as session:
            await session.exec(
                update(InboundMessage)
                .where(col(InboundMessage.delivery_key) == delivery.key)
                .values(reply_mode="outbox")
            )
            await enqueue(
                session,
                openid=delivery.openid,
                kind="reply",
                text=reply,
                dedupe_key=f"reply:{delivery.key}",
                now=now,
            )
