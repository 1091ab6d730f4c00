"""One turn of the conversation: the message, what the NLU understood, and the resident's conversation state.

Every router of the dialogue takes a `Turn`; it lives in its own module so that the routers and the dispatch
(`engine`) import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation.nlu.fillers import strip_fillers
from bot.conversation.nlu.types import Parse
from bot.models import Conversation, InboundMessage, Resident
from bot.settings import Settings
from webhooks import Delivery


@dataclass
class Turn:
    session: AsyncSession
    resident: Resident
    delivery: Delivery
    parse: Parse | None
    inbound: InboundMessage
    now: datetime
    settings: Settings
    conv: Conversation = field(init=False)

    @property
    def raw_text(self) -> str:
        """The message as the resident sent it (what staff read)."""
        return (self.delivery.text or "").strip()

    @property
    def text(self) -> str:
        """The message without leading greetings and fillers or trailing thanks (what the dialogue acts on);
        the whole message when it holds nothing else."""
        raw = self.raw_text
        return strip_fillers(raw) or raw

    @property
    def intent(self) -> str | None:
        """The intent when the NLU is confident enough to act on it; None otherwise."""
        p = self.parse
        if p is None or p.is_fallback or p.confidence < self.settings.nlu_fallback_threshold:
            return None
        return p.intent

    @property
    def degraded(self) -> bool:
        return self.parse is not None and self.parse.source != "rasa"

    def set_state(self, state: str, **data: Any) -> None:
        self.conv.state = state
        self.conv.data = {**self.conv.data, **data} if state != "idle" else {}

    def update(self, **data: Any) -> None:
        self.conv.data = {**self.conv.data, **data}
