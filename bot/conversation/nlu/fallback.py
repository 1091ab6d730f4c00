"""Rasa first, keyword rules when Rasa is down or slow (with a simple circuit breaker)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.conversation.nlu.types import NLU, NLUUnavailable, Parse

log = logging.getLogger(__name__)


class FallbackNLU:
    """Wraps a primary NLU (Rasa) and the keyword one.

    On a failure of the primary it answers with the keyword interpreter, sets `degraded` and stops asking the
    primary for `retry_after` seconds; the first parse after that probes the primary again and, when it answers,
    clears `degraded`.
    """

    def __init__(
        self,
        *,
        primary: NLU,
        fallback: NLU,
        retry_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.primary = primary
        self.fallback = fallback
        self.retry_after = retry_after
        self._clock = clock
        self._open_until: float | None = None
        self.degraded = False
        self.last_error: str | None = None

    def _trip(self, exc: Exception) -> None:
        if not self.degraded:
            log.warning("NLU degraded to keyword rules: %s", exc)
        self.degraded = True
        self.last_error = str(exc) or exc.__class__.__name__
        self._open_until = self._clock() + self.retry_after

    def _recover(self) -> None:
        if self.degraded:
            log.info("NLU primary answers again; leaving degraded mode")
        self.degraded = False
        self._open_until = None

    async def parse(self, text: str) -> Parse:
        if self._open_until is None or self._clock() >= self._open_until:
            try:
                result = await self.primary.parse(text)
            except NLUUnavailable as exc:
                self._trip(exc)
            else:
                self._recover()
                return result
        return await self.fallback.parse(text)

    async def ready(self) -> bool:
        """True when the primary answers (the keyword interpreter is always there, so parse never fails)."""
        ok = await self.primary.ready()
        if ok:
            self._recover()
        else:
            self._trip(NLUUnavailable("primary NLU not ready"))
        return ok
