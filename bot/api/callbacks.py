"""Status-change callbacks to API subscribers: collected from the timeline, signed, retried, parked as dead.

No hook in the lifecycle: ``collect`` reads the timeline's status changes after each subscription's cursor (the
timeline is the source of truth, written in the same transaction as the change), so a change is never missed and a
restart doubles nothing (one row per subscription and event, unique). ``dispatch`` POSTs due rows with

    X-DGJ-Event-Id: <event id>          X-DGJ-Timestamp: <unix seconds>
    X-DGJ-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

A 2xx answer is success; anything else (or no answer in 10 s) is retried after 30 s, 2 min, 10 min, 1 h, 6 h; then
the row is ``dead`` and shown to staff, who can replay it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.api.service import iso
from bot.cases.lifecycle import STATE_LABEL
from bot.db import Sessions, transaction
from bot.models import ApiCallback, ApiClient, ApiSubscription, Case, CaseEvent

log = logging.getLogger(__name__)
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
LEASE = timedelta(minutes=2)
BATCH = 200


def sign(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"sha256={mac}"


async def subscribe(session: AsyncSession, *, client_id: int, url: str, secret: str) -> ApiSubscription:
    """A subscription starts at the present: only changes after it are sent."""
    last = (await session.exec(select(CaseEvent.id).order_by(col(CaseEvent.id).desc()).limit(1))).first()
    sub = ApiSubscription(client_id=client_id, url=url, secret=secret, last_event_id=last or 0)
    session.add(sub)
    await session.flush()
    return sub


async def collect(session: AsyncSession, *, now: datetime) -> int:
    """Turn new status changes into callback rows for every active subscription; returns rows written."""
    subs = (
        await session.exec(
            select(ApiSubscription, ApiClient)
            .join(ApiClient, col(ApiClient.id) == col(ApiSubscription.client_id))
            .where(col(ApiSubscription.active), col(ApiClient.active))
        )
    ).all()
    written = 0
    for sub, client in subs:
        if "webhooks" not in client.scopes:
            continue
        query = (
            select(CaseEvent, Case)
            .join(Case, col(Case.id) == col(CaseEvent.case_id))
            .where(col(CaseEvent.id) > sub.last_event_id, CaseEvent.kind == "transition")
            .order_by(col(CaseEvent.id))
            .limit(BATCH)
        )
        rows = (await session.exec(query)).all()
        for event, case in rows:
            assert event.id is not None
            sub.last_event_id = max(sub.last_event_id, event.id)
            if client.town is not None and case.town != client.town:
                continue
            body = json.dumps(
                {
                    "event": "case.status_changed",
                    "event_id": event.id,
                    "case_no": case.case_no,
                    "from_status": event.from_status,
                    "to_status": event.to_status,
                    "status_label": STATE_LABEL.get(event.to_status or "", event.to_status),
                    "at": iso(event.at),
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
            assert sub.id is not None
            session.add(
                ApiCallback(
                    subscription_id=sub.id, event_id=event.id, case_id=case.id, body=body, next_attempt_at=now
                )
            )
            written += 1
    await session.flush()
    return written


@dataclass
class DispatchStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0


async def _claim(sessions: Sessions, now: datetime) -> list[tuple[ApiCallback, ApiSubscription]]:
    async with transaction(sessions) as session:
        due = (
            await session.exec(
                select(ApiCallback.id)
                .where(
                    # "sending" whose lease ran out: the sender died
                    col(ApiCallback.status).in_(("pending", "sending")),
                    col(ApiCallback.next_attempt_at) <= now,
                )
                .order_by(col(ApiCallback.next_attempt_at))
                .limit(50)
            )
        ).all()
        claimed: list[tuple[ApiCallback, ApiSubscription]] = []
        for cid in due:
            result = await session.exec(
                update(ApiCallback)
                .where(
                    col(ApiCallback.id) == cid,
                    col(ApiCallback.status).in_(("pending", "sending")),
                    col(ApiCallback.next_attempt_at) <= now,
                )
                .values(status="sending", next_attempt_at=now + LEASE)
            )
            if result.rowcount != 1:
                continue
            row = await session.get(ApiCallback, cid)
            assert row is not None
            sub = await session.get(ApiSubscription, row.subscription_id)
            if sub is not None:
                claimed.append((row, sub))
        return claimed


async def _send(
    http: aiohttp.ClientSession, sub: ApiSubscription, row: ApiCallback, now: datetime
) -> str | None:
    """None on success, else what went wrong."""
    ts = int(now.timestamp())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-DGJ-Event-Id": str(row.event_id),
        "X-DGJ-Timestamp": str(ts),
        "X-DGJ-Signature": sign(sub.secret, ts, row.body),
        "User-Agent": "daguanjia-callbacks/1",
    }
    try:
        async with http.post(
            sub.url, data=row.body.encode(), headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            if 200 <= resp.status < 300:
                return None
            return f"HTTP {resp.status}"
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"[:200]


async def dispatch(*, sessions: Sessions, http: aiohttp.ClientSession, now: datetime) -> DispatchStats:
    stats = DispatchStats()
    for row, sub in await _claim(sessions, now):
        problem = await _send(http, sub, row, now)
        async with transaction(sessions) as session:
            fresh = await session.get(ApiCallback, row.id)
            if fresh is None:
                continue
            fresh.attempts += 1
            if problem is None:
                fresh.status, fresh.sent_at, fresh.last_error = "sent", now, None
                stats.sent += 1
            elif fresh.attempts >= MAX_ATTEMPTS:
                fresh.status, fresh.last_error = "dead", problem
                stats.dead += 1
                log.warning(
                    "API callback %s parked as dead after %d tries: %s", fresh.id, fresh.attempts, problem
                )
            else:
                fresh.status, fresh.last_error = "pending", problem
                fresh.next_attempt_at = now + BACKOFF[fresh.attempts - 1]
                stats.retried += 1
    return stats


async def callbacks_job(
    *, sessions: Sessions, http: aiohttp.ClientSession, clock: Callable[[], datetime]
) -> None:
    """The scheduler's job: collect, then send what is due. Logs and never raises."""
    try:
        async with transaction(sessions) as session:
            await collect(session, now=clock())
        stats = await dispatch(sessions=sessions, http=http, now=clock())
        if stats.sent or stats.retried or stats.dead:
            log.info("API callbacks: %d sent, %d retry later, %d dead", stats.sent, stats.retried, stats.dead)
    except Exception:
        log.exception("the API callbacks job failed")


async def dead_letters(session: AsyncSession, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = (
        await session.exec(
            select(ApiCallback, ApiSubscription, ApiClient)
            .join(ApiSubscription, col(ApiSubscription.id) == col(ApiCallback.subscription_id))
            .join(ApiClient, col(ApiClient.id) == col(ApiSubscription.client_id))
            .where(ApiCallback.status == "dead")
            .order_by(col(ApiCallback.id).desc())
            .limit(limit)
        )
    ).all()
    return [
        {
            "id": cb.id,
            "client": client.name,
            "url": sub.url,
            "attempts": cb.attempts,
            "error": cb.last_error,
            "created_at": cb.created_at,
            "body": cb.body,
        }
        for cb, sub, client in rows
    ]


async def replay(session: AsyncSession, *, callback_id: int, now: datetime) -> bool:
    row = await session.get(ApiCallback, callback_id)
    if row is None or row.status != "dead":
        return False
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now
    return True
