"""The Rasa HTTP client (POST /model/parse, GET /status) behind the NLU protocol."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from bot.conversation.nlu.postprocess import finalize_entities
from bot.conversation.nlu.types import Entity, NLUUnavailable, Parse

log = logging.getLogger(__name__)


class RasaNLU:
    """Speaks Rasa's documented HTTP API with a timeout; every failure becomes `NLUUnavailable`."""

    def __init__(self, *, base_url: str, token: str, session: aiohttp.ClientSession, timeout: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        params = {"token": self._token} if self._token else {}
        limit = self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._session.request(method, url, params=params, timeout=limit, **kwargs) as resp:
                if resp.status != 200:
                    body = (await resp.text())[:200]
                    raise NLUUnavailable(f"Rasa {path} answered {resp.status}: {body}")
                return await resp.json(content_type=None)
        except TimeoutError as exc:
            raise NLUUnavailable(f"Rasa {path} timed out") from exc
        except aiohttp.ClientError as exc:
            raise NLUUnavailable(f"Rasa {path} unreachable: {exc.__class__.__name__}") from exc
        except ValueError as exc:  # invalid JSON
            raise NLUUnavailable(f"Rasa {path} sent an invalid body") from exc

    async def parse_raw(self, text: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Rasa's own answer, unmodified (used by the evaluation to score the model alone). ``timeout`` replaces
        the client's own for this call (the replicas' shared budget, bot.conversation.nlu.replicas)."""
        payload = await self._request("POST", "/model/parse", timeout=timeout, json={"text": text})
        if not isinstance(payload, dict) or not isinstance(payload.get("intent"), dict):
            raise NLUUnavailable("Rasa /model/parse sent no intent")
        return payload

    async def parse(self, text: str, *, timeout: float | None = None) -> Parse:
        payload = await self.parse_raw(text, timeout=timeout)
        try:
            return to_parse(text, payload)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # JSON, but not Rasa's shape
            raise NLUUnavailable(
                f"Rasa /model/parse sent a malformed answer: {exc.__class__.__name__}"
            ) from exc

    async def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Rasa's ``GET /status`` (the loaded model's file and fingerprint)."""
        status = await self._request("GET", "/status", timeout=timeout)
        if not isinstance(status, dict):
            raise NLUUnavailable("Rasa /status sent no object")
        return status

    async def ready(self) -> bool:
        try:
            status = await self.status()
        except NLUUnavailable:
            return False
        return bool(status.get("model_file"))


def to_parse(text: str, payload: dict[str, Any]) -> Parse:
    """Turn Rasa's /model/parse JSON into a `Parse`, with normalised entities."""
    intent = payload.get("intent") or {}
    raw = tuple(
        Entity(
            entity=str(e.get("entity", "")),
            value=str(e.get("value", "")),
            text=text[e["start"] : e["end"]] if isinstance(e.get("start"), int) else str(e.get("value", "")),
            start=e.get("start"),
            end=e.get("end"),
        )
        for e in payload.get("entities") or ()
        if isinstance(e, dict)
    )
    ranking = tuple(
        (str(r.get("name")), float(r.get("confidence") or 0.0))
        for r in payload.get("intent_ranking") or ()
        if isinstance(r, dict)
    )
    return Parse(
        text=text,
        intent=str(intent.get("name") or "nlu_fallback"),
        confidence=float(intent.get("confidence") or 0.0),
        entities=finalize_entities(text, raw),
        source="rasa",
        ranking=ranking,
    )
