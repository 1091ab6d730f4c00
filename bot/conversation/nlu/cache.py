"""A bounded parse cache in front of Rasa, for the short texts residents send again and again (menu digits,
查询进度, 确认, greetings), keyed by the fingerprint of the model that answered.

The model's fingerprint is Rasa's ``/status`` ``fingerprint``/``model_id``/``model_file``; it is checked again at
most every ``refresh`` seconds (a request at most that often, never per message), and a new one empties the cache,
so a newly trained model is asked afresh. Until a fingerprint is known nothing is cached. Only texts of at most
``max_chars`` characters are cached: long texts are nearly never repeated, and the cache stays small. Failures are
not cached (the fallback decides what to do with them)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from bot.conversation.nlu.types import NLUUnavailable, Parse

log = logging.getLogger(__name__)


class _Primary(Protocol):
    async def parse(self, text: str) -> Parse: ...

    async def status(self) -> dict[str, Any]: ...

    async def ready(self) -> bool: ...


def fingerprint_of(status: Any) -> str | None:
    """The model's identity in Rasa's ``/status`` answer (None when no model is loaded, and when several Rasa
    replicas serve different models: then a cached parse could be another model's, so nothing is cached)."""
    if not isinstance(status, dict) or status.get("mixed_models"):
        return None
    for name in ("fingerprint", "model_id", "model_file"):
        value = status.get(name)
        if value:
            return str(value) if not isinstance(value, dict) else repr(sorted(value.items()))
    return None


class CachedNLU:
    def __init__(
        self,
        primary: _Primary,
        *,
        max_entries: int = 4096,
        max_chars: int = 12,
        refresh: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.max_entries, self.max_chars, self.refresh = max_entries, max_chars, refresh
        self._clock = clock
        self._entries: OrderedDict[str, Parse] = OrderedDict()
        self.fingerprint: str | None = None
        self._checked_at: float | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def _check_model(self) -> None:
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self.refresh:
            return
        self._checked_at = now
        try:
            fingerprint = fingerprint_of(await self.primary.status())
        except NLUUnavailable:
            fingerprint = None
        self._set_fingerprint(fingerprint)

    def _set_fingerprint(self, fingerprint: str | None) -> None:
        if fingerprint != self.fingerprint:
            if self._entries:
                log.info("NLU model changed: %d cached parses dropped", len(self._entries))
            self._entries.clear()
            self.fingerprint = fingerprint

    async def parse(self, text: str) -> Parse:
        if self.max_entries <= 0 or len(text) > self.max_chars:
            return await self.primary.parse(text)
        await self._check_model()
        if self.fingerprint is None:
            return await self.primary.parse(text)
        cached = self._entries.get(text)
        if cached is not None:
            self._entries.move_to_end(text)
            self.hits += 1
            return cached
        fingerprint = self.fingerprint
        result = await self.primary.parse(text)
        self.misses += 1
        if fingerprint == self.fingerprint:  # the model did not change while we waited
            self._entries[text] = result
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return result

    async def ready(self) -> bool:
        try:
            status = await self.primary.status()
        except NLUUnavailable:
            return False
        self._checked_at = self._clock()
        self._set_fingerprint(fingerprint_of(status))
        return bool(isinstance(status, dict) and status.get("model_file"))


__all__ = ["CachedNLU", "fingerprint_of"]
