"""Natural-language understanding: the protocol, the Rasa client, the keyword rules and the fallback between them."""

from bot.conversation.nlu.fallback import FallbackNLU
from bot.conversation.nlu.keyword import KeywordNLU
from bot.conversation.nlu.rasa import RasaNLU
from bot.conversation.nlu.types import (
    CASE_INTENTS,
    ENTITIES,
    FALLBACK_INTENT,
    INTENTS,
    NLU,
    Entity,
    NLUUnavailable,
    Parse,
)

__all__ = [
    "CASE_INTENTS",
    "ENTITIES",
    "FALLBACK_INTENT",
    "INTENTS",
    "NLU",
    "Entity",
    "FallbackNLU",
    "KeywordNLU",
    "NLUUnavailable",
    "Parse",
    "RasaNLU",
]
