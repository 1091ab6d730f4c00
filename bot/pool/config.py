"""The pool's vocabulary: its error, the matching configuration read from Settings, offer statuses and their
labels, and how a wish is named in messages to volunteers and staff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.cases.lifecycle import LifecycleError
from bot.cases.numbering import CHINA, KIND_LABEL
from bot.deadlines.waking import DEFAULT_WAKING, WakingHours, waking_of
from bot.models import Case
from matching.model import CITY_WIDE, Weights
from matching.scoring import Rules, town_name

Mode = Literal["single", "top_k"]


MATCHED = ("accepted", "delivered", "done")


OPEN_MATCH = ("accepted", "delivered")


OPEN_WISH_STATES = ("accepted", "claimed", "matching")


OFFER_LABEL = {
    "offered": "待答复",
    "accepted": "已接受",
    "declined": "已婉拒",
    "timeout": "超时未答复",
    "withdrawn": "已撤回",
    "delivered": "已送达",
    "done": "已完成",
}


EXHAUSTED_FLAG = "match_exhausted"


class PoolError(LifecycleError):
    """A matching error staff or volunteers can read (views turn it into a message)."""


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Weights, hard-filter rules and the automatic-offer rule, read from Settings once.

    Settings (all optional; see bot/settings.py): ``matching_weights`` (mapping, English or Chinese component names),
    ``matching_max_unfinished`` (anti-hoarding limit), ``auto_offer_towns`` (towns whose claimed wishes are offered
    automatically; ``全市`` or ``*`` = every town), ``auto_offer_k`` (top-k of the automatic rule, 1 = one at a time).
    """

    weights: Weights = Weights()
    rules: Rules = Rules()
    auto_offer_towns: frozenset[str] = frozenset()
    auto_k: int = 3
    offer_hours: float = 24.0  # when bot.deadlines.sla has no "offer" policy
    waking: WakingHours = DEFAULT_WAKING  # a donor's answer deadline lands in waking hours

    @classmethod
    def from_settings(cls, settings: Any) -> PoolConfig:
        weights = Weights.from_mapping(getattr(settings, "matching_weights", None) or None)
        rules = Rules(max_unfinished=int(getattr(settings, "matching_max_unfinished", 5) or 5))
        raw = getattr(settings, "auto_offer_towns", None) or ()
        if isinstance(raw, str):
            raw = [t for t in re.split(r"[、,，;\s]+", raw) if t]
        towns = frozenset("*" if t in ("*", CITY_WIDE) else town_name(t) for t in raw)
        return cls(
            weights=weights,
            rules=rules,
            auto_offer_towns=towns,
            auto_k=max(1, int(getattr(settings, "auto_offer_k", 3) or 3)),
            waking=waking_of(settings),
        )

    def auto_offers(self, town: str) -> bool:
        return "*" in self.auto_offer_towns or town_name(town) in self.auto_offer_towns


DEFAULT_CONFIG = PoolConfig()


def local_time(dt: datetime) -> str:
    return dt.astimezone(CHINA).strftime("%m月%d日%H:%M")


def wish_what(case: Case) -> str:
    cat = case.category or case.suggested_category or KIND_LABEL.get(case.kind, "")
    return f"{cat}·{case.item}" if case.item else cat


def wish_where(case: Case) -> str:
    return f"{case.town}{case.community or ''}"
