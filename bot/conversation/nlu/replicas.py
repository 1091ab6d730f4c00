"""Several Rasa replicas behind one NLU: the bot's own load balancer for Rasa (``RASA_URL=http://a:5005,http://b:5005``).

- Parses are spread round robin over the replicas that are not resting.
- One parse has one budget (``RASA_TIMEOUT``) for all its attempts. A replica that fails (refused, an error, a
  malformed answer) or takes longer than its share of what is left of the budget gives the parse to the next one.
  Its share is what is left less a reserve of ``reserve`` seconds (0.5) for each replica not yet tried, the reserve
  being at most an equal split: with a budget of 2 s and two replicas the first may take 1.5 s (a replica slow under
  load still answers), the second gets the rest (enough for a parse when the first one hangs); a refusal costs
  nothing of it.
- A replica that failed rests for ``RASA_REPLICA_RETRY`` seconds: parses go to the others first, then to the
  resting ones (soonest back first) only when the others failed too. After its rest it takes its turn again.
- ``GET /status`` asks every replica at once. All replicas must serve the same model: while they disagree (a
  rolling update, a replica started with another model) the answer carries ``mixed_models`` and the parse cache
  keeps nothing (``bot.conversation.nlu.cache.fingerprint_of``), since a cached parse could be either model's;
  the parses themselves go on, each replica answering with its own model. ``/readyz`` lists every replica.

One URL needs none of this: the app then uses :class:`~bot.conversation.nlu.rasa.RasaNLU` alone, as before.
An external load balancer in front of the replicas under one URL works as well (the bot then sees one Rasa)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
from yarl import URL

from bot.conversation.nlu.cache import fingerprint_of
from bot.conversation.nlu.rasa import RasaNLU
from bot.conversation.nlu.types import NLUUnavailable, Parse

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReplicaClient(Protocol):
    base_url: str

    async def parse(self, text: str, *, timeout: float | None = None) -> Parse: ...

    async def parse_raw(self, text: str, *, timeout: float | None = None) -> dict[str, Any]: ...

    async def status(self, *, timeout: float | None = None) -> dict[str, Any]: ...


@dataclass
class Replica:
    client: ReplicaClient
    resting_until: float = 0.0  # the clock's time before which parses go elsewhere first
    ok: bool | None = None  # None: not heard from yet
    model: str | None = None  # the fingerprint its last /status named
    last_error: str | None = None
    parses: int = 0
    failures: int = 0

    @property
    def label(self) -> str:
        """The URL without any user and password in it (it is shown by /readyz)."""
        try:
            return str(URL(self.client.base_url).with_user(None))
        except ValueError:
            return "(invalid URL)"


class RasaReplicas:
    """Speaks to several Rasa servers as one; every failure of all of them becomes `NLUUnavailable`."""

    def __init__(
        self,
        clients: Sequence[ReplicaClient],
        *,
        timeout: float = 2.0,
        retry_after: float = 5.0,
        reserve: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not clients:
            raise ValueError("at least one Rasa replica")
        self.replicas = [Replica(c) for c in clients]
        self.timeout = timeout
        self.retry_after = retry_after
        self.reserve = reserve
        self._clock = clock
        self._turn = 0
        self.models_agree = True

    @classmethod
    def from_urls(
        cls,
        urls: Sequence[str],
        *,
        token: str,
        session: aiohttp.ClientSession,
        timeout: float = 2.0,
        retry_after: float = 5.0,
    ) -> RasaReplicas:
        clients = [RasaNLU(base_url=u, token=token, session=session, timeout=timeout) for u in urls]
        return cls(clients, timeout=timeout, retry_after=retry_after)

    # ------------------------------------------------------------------------ which replica, in which order
    def order(self) -> list[Replica]:
        """This parse's replicas: the awake ones from the next in turn, then the resting ones, soonest back first."""
        now = self._clock()
        awake = [r for r in self.replicas if r.resting_until <= now]
        resting = sorted((r for r in self.replicas if r.resting_until > now), key=lambda r: r.resting_until)
        if awake:
            start = self._turn % len(awake)
            self._turn += 1
            awake = awake[start:] + awake[:start]
        return awake + resting

    def _failed(self, replica: Replica, error: str) -> None:
        if replica.ok is not False:
            log.warning(
                "Rasa replica %s failed (%s); resting it %.0f s", replica.label, error, self.retry_after
            )
        replica.ok = False
        replica.failures += 1
        replica.last_error = error
        replica.resting_until = self._clock() + self.retry_after

    def _answered(self, replica: Replica) -> None:
        if replica.ok is False:
            log.info("Rasa replica %s answers again", replica.label)
        replica.ok = True
        replica.last_error = None
        replica.resting_until = 0.0

    def share(self, remaining: float, *, untried: int) -> float:
        """How long the next attempt may take: ``remaining`` less a reserve for each of the others not yet tried."""
        reserve = min(self.reserve, remaining / untried)
        return remaining - reserve * (untried - 1)

    async def _spread(self, call: Callable[[ReplicaClient, float], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        order = self.order()
        errors: list[str] = []
        for i, replica in enumerate(order):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            share = self.share(remaining, untried=len(order) - i)
            try:
                async with asyncio.timeout(share):
                    result = await call(replica.client, share)
            except TimeoutError:
                error = f"no answer within {share:.2f} s"
            except NLUUnavailable as exc:
                error = str(exc) or type(exc).__name__
            else:
                replica.parses += 1
                self._answered(replica)
                return result
            self._failed(replica, error)
            errors.append(f"{replica.label}: {error}")
        raise NLUUnavailable("no Rasa replica answered: " + ("; ".join(errors) or "the budget was spent"))

    # ------------------------------------------------------------------------ the NLU protocol
    async def parse(self, text: str) -> Parse:
        return await self._spread(lambda client, share: client.parse(text, timeout=share))

    async def parse_raw(self, text: str) -> dict[str, Any]:
        return await self._spread(lambda client, share: client.parse_raw(text, timeout=share))

    async def _status_of(self, replica: Replica) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(self.timeout):
                status = await replica.client.status(timeout=self.timeout)
        except TimeoutError:
            self._failed(replica, f"/status: no answer within {self.timeout:.2f} s")
            return None
        except NLUUnavailable as exc:
            self._failed(replica, str(exc) or type(exc).__name__)
            return None
        replica.model = fingerprint_of(status)
        if not status.get("model_file") or replica.model is None:
            self._failed(replica, "no model loaded")
            return None
        if replica.ok is False and replica.resting_until > self._clock():
            # it answers /status again, but a parse failed on it: it keeps resting until a parse succeeds or the
            # rest is over (a replica that stalls on parses may still answer /status quickly)
            return status
        self._answered(replica)
        return status

    async def status(self) -> dict[str, Any]:
        """Every replica's ``/status`` at once; the answer of the first that has a model, with ``replicas`` (how
        many answered) and ``mixed_models`` when they name different models."""
        answers = await asyncio.gather(*(self._status_of(r) for r in self.replicas))
        live = [a for a in answers if a is not None]
        if not live:
            errors = "; ".join(f"{r.label}: {r.last_error}" for r in self.replicas)
            raise NLUUnavailable(f"no Rasa replica has a model: {errors}")
        models = {fingerprint_of(a) for a in live}
        agree = len(models) == 1
        if agree != self.models_agree:
            if agree:
                log.info("Rasa replicas serve one model again (%s)", next(iter(models)))
            else:
                log.warning(
                    "Rasa replicas serve different models %s: the parse cache keeps nothing",
                    sorted(map(str, models)),
                )
        self.models_agree = agree
        status = dict(live[0])
        status["replicas"] = len(live)
        if not agree:
            status["mixed_models"] = True
        return status

    async def ready(self) -> bool:
        try:
            status = await self.status()
        except NLUUnavailable:
            return False
        return bool(status.get("model_file"))

    def report(self) -> dict[str, Any]:
        """What ``/readyz`` shows: each replica's state as last seen; ``ok`` only when all answer with one model."""
        now = self._clock()
        replicas = [
            {
                "url": r.label,
                "ok": r.ok is True and r.resting_until <= now,
                "model": r.model,
                "last_error": r.last_error,
                "resting_s": round(r.resting_until - now, 1) if r.resting_until > now else 0,
                "parses": r.parses,
                "failures": r.failures,
            }
            for r in self.replicas
        ]
        ok = self.models_agree and all(bool(r["ok"]) for r in replicas)
        return {"ok": ok, "models_agree": self.models_agree, "replicas": replicas}


def replica_report(nlu: object) -> dict[str, Any] | None:
    """The replicas' report of an NLU stack (fallback → cache → replicas), or None when there is one Rasa."""
    for _ in range(5):
        if isinstance(nlu, RasaReplicas):
            return nlu.report()
        nlu = getattr(nlu, "primary", None)
        if nlu is None:
            return None
    return None


__all__ = ["RasaReplicas", "Replica", "replica_report"]
