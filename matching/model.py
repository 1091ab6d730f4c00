"""Value objects of the matching engine: resources of the 爱心资源库, wishes, weights and scored candidates.

Everything here is immutable and free of I/O, so the database layer can build these from rows and the web layer
can render them without the engine knowing either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Literal

from reference.privacy import mask_phone

ResourceKind = Literal["enterprise", "organisation", "individual"]

KINDS: tuple[str, ...] = ("enterprise", "organisation", "individual")
KIND_LABELS: dict[str, str] = {"enterprise": "爱心企业", "organisation": "社会组织", "individual": "热心市民"}

#: The micro-wish categories of DOMAIN.md (staff may add others; the engine treats categories as plain strings).
CATEGORIES: tuple[str, ...] = ("助学", "助医", "助老", "助残", "生活物资", "就业帮扶", "心理关爱", "其他")

#: Written in a towns-served cell to mean the whole city; stored as an empty ``towns_served`` set.
CITY_WIDE = "全市"

#: The item standing for money; a resource offering it may have ``max_fund`` (yuan) and wishes an ``amount``.
FUND_ITEM = "资金"

#: Concrete items or services per category. A resource that lists some items of a category offers only those in
#: that category; a resource that lists none of a category's items offers the category in general.
ITEM_CATALOGUE: dict[str, tuple[str, ...]] = {
    "助学": ("学习用品", "旧电脑", "课业辅导", "书籍", "校服", "资金"),
    "助医": ("康复器具", "助听器", "陪诊", "药品", "资金"),
    "助老": ("上门探访", "助餐", "陪伴聊天", "家电维修", "理发"),
    "助残": ("轮椅", "助听器", "康复器具", "拐杖", "无障碍改造"),
    "生活物资": ("米面油", "棉被", "家电", "衣物", "家电维修", "资金"),
    "就业帮扶": ("技能培训", "岗位推荐", "创业指导"),
    "心理关爱": ("心理咨询", "陪伴聊天", "亲子辅导"),
    "其他": ("法律咨询", "义剪", "资金"),
}

#: Chinese labels of the score components, in display order, for the case page.
COMPONENT_LABELS: dict[str, str] = {
    "category_fit": "类别匹配",
    "item_fit": "物品匹配",
    "distance": "距离",
    "capacity": "剩余容量",
    "fairness": "负荷均衡",
    "reliability": "可靠度",
    "rating": "评价",
}


@dataclass(frozen=True, slots=True)
class Resource:
    """One donor or volunteer of the pool, with the counters the score needs.

    ``towns_served`` empty means city-wide (全市). ``open_matches`` are accepted and not yet finished;
    ``month_matches`` were accepted this calendar month; ``recent_load`` counts matches of the last 30 days.
    ``rating_sum``/``rating_count`` add up survey ratings on a 1–5 scale.
    """

    key: str
    kind: str
    name: str
    contact: str = ""
    phone: str = ""
    categories: frozenset[str] = frozenset()
    items: frozenset[str] = frozenset()
    home_town: str = ""
    towns_served: frozenset[str] = frozenset()
    capacity_open: int = 1
    capacity_month: int = 4
    open_matches: int = 0
    month_matches: int = 0
    available: bool = True
    active: bool = True
    offers: int = 0
    accepts: int = 0
    declines: int = 0
    timeouts: int = 0
    completions: int = 0
    rating_sum: float = 0.0
    rating_count: int = 0
    recent_load: float = 0.0
    max_fund: int | None = None

    @property
    def city_wide(self) -> bool:
        return not self.towns_served or CITY_WIDE in self.towns_served

    def serves(self, town: str) -> bool:
        return self.city_wide or town in self.towns_served

    @property
    def remaining(self) -> int:
        """Free slots now: the lower of the open-at-once and the monthly limits (never negative)."""
        return max(0, min(self.capacity_open - self.open_matches, self.capacity_month - self.month_matches))

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass(frozen=True, slots=True)
class Wish:
    """What a case asks for, as far as matching is concerned.

    ``item`` None means "anything in the category"; ``amount`` (yuan) only matters for the 资金 item.
    """

    case_id: int | str
    category: str
    town: str
    item: str | None = None
    kind: str = "wish"
    created_at: datetime | None = None
    amount: int | None = None

    @property
    def signature(self) -> tuple[str, str | None, str, int | None]:
        """Everything that decides a resource's eligibility and score for this wish."""
        return (self.category, self.item, self.town, self.amount if self.item == FUND_ITEM else None)


@dataclass(frozen=True, slots=True)
class Weights:
    """Relative weights of the score components; the total is their weighted mean, so it lies in [0, 1]."""

    category_fit: float = 1.0
    item_fit: float = 2.0
    distance: float = 2.0
    capacity: float = 1.0
    fairness: float = 1.5
    reliability: float = 1.5
    rating: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or value < 0 or value != value:
                raise ValueError(f"weight {f.name} must be a non-negative number, got {value!r}")
        if sum(self.as_dict().values()) <= 0:
            raise ValueError("at least one weight must be positive")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None) -> Weights:
        """Weights from configuration; keys are the English component names or their Chinese labels.

        Missing keys keep their defaults; unknown keys and non-numbers raise ``ValueError``.
        """
        if not mapping:
            return cls()
        by_label = {label: name for name, label in COMPONENT_LABELS.items()}
        values: dict[str, float] = {}
        for raw_key, raw_value in mapping.items():
            name = by_label.get(raw_key, raw_key)
            if name not in COMPONENT_LABELS:
                raise ValueError(f"unknown weight {raw_key!r}; known: {', '.join(COMPONENT_LABELS)}")
            try:
                values[name] = float(raw_value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"weight {raw_key!r} must be a number, got {raw_value!r}") from None
        return cls(**values)

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in COMPONENT_LABELS}


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    """A resource that passed the hard filters, with its total in [0, 1], each component and plain reasons."""

    key: str
    total: float
    components: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def labelled(self) -> list[tuple[str, float]]:
        """Components with their Chinese labels in display order, e.g. ``[("类别匹配", 1.0), …]``."""
        return [
            (COMPONENT_LABELS[name], self.components[name])
            for name in COMPONENT_LABELS
            if name in self.components
        ]

    @property
    def percent(self) -> int:
        return round(self.total * 100)
