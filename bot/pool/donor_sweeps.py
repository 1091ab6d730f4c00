"""The donors' side's sweeps, run every minute by the scheduler (``bot.ops.scheduler.sweep_job``): reservations on
the wish wall that staff did not confirm in time return the wish to the wall; confirmed wall claims whose case staff
completed elsewhere get their 寄语 delivered; the resident's thanks after fulfilment reach the donor; leads past their
deadline remind staff. Each runs in its own
transaction, logs and survives its own failure."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions
from bot.deadlines.sweeps import guarded_sweep
from bot.pool.leads import remind_leads
from bot.pool.wall import expire_reservations, settle_completed
from bot.pool.walldonor import relay_thanks


async def donor_sweeps(*, sessions: Sessions, now: datetime) -> dict[str, int]:
    async def expire(session: AsyncSession) -> int:
        return await expire_reservations(session, now=now)

    async def settle(session: AsyncSession) -> int:
        return await settle_completed(session, now=now)

    async def thanks(session: AsyncSession) -> int:
        return await relay_thanks(session, now=now)

    async def remind(session: AsyncSession) -> int:
        return await remind_leads(session, now=now)

    return {
        "wall_expired": await guarded_sweep("wall reservation sweep", sessions, expire),
        "wall_settled": await guarded_sweep("wall settle sweep", sessions, settle),
        "wall_thanks": await guarded_sweep("wall thanks sweep", sessions, thanks),
        "lead_reminders": await guarded_sweep("lead reminder sweep", sessions, remind),
    }
