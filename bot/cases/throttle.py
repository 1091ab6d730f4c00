"""Attempt limits for guessable secrets (passwords, binding codes), kept in the database so they hold across
workers, restarts and cookies.

An attempt is written *before* the secret is checked and counted afterwards, so concurrent guesses cannot all
slip under the limit; a success clears the key's failures. Keys are hashed: the table holds no openid, name or
address in clear."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import SignInAttempt

__all__ = [
    "CASE_BIND",
    "PASSWORD_ADDRESS",
    "PASSWORD_PAIR",
    "STAFF_BIND",
    "STAFF_BIND_ADDRESS",
    "Limit",
    "attempt",
    "failures",
    "key_of",
    "prune",
    "succeeded",
]


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str
    attempts: int
    window: timedelta


#: a password tried for one account from one address (an outsider elsewhere cannot lock the owner out)
PASSWORD_PAIR = Limit("password", 5, timedelta(minutes=15))
#: every failed password from one address, whatever the account (password spraying)
PASSWORD_ADDRESS = Limit("password_ip", 30, timedelta(minutes=15))
#: a staff member's WeChat binding code, per openid and per address
STAFF_BIND = Limit("staff_bind", 5, timedelta(minutes=15))
STAFF_BIND_ADDRESS = Limit("staff_bind_ip", 20, timedelta(minutes=15))
#: a hotline case's binding code sent in WeChat, per resident
CASE_BIND = Limit("case_bind", 5, timedelta(hours=1))


def key_of(*parts: object) -> str:
    """A stable, non-reversible key for the attempt table (sha256 of the parts)."""
    raw = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:40]


async def failures(session: AsyncSession, *, limit: Limit, key: str, now: datetime) -> int:
    q = select(func.count()).select_from(SignInAttempt)
    q = q.where(
        SignInAttempt.scope == limit.scope,
        SignInAttempt.key == key,
        col(SignInAttempt.failed),
        col(SignInAttempt.at) > now - limit.window,
    )
    return int((await session.exec(q)).one())


async def attempt(
    session: AsyncSession, *, limit: Limit, key: str, now: datetime
) -> tuple[SignInAttempt, bool]:
    """Record an attempt (failed until `succeeded` says otherwise), then say whether it is one too many,
    counting itself."""
    row = SignInAttempt(scope=limit.scope, key=key, at=now)
    session.add(row)
    await session.flush()
    return row, await failures(session, limit=limit, key=key, now=now) > limit.attempts


async def succeeded(
    session: AsyncSession, *rows: SignInAttempt, forget: tuple[Limit, str] | None = None
) -> None:
    """The secret was right: these attempts were no failures; ``forget`` clears one key's earlier failures
    (a typo before the right password does not count against the owner later)."""
    for row in rows:
        row.failed = False
        session.add(row)
    if forget is not None:
        limit, key = forget
        await session.exec(
            delete(SignInAttempt).where(
                col(SignInAttempt.scope) == limit.scope, col(SignInAttempt.key) == key
            )
        )
    await session.flush()


async def prune(session: AsyncSession, *, now: datetime, older_than: timedelta = timedelta(days=1)) -> int:
    """Drop attempts older than any window (a housekeeping sweep may call this)."""
    result = await session.exec(delete(SignInAttempt).where(col(SignInAttempt.at) < now - older_than))
    return int(result.rowcount or 0)
