"""One turn of the conversation: the message, what the NLU understood, and the resident's conversation state.

Every router of the dialogue takes a `Turn`; it lives in its own module so that the routers and the dispatch
(`engine`) import it without importing each other."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation.nlu.fillers import strip_fillers
from bot.conversation.nlu.normalize import find_items
from bot.conversation.nlu.types import CASE_INTENTS, FALLBACK_INTENT, Parse
from bot.models import Resident
from bot.settings import Settings
from webhooks import Delivery


@dataclass(slots=True)
class ConversationState:
    """The resident's row in ``conversation`` (what the dialogue waits for, and since when) as a turn reads and
    writes it: read with the resident, written with one Core statement when it changed (``engine.respond``), never
    as an ORM object (its hydration and flush were a large share of a message's CPU). ``id`` None: not stored yet."""

    id: int | None
    state: str
    data: dict[str, Any]
    updated_at: datetime | None


@dataclass(slots=True)
class Received:
    """The delivery's row in ``inboundmessage`` as this turn sees it: written with two Core statements (inserted
    before the dialogue acts, so a duplicate fails first; its outcome updated once at the end) instead of an ORM
    object and two flushes. ``case_id`` is set by the dialogue when the message joins a case."""

    id: int
    openid: str
    msg_type: str
    media: dict[str, Any]
    case_id: int | None = None
    reply: str | None = None
    reply_mode: str = "pending"
    intent: str | None = None
    confidence: float | None = None
    nlu_source: str | None = None

    def outcome(self) -> dict[str, Any]:
        """The columns the turn decided (``case_id`` only when set here: the case filing links the draft's
        messages, this one included, itself)."""
        values: dict[str, Any] = {
            "reply": self.reply,
            "reply_mode": self.reply_mode,
            "intent": self.intent,
            "confidence": self.confidence,
            "nlu_source": self.nlu_source,
        }
        if self.case_id is not None:
            values["case_id"] = self.case_id
        return values


class Awaiting(NamedTuple):
    """A resident's rare states, read in one statement (with the record on PostgreSQL): the cases in which the
    dialogue has anything to look up."""

    #: staff wait for this resident's answer on one of their cases
    asked: bool
    #: a survey of theirs waits for a score, or for the comment after a score given in chat
    surveyed: bool
    #: they have a finished case (a bare digit may rate it; without one it is no rating)
    finished: bool

    @classmethod
    def of(cls, flags: Any) -> Awaiting:
        """From the three EXISTS of a row, in ``engine.awaiting``'s order."""
        asked, surveyed, finished = flags
        return cls(bool(asked), bool(surveyed), bool(finished))


NOTHING_AWAITED = Awaiting(asked=False, surveyed=False, finished=False)


@dataclass
class Turn:
    session: AsyncSession
    resident: Resident
    delivery: Delivery
    parse: Parse | None
    inbound: Received
    now: datetime
    settings: Settings
    #: the conversation if the caller read it in this transaction: ``(conv,)``, ``(None,)`` when there is none
    #: yet; None: ``respond`` reads it
    read_conv: tuple[ConversationState | None] | None = None
    #: the resident's rare states (``engine._awaiting``) if read in this transaction; None: read when the dialogue
    #: needs them
    read_awaiting: Awaiting | None = None
    conv: ConversationState = field(init=False)

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
        if p is None:
            return None
        named = service_named(self.text)
        if named is not None:
            return named
        if p.is_fallback or p.confidence < self.settings.nlu_fallback_threshold:
            return _case_named_by_a_thing(p, self.text)
        return p.intent

    @property
    def degraded(self) -> bool:
        return self.parse is not None and self.parse.source != "rasa"

    def set_state(self, state: str, **data: Any) -> None:
        self.conv.state = state
        self.conv.data = {**self.conv.data, **data} if state != "idle" else {}

    def update(self, **data: Any) -> None:
        self.conv.data = {**self.conv.data, **data}


#: an unsure request is taken when its best candidate leads by this much and the text names a known thing
RESCUE_CONFIDENCE = 0.5
RESCUE_MARGIN = 0.15


#: a request that names the programme's own service: "我想申请微心愿", "帮我登记一个微心愿", "我要报个微实事"
_SERVICE_ASKED = re.compile(
    r"(?:申请|登记|报|提|许|反映|办|填|交|发)(?:一下|一个|一件|个|件|下)?(?:大莞家的?)?(?P<kind>微心愿|微实事)"
)
# … unless it is said not to be wanted, is a question about it, or offers help with one ("认领一个微心愿")
_NOT_ASKED = re.compile(
    r"不|唔|别|没|冇|取消|撤|怎么|怎样|如何|点样|什么|咩|吗|嘛|呢|？|\?|哪里|条件|流程|认领|捐|资助|圆|帮人|帮别人|志愿|义工"
)
_SERVICE_INTENT = {"微心愿": "micro_wish", "微实事": "micro_project"}


def service_named(text: str) -> str | None:
    """The case intent of a message that asks for the programme's service by its name, whatever the model read:
    the model, trained on needs described in the resident's words, reads "我想登记一个微心愿" as an offer of help
    and "申请微心愿" as a question about the programme. None for anything else."""
    asked = _SERVICE_ASKED.search(text)
    if asked is None or _NOT_ASKED.search(text):
        return None
    return _SERVICE_INTENT[asked.group("kind")]


def _case_named_by_a_thing(p: Parse, text: str) -> str | None:
    """Below the threshold the NLU is unsure; a request that names a thing the programme gives or fixes
    (轮椅, 路灯, 下水道 … the item lexicon) and whose best candidate is a case intent with a clear lead is still
    a request: the dialogue confirms every slot at the summary, so taking it costs one "不对" at worst, while the
    menu loses the request."""
    ranked = [(name, conf) for name, conf in p.ranking if name != FALLBACK_INTENT]
    if not ranked or ranked[0][0] not in CASE_INTENTS or ranked[0][1] < RESCUE_CONFIDENCE:
        return None
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if ranked[0][1] - runner_up < RESCUE_MARGIN or not find_items(text):
        return None
    return ranked[0][0]
