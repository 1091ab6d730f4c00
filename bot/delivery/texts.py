"""Text messages outside the dispatcher's loop: the providers' delivery receipts (``record_receipt``) and texts
that are useful only at once, such as a one-time code (``send_sms_now``). Both keep the outbox's rules: one
per-number hourly limit for every text, nothing undeliverable dropped without the case being told."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions, transaction
from bot.delivery.dispatcher import (
    SMS_CHANNEL,
    SMS_WINDOW,
    DeliveryConfig,
    UnreachableHook,
    sent_within,
    tell_case,
)
from bot.models import Outbox
from bot.states import OutboxStatus

log = logging.getLogger(__name__)
#: texts useful only at once (``send_sms_now``): an undelivered one is noted, not parked for a resend or a call
CODE_KIND = "code"  # a one-time code (the web query)
ONE_TIME_KINDS = frozenset({CODE_KIND})


async def record_receipt(
    session: AsyncSession,
    *,
    message_id: str,
    delivered: bool,
    code: str,
    now: datetime,
    on_unreachable: UnreachableHook | None = None,
) -> Outbox | None:
    """A provider's delivery receipt for a text message we sent (by the provider's message id). "Undelivered"
    parks the row as unreachable (staff see it with the retry button) and tells the case (flag, call task), once."""
    row = (await session.exec(select(Outbox).where(col(Outbox.sms_id) == message_id))).first()
    if row is None:
        return None
    row.receipt = (("delivered" if delivered else "undelivered") + (f": {code}" if code else ""))[:64]
    session.add(row)
    if not delivered and row.status == OutboxStatus.SENT and row.kind not in ONE_TIME_KINDS:
        row.status = OutboxStatus.UNREACHABLE
        row.last_error = f"sms receipt: {code or 'undelivered'}"[:500]
        await session.flush()
        await tell_case(session, row, hook=on_unreachable, now=now)
    return row


async def send_sms_now(
    sessions: Sessions,
    *,
    phone: str,
    template: str,
    params: list[str],
    kind: str,
    text: str,
    now: datetime,
    config: DeliveryConfig,
    case_id: int | None = None,
) -> str:
    """A text that is useful only at once (a one-time code): sent now or not at all, but under the same per-number
    limit as every other text (``sms_per_hour``). It is recorded as a sent outbox row (``text`` says what it was,
    never the code), so later texts count it too; one the provider refused is removed again (a late code is useless,
    so there is nothing for staff to resend). Returns the outcome, or ``limited``/``off``."""
    if config.sms is None:
        return "off"
    async with transaction(sessions) as session:
        if len(await sent_within(session, phone=phone, since=now - SMS_WINDOW)) >= max(
            1, config.sms_per_hour
        ):
            return "limited"
        row = Outbox(
            openid="",
            phone=phone,
            kind=kind,
            text=text,
            case_id=case_id,
            status=OutboxStatus.SENT,  # holds its place in the hour's budget while it is sent
            channel=SMS_CHANNEL,
            attempts=1,
            next_attempt_at=now,
            created_at=now,
            sent_at=now,
        )
        session.add(row)
    try:
        result = await config.sms.send(phone=phone, template=template, params=params, ref=f"outbox-{row.id}")
        outcome, code, message_id = result.outcome, result.code, result.message_id
    except Exception as exc:  # a bug must not break the page that asked
        log.exception("outbox %s: unexpected error while sending an SMS now", row.id)
        outcome, code, message_id = "failed", f"internal: {type(exc).__name__}", None
    async with transaction(sessions) as session:
        if outcome == "sent":
            await session.exec(sa.update(Outbox).where(col(Outbox.id) == row.id).values(sms_id=message_id))
        else:  # a late code is useless and nobody can send it by hand: the place in the budget is given back
            await session.exec(sa.delete(Outbox).where(col(Outbox.id) == row.id))
            log.warning("outbox %s: a text for now was not sent: %s", row.id, code)
    return str(outcome)
