"""The offer cascade: offering one wish to ranked candidates until one accepts, as a pure state machine.

Time is always passed in (``now``), nothing sleeps, nothing is sent: every event returns *actions* for the
database layer to persist and turn into notifications, in the same transaction as the saved state
(``to_dict()`` / ``Cascade.from_dict()``).

- mode ``"single"``: one candidate at a time; a decline or a timeout moves to the next.
- mode ``"top_k"``: ``k`` candidates at once; the first to accept wins, the others' offers are withdrawn; a decline
  or a timeout frees a slot for the next candidate, so up to ``k`` offers stay out.
- When no offer is out and no candidate is left: ``Exhausted`` — the case goes back to staff with a flag.

Concurrency: two accepts for the same wish must be applied one after the other on the same stored state (lock
the case row, e.g. ``SELECT … FOR UPDATE`` on PostgreSQL or a ``BEGIN IMMEDIATE`` on SQLite); the second accept
then gets ``Reply(ok=False, code="already_matched")`` and exactly one ``Matched`` action exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Mode = Literal["single", "top_k"]
OfferStatus = Literal["pending", "accepted", "declined", "timed_out", "withdrawn"]
CascadeStatus = Literal["new", "offering", "matched", "exhausted", "cancelled"]


# --- actions for the persistence layer -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferSent:
    """Notify ``key`` of the offer; it lapses at ``deadline``."""

    key: str
    deadline: datetime


@dataclass(frozen=True, slots=True)
class OfferWithdrawn:
    """An outstanding offer ended without an answer from ``key``.

    ``reason``: ``"timeout"`` (counts against reliability), ``"matched_elsewhere"`` (someone else accepted first)
    or ``"cancelled"`` (staff stopped the cascade).
    """

    key: str
    reason: Literal["timeout", "matched_elsewhere", "cancelled"]


@dataclass(frozen=True, slots=True)
class Matched:
    """``key`` accepted and won the wish."""

    key: str


@dataclass(frozen=True, slots=True)
class Exhausted:
    """No candidate is left: hand the case back to staff with a flag."""

    declined: int = 0
    timed_out: int = 0


Action = OfferSent | OfferWithdrawn | Matched | Exhausted

#: Chinese texts for the answers a volunteer may get back (reply in chat or on the signed-link page).
REPLY_TEXTS: dict[str, str] = {
    "matched": "感谢认领！这个心愿由您来帮助完成，详细信息已发送给您。",
    "declined": "已收到，感谢您的回复，我们会联系其他爱心人士。",
    "already_matched": "这个心愿已由其他爱心人士认领，感谢您的热心，下次再邀请您。",
    "offer_expired": "这次邀请已超过回复时限，心愿已转给其他爱心人士，感谢关注。",
    "already_answered": "您已经回复过这次邀请了。",
    "not_offered": "没有找到发给您的这条邀请。",
    "closed": "这个心愿的邀请已经结束。",
}


@dataclass(frozen=True, slots=True)
class Reply:
    """The result of an accept or decline: ``ok``, a stable ``code`` (see REPLY_TEXTS), and the actions."""

    ok: bool
    code: str
    actions: tuple[Action, ...] = ()

    @property
    def message(self) -> str:
        return REPLY_TEXTS[self.code]


@dataclass(slots=True)
class Offer:
    key: str
    sent_at: datetime
    deadline: datetime
    status: OfferStatus = "pending"
    answered_at: datetime | None = None


class CascadeError(ValueError):
    """A misuse of the cascade by the caller (not a volunteer's late or double answer)."""


@dataclass(slots=True)
class Cascade:
    """The cascade of one wish over ``candidates`` (resource keys, best first)."""

    candidates: list[str]
    mode: Mode = "single"
    k: int = 1
    deadline: timedelta = timedelta(hours=24)
    status: CascadeStatus = "new"
    offers: dict[str, Offer] = field(default_factory=dict)
    winner: str | None = None
    _next: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("single", "top_k"):
            raise CascadeError(f"unknown mode {self.mode!r}")
        if self.mode == "single":
            self.k = 1
        if self.k < 1:
            raise CascadeError("k must be at least 1")
        if self.deadline <= timedelta(0):
            raise CascadeError("the offer deadline must be positive")
        self.candidates = list(dict.fromkeys(self.candidates))

    # -- queries --
    @property
    def pending(self) -> list[str]:
        return [o.key for o in self.offers.values() if o.status == "pending"]

    @property
    def remaining(self) -> list[str]:
        """Candidates not offered yet."""
        return self.candidates[self._next :]

    @property
    def next_deadline(self) -> datetime | None:
        """The earliest deadline among outstanding offers (when the timeout sweep should next look)."""
        deadlines = [o.deadline for o in self.offers.values() if o.status == "pending"]
        return min(deadlines) if deadlines else None

    @property
    def closed(self) -> bool:
        return self.status in ("matched", "exhausted", "cancelled")

    # -- events --
    def start(self, now: datetime) -> list[Action]:
        """Send the first offer(s)."""
        if self.status != "new":
            raise CascadeError(f"cascade already started ({self.status})")
        self.status = "offering"
        return self._refill(now)

    def accept(self, key: str, now: datetime) -> Reply:
        """``key`` accepts. Wins if its offer is still open; a late or second accept is refused."""
        expired = self.tick(now)
        offer = self.offers.get(key)
        if offer is None:
            return Reply(False, "not_offered", tuple(expired))
        if offer.status == "pending" and self.status == "offering":
            offer.status, offer.answered_at = "accepted", now
            self.status, self.winner = "matched", key
            actions: list[Action] = [*expired, Matched(key)]
            for other in self.offers.values():
                if other.status == "pending":
                    other.status = "withdrawn"
                    actions.append(OfferWithdrawn(other.key, "matched_elsewhere"))
            return Reply(True, "matched", tuple(actions))
        return Reply(False, self._refusal(offer), tuple(expired))

    def decline(self, key: str, now: datetime) -> Reply:
        """``key`` declines; the next candidate is offered (or the cascade is exhausted)."""
        expired = self.tick(now)
        offer = self.offers.get(key)
        if offer is None:
            return Reply(False, "not_offered", tuple(expired))
        if offer.status != "pending" or self.status != "offering":
            return Reply(False, self._refusal(offer), tuple(expired))
        offer.status, offer.answered_at = "declined", now
        return Reply(True, "declined", (*expired, *self._refill(now)))

    def tick(self, now: datetime) -> list[Action]:
        """Time passes: offers past their deadline time out and the next candidates are offered."""
        if self.status != "offering":
            return []
        actions: list[Action] = []
        for o in self.offers.values():
            if o.status == "pending" and o.deadline <= now:
                o.status = "timed_out"
                actions.append(OfferWithdrawn(o.key, "timeout"))
        if actions:
            # The next offers really go out now, so they get a full deadline from now.
            actions.extend(self._refill(now))
        return actions

    def cancel(self, now: datetime) -> list[Action]:
        """Staff stop the cascade (the case was cancelled or will be handled otherwise)."""
        if self.closed:
            return []
        actions: list[Action] = []
        for o in self.offers.values():
            if o.status == "pending":
                o.status = "withdrawn"
                actions.append(OfferWithdrawn(o.key, "cancelled"))
        self.status = "cancelled"
        return actions

    def add_candidates(self, keys: Iterable[str], now: datetime) -> list[Action]:
        """Append candidates (e.g. staff re-ranked after exhaustion); reopens an exhausted cascade."""
        self.candidates = list(dict.fromkeys([*self.candidates, *keys]))
        if self.status == "exhausted":
            self.status = "offering"
        if self.status != "offering":
            return []
        return self._refill(now)

    # -- internals --
    def _refusal(self, offer: Offer) -> str:
        if self.status == "matched":
            return "already_answered" if offer.key == self.winner else "already_matched"
        if offer.status == "timed_out":
            return "offer_expired"
        if offer.status in ("declined", "accepted"):
            return "already_answered"
        return "closed"

    def _refill(self, now: datetime) -> list[Action]:
        actions: list[Action] = []
        while len(self.pending) < self.k and self._next < len(self.candidates):
            key = self.candidates[self._next]
            self._next += 1
            if key in self.offers:
                continue
            offer = Offer(key=key, sent_at=now, deadline=now + self.deadline)
            self.offers[key] = offer
            actions.append(OfferSent(key, offer.deadline))
        if not self.pending:
            self.status = "exhausted"
            statuses = [o.status for o in self.offers.values()]
            actions.append(
                Exhausted(declined=statuses.count("declined"), timed_out=statuses.count("timed_out"))
            )
        return actions

    # -- persistence --
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot (datetimes as ISO strings)."""
        return {
            "candidates": list(self.candidates),
            "mode": self.mode,
            "k": self.k,
            "deadline_seconds": self.deadline.total_seconds(),
            "status": self.status,
            "winner": self.winner,
            "next": self._next,
            "offers": [
                {
                    "key": o.key,
                    "sent_at": o.sent_at.isoformat(),
                    "deadline": o.deadline.isoformat(),
                    "status": o.status,
                    "answered_at": o.answered_at.isoformat() if o.answered_at else None,
                }
                for o in self.offers.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cascade:
        cascade = cls(
            candidates=list(data["candidates"]),
            mode=data["mode"],
            k=int(data["k"]),
            deadline=timedelta(seconds=float(data["deadline_seconds"])),
        )
        cascade.status = data["status"]
        cascade.winner = data["winner"]
        cascade._next = int(data["next"])
        for o in data["offers"]:
            cascade.offers[o["key"]] = Offer(
                key=o["key"],
                sent_at=datetime.fromisoformat(o["sent_at"]),
                deadline=datetime.fromisoformat(o["deadline"]),
                status=o["status"],
                answered_at=datetime.fromisoformat(o["answered_at"]) if o["answered_at"] else None,
            )
        return cascade


def start_cascade(
    candidates: Sequence[str],
    *,
    now: datetime,
    mode: Mode = "single",
    k: int = 3,
    deadline: timedelta = timedelta(hours=24),
) -> tuple[Cascade, list[Action]]:
    """Create a cascade and send its first offer(s)."""
    cascade = Cascade(
        candidates=list(candidates), mode=mode, k=k if mode == "top_k" else 1, deadline=deadline
    )
    return cascade, cascade.start(now)
