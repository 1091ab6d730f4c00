"""The NLU protocol: what the dialogue engine asks and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

INTENTS: tuple[str, ...] = (
    "micro_wish",
    "micro_project",
    "query_progress",
    "cancel_request",
    "rate_service",
    "greet",
    "ask_help",
    "offer_help",
    "affirm",
    "deny",
    "out_of_scope",
)
ENTITIES: tuple[str, ...] = ("town", "item", "quantity", "phone", "case_no", "beneficiary")
# Rasa's FallbackClassifier answers this intent when the top confidence is below its threshold;
# `Parse.ranking` still holds the real candidates (for a clarifying question with numbered choices).
FALLBACK_INTENT = "nlu_fallback"
CASE_INTENTS: frozenset[str] = frozenset({"micro_wish", "micro_project"})


class NLUUnavailable(Exception):
    """The NLU service did not answer in time, refused the connection or failed (5xx / bad payload)."""


@dataclass(frozen=True)
class Entity:
    entity: str
    value: str  # normalised: town full name, phone digits, quantity as an int string, case_no upper-cased
    text: str  # as written by the resident
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Parse:
    text: str
    intent: str
    confidence: float
    entities: tuple[Entity, ...]
    source: str  # "rasa" | "keyword"
    ranking: tuple[tuple[str, float], ...] = ()

    def first(self, entity: str) -> str | None:
        """The value of the first entity of this type, or None."""
        return next((e.value for e in self.entities if e.entity == entity), None)

    def all(self, entity: str) -> list[str]:
        """Every value of this entity type, in order."""
        return [e.value for e in self.entities if e.entity == entity]

    @property
    def is_fallback(self) -> bool:
        return self.intent == FALLBACK_INTENT


@runtime_checkable
class NLU(Protocol):
    async def parse(self, text: str) -> Parse: ...

    async def ready(self) -> bool: ...
