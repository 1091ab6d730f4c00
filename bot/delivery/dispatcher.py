"""The outbox dispatcher: sends due outbox rows through WeChat, choosing the channel per recipient.

Claiming: one statement moves due rows to ``sending`` with a lease (``next_attempt_at = now + lease``) and bumps
``attempts`` — on PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED``, on SQLite the write
lock (``BEGIN IMMEDIATE``) serialises claimers. Two dispatchers therefore never hold the same row; a dispatcher that
dies mid-send leaves the row ``sending`` and it becomes due again when the lease runs out. ``attempts`` is the fencing
token: a dispatcher whose lease was taken over cannot overwrite the newer owner's result.

Delivery is at-least-once in one narrow case only: a crash after WeChat accepted a message and before its row was
marked ``sent`` (a few milliseconds) sends it again after the lease. WeChat offers no idempotency key to do better.

Channel choice: a customer-service message inside the 48-hour window (``Resident.last_interaction_at``) while the
window's quota lasts (``Resident.cs_sent_since_interaction`` < 5); otherwise a template message whose fields are at
most 20 characters, without newlines and without ``first``/``remark``, with a link to the page holding the details.

SMS: a row with a ``phone`` (a resident without WeChat) goes out through ``DeliveryConfig.sms`` with our template
``survey`` (kind survey) or ``progress`` (everything else), filled from the row's ``case_no``/``status`` fields.
When WeChat says 43004 (unsubscribed) and the row's case has a contact phone, the same row falls back to SMS at once.
Outcomes: sent → sent; retry → backoff as for WeChat errors; unreachable/failed (or no SMS configured, or the
retries used up) → parked, and only then is the case told (``on_unreachable``: flag, call task). At most
``sms_per_hour`` texts go to one number per hour; more wait (without using an attempt). One-time codes (the web
query) go out at once through ``bot.delivery.texts.send_sms_now``, counted against the same per-number limit.

Nothing is dropped: a WeChat message that fails for good falls back to SMS when its case has a phone, else it is
parked (``failed``, with the staff's retry button) and its case told, as is a text message whose provider later
reports it undelivered (``bot.delivery.texts.record_receipt``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions, transaction
from bot.delivery.links import sign_link, sign_short
from bot.delivery.wechat_api import WeChatError
from bot.models import Case, Outbox, Resident
from bot.states import (
    CASE_STATUS_LABEL,
    MESSAGE_KIND_LABEL,
    ActorType,
    CaseFlag,
    DeliveryChannel,
    MessageKind,
    OutboxStatus,
)
from reference.privacy import normalize_phone

log = logging.getLogger(__name__)
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
WINDOW = timedelta(hours=48)
CS_QUOTA = 5
TEMPLATE_FIELD_MAX = 20
SMS_CHANNEL = "sms"  # Outbox.channel of a row sent as a text message
SMS_WINDOW = timedelta(hours=1)
PHONE_FLAG = CaseFlag.PHONE_NEEDED  # the case flag staff see (set by the case package through on_unreachable)
RESIDENT_LINK_KIND = "my_cases"  # bot.cases.lifecycle's signed link to /my/cases
KIND_TITLE: dict[str, str] = dict(MESSAGE_KIND_LABEL)  # the template message's title per kind


#: (session, case id, now): the case side of an undeliverable message, run in the dispatcher's transaction
UnreachableHook = Callable[[AsyncSession, int, datetime], Awaitable[None]]


@dataclass(slots=True)
class DeliveryConfig:
    template_id: str = "TPL_PROGRESS"
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 6
    backoff_base: float = 15.0  # seconds; doubles per attempt, with ±50 % jitter
    backoff_cap: float = 3600.0
    base_url: str = ""
    link_secret: str = ""
    link_ttl: int = 30 * 86400
    rng: random.Random = field(default_factory=random.Random)
    #: what the case must learn when its resident turned out unreachable (the scheduler passes
    #: ``bot.cases.flags.flag_unreachable``: the case package is above this one, so it is handed in, not imported)
    on_unreachable: UnreachableHook | None = None
    #: the SMS provider (``bot.delivery.sms.SmsProvider``; the app's ``keys.SMS``), None when SMS is off
    sms: Any = None
    sms_per_hour: int = 5
    #: set when the process is stopping: sends under way finish, the batch's others go back to the queue
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def backoff(self, attempts: int) -> timedelta:
        delay = min(self.backoff_base * 2 ** max(0, attempts - 1), self.backoff_cap)
        return timedelta(seconds=delay * self.rng.uniform(0.5, 1.5))


@dataclass(slots=True)
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    via_custom: int = 0
    via_template: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    via_sms: int = 0
    deferred: int = 0  # SMS over the per-number limit, waiting

    def add(self, other: DispatchStats) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


# ---------------------------------------------------------------------------- template fields
_WS = re.compile(r"\s+")


def clip(value: str, limit: int = TEMPLATE_FIELD_MAX) -> str:
    """One line, at most ``limit`` characters (an ellipsis marks a cut)."""
    value = _WS.sub(" ", str(value)).strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def template_fields(row: Outbox, *, now: datetime) -> dict[str, str]:
    """The template's fields: the row's own short fields, cleaned, or fields derived from its text."""
    given = {
        k: v for k, v in (row.template or {}).items() if k not in ("first", "remark") and v not in (None, "")
    }
    if given:
        return {k: clip(str(v)) for k, v in given.items()}
    first_line = next((line for line in row.text.splitlines() if line.strip()), row.text)
    return {
        "thing1": clip(KIND_TITLE.get(row.kind, "消息通知")),
        "thing2": clip(first_line),
        "time3": now.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
    }


def in_window(resident: Resident | None, now: datetime) -> bool:
    if resident is None or resident.last_interaction_at is None:
        return False
    return now - resident.last_interaction_at < WINDOW and resident.cs_sent_since_interaction < CS_QUOTA


# ---------------------------------------------------------------------------- claiming
async def claim_due(session: AsyncSession, *, now: datetime, batch: int, lease: timedelta) -> list[Outbox]:
    """Move up to ``batch`` due rows (pending, or sending with an expired lease) to ``sending``."""
    due = (
        select(Outbox.id)
        .where(
            col(Outbox.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            col(Outbox.next_attempt_at) <= now,
        )
        .order_by(col(Outbox.next_attempt_at))
        .limit(batch)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        sa.update(Outbox)
        .where(col(Outbox.id).in_(due.scalar_subquery()))
        .values(status=OutboxStatus.SENDING, next_attempt_at=now + lease, attempts=Outbox.attempts + 1)
        .returning(Outbox)
        .execution_options(synchronize_session=False)
    )
    result = await session.exec(stmt)
    rows = [r[0] if not isinstance(r, Outbox) else r for r in result.all()]
    return sorted(rows, key=lambda r: (r.next_attempt_at, r.id or 0))


async def _finish(session: AsyncSession, row: Outbox, **values: Any) -> bool:
    """Record the outcome unless another dispatcher took the row over (fenced by ``attempts``)."""
    stmt = (
        sa.update(Outbox)
        .where(
            col(Outbox.id) == row.id,
            col(Outbox.status) == OutboxStatus.SENDING,
            col(Outbox.attempts) == row.attempts,
        )
        .values(**values)
    )
    result = await session.exec(stmt)
    return bool(result.rowcount)


# ---------------------------------------------------------------------------- sending one row
class _GroupCommit:
    """The senders' outcome writes, committed together: a write that arrives while a transaction is running waits
    for the next one, which takes every write queued meanwhile (one transaction, one SQLite write lock, one commit
    for many rows instead of one each). Every sender still waits until its own write is committed before it goes
    on, so a row is marked before the next message of the same person is sent, exactly as with a transaction of
    its own. A transaction that fails is retried write by write, so one bad write fails only its own sender."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._queued: list[tuple[Callable[[AsyncSession], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0

    async def write(self, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((work, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                self.transactions += 1
                async with transaction(self.sessions) as session:
                    results = [await work(session) for work, _ in batch]
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=exc)
                    continue
                for work, done in batch:  # one by one: the failing write fails alone
                    try:
                        self.transactions += 1
                        async with transaction(self.sessions) as session:
                            result = await work(session)
                    except Exception as one:
                        _settle(done, exc=one)
                    else:
                        _settle(done, result=result)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                _settle(done, result=result)

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flusher


def _settle(done: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None) -> None:
    if done.done():  # its sender was cancelled
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)


async def _load_residents(session: AsyncSession, openids: set[str]) -> dict[str, Resident]:
    """The residents of a claimed batch, in one query per 500 (instead of one read per message)."""
    found: dict[str, Resident] = {}
    ordered = sorted(openids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for r in (await session.exec(select(Resident).where(col(Resident.openid).in_(chunk)))).all():
            found[r.openid] = r
    return found


async def _send_one(
    row: Outbox,
    *,
    sessions: Sessions,
    api: Any,
    now: datetime,
    config: DeliveryConfig,
    stats: DispatchStats,
    resident: Resident | None,
    writes: _GroupCommit,
) -> None:
    """Send one row. ``resident`` was read with the batch and is this dispatcher's view of the person's window:
    its quota count is kept up to date here as messages go out (one person's rows are sent one after another)."""
    if row.phone:
        await _send_sms(row, row.phone, sessions=sessions, now=now, config=config, stats=stats)
        return
    use_custom = in_window(resident, now)
    channel = DeliveryChannel.CUSTOM if use_custom else DeliveryChannel.TEMPLATE
    try:
        try:
            if use_custom:
                await api.send_text(row.openid, message_text(row, config=config, now=now))
            else:
                await _send_template(row, api=api, now=now, config=config, resident=resident)
        except WeChatError as exc:
            if not (use_custom and exc.window_closed):
                raise
            # outside the window or quota used: the template channel, and no more custom tries this window
            channel = DeliveryChannel.TEMPLATE

            async def quota_used(session: AsyncSession) -> None:
                await session.exec(
                    sa.update(Resident)
                    .where(col(Resident.openid) == row.openid)
                    .values(cs_sent_since_interaction=CS_QUOTA)
                )

            await writes.write(quota_used)
            if resident is not None:
                resident.cs_sent_since_interaction = CS_QUOTA
            await _send_template(row, api=api, now=now, config=config, resident=resident)
    except WeChatError as exc:
        await _failed_attempt(row, exc, sessions=sessions, now=now, config=config, stats=stats)
        return
    except Exception as exc:  # a bug must not stop the other messages
        log.exception("outbox %s: unexpected error while sending", row.id)
        await _failed_attempt(
            row,
            WeChatError(-1, f"internal: {type(exc).__name__}"),
            sessions=sessions,
            now=now,
            config=config,
            stats=stats,
        )
        return

    async def sent(session: AsyncSession) -> None:
        await _finish(session, row, status=OutboxStatus.SENT, sent_at=now, channel=channel, last_error=None)
        if channel == DeliveryChannel.CUSTOM:
            await session.exec(
                sa.update(Resident)
                .where(col(Resident.openid) == row.openid)
                .values(cs_sent_since_interaction=Resident.cs_sent_since_interaction + 1)
            )

    await writes.write(sent)
    stats.sent += 1
    if channel == DeliveryChannel.CUSTOM:
        stats.via_custom += 1
        if resident is not None:
            resident.cs_sent_since_interaction += 1
    else:
        stats.via_template += 1


async def _send_template(
    row: Outbox, *, api: Any, now: datetime, config: DeliveryConfig, resident: Resident | None
) -> None:
    link = resolve_link(row.link, config=config, now=now) or _default_link(row, config, resident, now)
    await api.send_template(row.openid, config.template_id, template_fields(row, now=now), link)


def resolve_link(link: str | None, *, config: DeliveryConfig, now: datetime) -> str | None:
    """``sign:<kind>:<id>`` markers become signed links (``/<kind>/<token>``), paths get the base URL;
    other links pass unchanged.
    The secret stays with the dispatcher, so domain code that queues a message never needs it."""
    if link and link.startswith("/"):
        return f"{config.base_url.rstrip('/')}{link}" if config.base_url else None
    if not link or not link.startswith("sign:"):
        return link
    try:
        _, kind, subject = link.split(":", 2)
    except ValueError:
        return None
    if not config.base_url or not config.link_secret:
        return None
    token = sign_link(config.link_secret, kind, subject, ttl=config.link_ttl, now=now.timestamp())
    return f"{config.base_url.rstrip('/')}/{kind}/{token}"


def message_text(row: Outbox, *, config: DeliveryConfig, now: datetime) -> str:
    """The customer-service text: a ``{link}`` placeholder is filled with the row's (signed) link."""
    if "{link}" not in row.text:
        return row.text
    link = resolve_link(row.link, config=config, now=now)
    if link:
        return row.text.replace("{link}", link)
    # no link available: drop the line that offered it
    return "\n".join(line for line in row.text.splitlines() if "{link}" not in line)


def _default_link(
    row: Outbox, config: DeliveryConfig, resident: Resident | None, now: datetime
) -> str | None:
    """Where the details are: the staff queue for staff; the resident's own cases (signed) for residents."""
    if not config.base_url:
        return None
    base = config.base_url.rstrip("/")
    if row.recipient_type == ActorType.STAFF:
        return f"{base}/staff/cases"
    if (
        row.recipient_type == ActorType.RESIDENT
        and resident is not None
        and resident.id is not None
        and config.link_secret
    ):
        token = sign_link(
            config.link_secret, RESIDENT_LINK_KIND, resident.id, ttl=config.link_ttl, now=now.timestamp()
        )
        return f"{base}/my/cases?t={token}"
    return f"{base}/"


async def _failed_attempt(
    row: Outbox, exc: Any, *, sessions: Sessions, now: datetime, config: DeliveryConfig, stats: DispatchStats
) -> None:
    reason = exc.short()[:500]
    permanent = not exc.unsubscribed and (
        row.attempts >= config.max_attempts or not (exc.retryable or exc.token_invalid or exc.window_closed)
    )
    if (
        (exc.unsubscribed or permanent)
        and config.sms is not None
        and (phone := await _fallback_phone(sessions, row))
    ):
        # 43004, or WeChat failed for good, and the case has a phone: the same message by SMS (the case is told
        # only if that fails too)
        if exc.unsubscribed:
            async with transaction(sessions) as session:
                await mark_unreachable(session, openid=row.openid, now=now)
        log.info("outbox %s: WeChat cannot deliver (%s); falling back to SMS", row.id, reason)
        await _send_sms(row, phone, sessions=sessions, now=now, config=config, stats=stats)
        return
    async with transaction(sessions) as session:
        if exc.unsubscribed:
            if await _finish(session, row, status=OutboxStatus.UNREACHABLE, last_error=reason):
                await mark_unreachable(session, openid=row.openid, now=now)
                if row.case_id is not None and config.on_unreachable is not None:
                    await config.on_unreachable(session, row.case_id, now)
            stats.unreachable += 1
            log.info("outbox %s: recipient unsubscribed; staff must phone", row.id)
        elif permanent:
            if await _finish(session, row, status=OutboxStatus.FAILED, last_error=reason):
                await tell_case(session, row, hook=config.on_unreachable, now=now)
            stats.failed += 1
            log.warning("outbox %s: parked as failed after %d attempts: %s", row.id, row.attempts, reason)
        else:
            await _finish(
                session,
                row,
                status=OutboxStatus.PENDING,
                last_error=reason,
                next_attempt_at=now + config.backoff(row.attempts),
            )
            stats.retried += 1


async def tell_case(
    session: AsyncSession, row: Outbox, *, hook: UnreachableHook | None, now: datetime
) -> None:
    """A resident's message about a case could not be delivered: the case side (flag, call task) must act."""
    if row.case_id is not None and row.recipient_type == ActorType.RESIDENT and hook is not None:
        await hook(session, row.case_id, now)


# ---------------------------------------------------------------------------- SMS
SHORT_LINK_TTL = 7 * 86400


def short_link(link: str | None, *, config: DeliveryConfig, now: datetime) -> str | None:
    """``sign:<kind>:<id>`` as a short signed link for a text message (``/s/<token>``, survey pages only)."""
    if not link or not link.startswith("sign:survey:") or not config.base_url or not config.link_secret:
        return None
    subject = link.removeprefix("sign:survey:")
    if not subject.isdigit():
        return None
    token = sign_short(config.link_secret, "survey", int(subject), ttl=SHORT_LINK_TTL, now=now.timestamp())
    return f"{config.base_url.rstrip('/')}/s/{token}"


def sms_message(row: Outbox, case: Case | None = None, *, link: str | None = None) -> tuple[str, list[str]]:
    """Our SMS template and its values for a row (``bot.delivery.sms.TEMPLATES``); a survey with a short
    ``link`` takes the template that carries it."""
    fields = row.template or {}
    case_no = str(fields.get("case_no") or (case.case_no if case else "") or "")
    if row.kind == MessageKind.SURVEY:
        name = "survey_reminder" if fields.get("sms_template") == "survey_reminder" else "survey"
        return (f"{name}_link", [case_no, link]) if link else (name, [case_no])
    status = str(
        fields.get("status") or (dict(CASE_STATUS_LABEL).get(case.status, "") if case else "") or "有新进展"
    )
    return "progress", [case_no, status]


async def _fallback_phone(sessions: Sessions, row: Outbox) -> str | None:
    """The case's contact phone, for a resident's message about a case (43004 fallback)."""
    if row.case_id is None or row.recipient_type != ActorType.RESIDENT:
        return None
    async with sessions() as session:
        case = await session.get(Case, row.case_id)
    return normalize_phone(case.contact_phone) if case is not None else None


async def sent_within(session: AsyncSession, *, phone: str, since: datetime) -> list[datetime]:
    rows = await session.exec(
        select(Outbox.sent_at).where(
            col(Outbox.phone) == phone,
            col(Outbox.channel) == SMS_CHANNEL,
            col(Outbox.status) == OutboxStatus.SENT,
            col(Outbox.sent_at) > since,
        )
    )
    return sorted(t for t in rows.all() if t is not None)


async def _send_sms(
    row: Outbox,
    phone: str,
    *,
    sessions: Sessions,
    now: datetime,
    config: DeliveryConfig,
    stats: DispatchStats,
) -> None:
    async with sessions() as session:
        case = await session.get(Case, row.case_id) if row.case_id is not None else None
        recent = await sent_within(session, phone=phone, since=now - SMS_WINDOW)
    if config.sms is not None and len(recent) >= max(1, config.sms_per_hour):
        # over the per-number limit: wait until the oldest text of the hour ages out (no attempt used)
        async with transaction(sessions) as session:
            await _finish(
                session,
                row,
                status=OutboxStatus.PENDING,
                phone=phone,
                attempts=max(0, row.attempts - 1),
                next_attempt_at=recent[0] + SMS_WINDOW + timedelta(seconds=1),
                last_error="sms: per-number limit",
            )
        stats.deferred += 1
        return
    if config.sms is None:
        outcome, code, message_id = "failed", "sms off", None
    else:
        link = short_link(row.link, config=config, now=now) if row.kind == MessageKind.SURVEY else None
        template, params = sms_message(row, case, link=link)
        try:
            result = await config.sms.send(
                phone=phone, template=template, params=params, ref=f"outbox-{row.id}"
            )
            outcome, code, message_id = result.outcome, result.code, result.message_id
        except Exception as exc:  # a bug must not stop the other messages
            log.exception("outbox %s: unexpected error while sending an SMS", row.id)
            outcome, code, message_id = "retry", f"internal: {type(exc).__name__}", None
    reason = f"sms: {code}"[:500]
    async with transaction(sessions) as session:
        if outcome == "sent":
            await _finish(
                session,
                row,
                status=OutboxStatus.SENT,
                sent_at=now,
                channel=SMS_CHANNEL,
                phone=phone,
                sms_id=message_id,
                last_error=None,
            )
            stats.sent += 1
            stats.via_sms += 1
            return
        if outcome == "retry" and row.attempts < config.max_attempts:
            await _finish(
                session,
                row,
                status=OutboxStatus.PENDING,
                phone=phone,
                last_error=reason,
                next_attempt_at=now + config.backoff(row.attempts),
            )
            stats.retried += 1
            return
        status = OutboxStatus.UNREACHABLE if outcome == "unreachable" else OutboxStatus.FAILED
        if await _finish(session, row, status=status, phone=phone, channel=SMS_CHANNEL, last_error=reason):
            await tell_case(session, row, hook=config.on_unreachable, now=now)
        if status == OutboxStatus.UNREACHABLE:
            stats.unreachable += 1
        else:
            stats.failed += 1
        log.warning("outbox %s: SMS parked as %s: %s", row.id, status, code)


async def mark_unreachable(session: AsyncSession, *, openid: str, now: datetime) -> None:
    """The person unsubscribed: remember it (the case side is ``DeliveryConfig.on_unreachable``)."""
    resident = (await session.exec(select(Resident).where(Resident.openid == openid))).first()
    if resident is not None and resident.subscribed:
        resident.subscribed = False
        resident.unsubscribed_at = now
        session.add(resident)


# ---------------------------------------------------------------------------- the dispatcher
async def dispatch_due(
    *,
    sessions: Sessions,
    api: Any,
    now: datetime,
    concurrency: int,
    batch: int = 100,
    config: DeliveryConfig | None = None,
) -> DispatchStats:
    """Send every due row once (one claimed batch), at most ``concurrency`` at a time. The batch's residents are
    read with the claim, and the outcomes are committed in groups (``_GroupCommit``)."""
    config = config or DeliveryConfig()
    stats = DispatchStats()
    async with transaction(sessions) as session:
        rows = await claim_due(session, now=now, batch=batch, lease=config.lease)
        residents = await _load_residents(session, {r.openid for r in rows if r.openid and not r.phone})
    stats.claimed = len(rows)
    if not rows:
        return stats
    gate = asyncio.Semaphore(max(1, concurrency))
    # one person's messages go out one after another in the order they were queued ("已办结" before the
    # survey it starts); different people's messages go out side by side
    by_recipient: dict[str, list[Outbox]] = {}
    for row in sorted(rows, key=lambda r: r.id or 0):
        by_recipient.setdefault(row.openid or f"sms:{row.phone}", []).append(row)

    writes = _GroupCommit(sessions)
    unstarted: list[Outbox] = []

    async def in_order(queue: list[Outbox]) -> None:
        for i, row in enumerate(queue):
            async with gate:
                if config.stopping.is_set():
                    unstarted.extend(queue[i:])
                    return
                await _send_one(
                    row,
                    sessions=sessions,
                    api=api,
                    now=now,
                    config=config,
                    stats=stats,
                    resident=residents.get(row.openid),
                    writes=writes,
                )

    try:
        await asyncio.gather(*(in_order(q) for q in by_recipient.values()))
    finally:
        await writes.close()
    # the batch's rows a stop left unsent: due again at once for the next process, not after the lease (fenced)
    if unstarted:
        async with transaction(sessions) as session:
            for row in unstarted:
                await _finish(
                    session, row, status=OutboxStatus.PENDING, next_attempt_at=now, attempts=row.attempts - 1
                )
    return stats


async def dispatch_all(
    *,
    sessions: Sessions,
    api: Any,
    clock: Callable[[], datetime],
    concurrency: int,
    batch: int = 100,
    config: DeliveryConfig | None = None,
    max_rounds: int = 1000,
) -> DispatchStats:
    """Dispatch batches until nothing is due (the scheduler's job; also ``dispatch_now``)."""
    total = DispatchStats()
    for _ in range(max_rounds):
        stats = await dispatch_due(
            sessions=sessions, api=api, now=clock(), concurrency=concurrency, batch=batch, config=config
        )
        total.add(stats)
        if stats.claimed < batch or (config is not None and config.stopping.is_set()):
            break
    return total


# ---------------------------------------------------------------------------- staff's retry button
class NotRetryable(Exception):
    """Only failed or unreachable messages can be retried by hand."""


async def retry(session: AsyncSession, *, outbox_id: int, now: datetime) -> Outbox:
    """Staff pressed "retry": the message is due again now with a fresh attempt budget."""
    row = await session.get(Outbox, outbox_id, with_for_update=True)
    if row is None:
        raise LookupError(outbox_id)
    if row.status not in (OutboxStatus.FAILED, OutboxStatus.UNREACHABLE):
        raise NotRetryable(row.status)
    row.status = OutboxStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = now
    session.add(row)
    return row
