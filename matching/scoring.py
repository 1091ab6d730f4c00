"""Hard filters, score components and ranking.

``eligible()`` says why a resource cannot take a wish (or None); the component functions each return a number in
[0, 1]; ``score()`` combines them into a weighted mean with plain-Chinese reasons; ``rank()`` is the reference
ranking over any iterable of resources. ``Pool`` holds a snapshot of the whole 爱心资源库 indexed by category and
town with the resource-only components precomputed, and ranks one wish in well under a millisecond; it gives
exactly the same result as ``rank()``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from matching.model import (
    CITY_WIDE,
    COMPONENT_LABELS,
    FUND_ITEM,
    ITEM_CATALOGUE,
    Resource,
    ScoredCandidate,
    Weights,
    Wish,
)
from reference import towns

# Bayesian priors: a newcomer is scored as if it had answered PRIOR_WEIGHT offers at the prior rates.
PRIOR_ACCEPT = 0.7
PRIOR_ACCEPT_WEIGHT = 4.0
PRIOR_COMPLETE = 0.9
PRIOR_COMPLETE_WEIGHT = 3.0
PRIOR_RATING = 4.0
PRIOR_RATING_WEIGHT = 3.0
#: Item fit of a resource that offers a whole category without listing concrete items of it.
GENERAL_ITEM_FIT = 0.6
#: Distance component when a town is unknown (neither near nor far).
UNKNOWN_DISTANCE = 0.5


@dataclass(frozen=True, slots=True)
class Rules:
    """Configurable hard-filter and decay parameters.

    ``max_unfinished``: anti-hoarding — a resource with this many open, unfinished matches gets no new offers,
    whatever capacity it declared. ``distance_scale_km``: the distance component is ``exp(-km / scale)``.
    """

    max_unfinished: int = 5
    distance_scale_km: float = 15.0

    def __post_init__(self) -> None:
        if self.max_unfinished < 1:
            raise ValueError("max_unfinished must be at least 1")
        if self.distance_scale_km <= 0:
            raise ValueError("distance_scale_km must be positive")


DEFAULT_RULES = Rules()
DEFAULT_WEIGHTS = Weights()


def town_name(name: str) -> str:
    """The full name of a town given its full or short name; unknown names come back unchanged."""
    town = towns.get(name.strip())
    return town.name if town else name.strip()


# --- hard filters ---------------------------------------------------------------------------------------------


def resource_exclusion(resource: Resource, *, rules: Rules = DEFAULT_RULES) -> str | None:
    """The reason a resource can take no wish at all right now, or None."""
    if not resource.active:
        return "已停用"
    if not resource.available:
        return "暂不可接单"
    if resource.open_matches >= resource.capacity_open:
        return f"同时承接已满（{resource.open_matches}/{resource.capacity_open}）"
    if resource.month_matches >= resource.capacity_month:
        return f"本月名额已满（{resource.month_matches}/{resource.capacity_month}）"
    if resource.open_matches >= rules.max_unfinished:
        return f"未完成的匹配过多（{resource.open_matches}单），完成部分后再派单"
    return None


def offers_item(resource: Resource, category: str, item: str | None) -> bool:
    """Whether a resource offering ``category`` covers ``item`` (None = anything in the category)."""
    if item is None or item in resource.items:
        return True
    listed = resource.items.intersection(ITEM_CATALOGUE.get(category, ()))
    return not listed


def eligible(resource: Resource, wish: Wish, *, rules: Rules = DEFAULT_RULES) -> str | None:
    """None when the resource may be offered the wish, else the reason it is excluded (plain Chinese)."""
    reason = resource_exclusion(resource, rules=rules)
    if reason:
        return reason
    town = town_name(wish.town)
    if not resource.serves(town):
        return f"不服务{town}"
    if wish.category not in resource.categories:
        return f"不提供{wish.category}类帮助"
    if not offers_item(resource, wish.category, wish.item):
        return f"不提供{wish.item}"
    if (
        wish.item == FUND_ITEM
        and wish.amount is not None
        and resource.max_fund is not None
        and resource.max_fund < wish.amount
    ):
        return f"资助上限{resource.max_fund}元，低于所需{wish.amount}元"
    return None


# --- components, each in [0, 1] ---------------------------------------------------------------------------------


def category_fit(resource: Resource, wish: Wish) -> float:
    """1 for a specialist of the wish's category, down to 0.5 for a resource spread over all eight."""
    if wish.category not in resource.categories:
        return 0.0
    n = len(resource.categories)
    return max(0.5, 1.0 - 0.5 * (n - 1) / 7)


def item_fit(resource: Resource, wish: Wish) -> float:
    """1 when the exact item is offered (or none is asked), 0.6 for a general offer of the category, else 0."""
    if wish.item is None or wish.item in resource.items:
        return 1.0
    return GENERAL_ITEM_FIT if offers_item(resource, wish.category, wish.item) else 0.0


@lru_cache(maxsize=4096)
def _town_km(a: str, b: str) -> float | None:
    ta, tb = towns.get(a), towns.get(b)
    if ta is None or tb is None:
        return None
    return 0.0 if ta.name == tb.name else towns.distance_km(ta, tb)


def distance(resource: Resource, wish: Wish, *, rules: Rules = DEFAULT_RULES) -> float:
    """exp(-km / scale) between the resource's home town and the wish's town centroids (1 for the same town)."""
    km = _town_km(resource.home_town, wish.town)
    if km is None:
        return UNKNOWN_DISTANCE
    return math.exp(-km / rules.distance_scale_km)


def capacity(resource: Resource) -> float:
    """Share of the resource's own limits still free (the tighter of open-at-once and this month)."""
    open_share = (
        (resource.capacity_open - resource.open_matches) / resource.capacity_open
        if resource.capacity_open > 0
        else 0.0
    )
    month_share = (
        (resource.capacity_month - resource.month_matches) / resource.capacity_month
        if resource.capacity_month > 0
        else 0.0
    )
    return min(1.0, max(0.0, min(open_share, month_share)))


def fairness(resource: Resource) -> float:
    """1 for a resource with no match in the last 30 days, falling as its recent load grows against its size."""
    scale = max(2.0, resource.capacity_month / 2)
    return 1.0 / (1.0 + max(0.0, resource.recent_load) / scale)


def accept_rate(resource: Resource) -> float:
    answered = resource.accepts + resource.declines + resource.timeouts
    return (resource.accepts + PRIOR_ACCEPT_WEIGHT * PRIOR_ACCEPT) / (answered + PRIOR_ACCEPT_WEIGHT)


def completion_rate(resource: Resource) -> float:
    finished = max(resource.completions, resource.accepts - resource.open_matches)
    return (resource.completions + PRIOR_COMPLETE_WEIGHT * PRIOR_COMPLETE) / (
        finished + PRIOR_COMPLETE_WEIGHT
    )


def reliability(resource: Resource) -> float:
    """Mean of the smoothed accept rate and completion rate; a newcomer gets the priors (0.8), not 0 or 1."""
    return 0.5 * (accept_rate(resource) + completion_rate(resource))


def average_rating(resource: Resource) -> float:
    """Smoothed average survey rating on 1–5."""
    return (resource.rating_sum + PRIOR_RATING_WEIGHT * PRIOR_RATING) / (
        resource.rating_count + PRIOR_RATING_WEIGHT
    )


def rating(resource: Resource) -> float:
    """The smoothed average rating mapped from 1–5 onto [0, 1]."""
    return min(1.0, max(0.0, (average_rating(resource) - 1.0) / 4.0))


def components(resource: Resource, wish: Wish, *, rules: Rules = DEFAULT_RULES) -> dict[str, float]:
    return {
        "category_fit": category_fit(resource, wish),
        "item_fit": item_fit(resource, wish),
        "distance": distance(resource, wish, rules=rules),
        "capacity": capacity(resource),
        "fairness": fairness(resource),
        "reliability": reliability(resource),
        "rating": rating(resource),
    }


def reasons(resource: Resource, wish: Wish) -> list[str]:
    """Why this resource ranks where it does, in plain Chinese for the case page."""
    out: list[str] = []
    town = town_name(wish.town)
    km = _town_km(resource.home_town, town)
    if km == 0.0:
        out.append("同镇街")
    elif km is not None:
        out.append(f"{'服务全市，' if resource.city_wide else ''}相距约{round(km)}公里")
    if wish.item is not None and wish.item in resource.items:
        out.append(f"可提供{wish.item}")
    elif wish.item is not None:
        out.append(f"可提供{wish.category}类帮助")
    if len(resource.categories) == 1:
        out.append(f"专注{wish.category}")
    out.append(f"尚余{resource.remaining}个名额")
    load = round(resource.recent_load)
    out.append(f"近30天已承接{load}单" if load > 0 else "近30天未承接")
    answered = resource.accepts + resource.declines + resource.timeouts
    if answered == 0:
        out.append("新加入，可靠度按平均水平计")
    else:
        out.append(f"接受率{round(100 * resource.accepts / answered)}%")
        if resource.completions:
            out.append(f"已完成{resource.completions}单")
    if resource.rating_count:
        out.append(f"平均评分{resource.rating_sum / resource.rating_count:.1f}（{resource.rating_count}次）")
    else:
        out.append("暂无评价")
    return out


def weighted_total(parts: dict[str, float], weights: Weights) -> float:
    w = weights.as_dict()
    return sum(w[name] * parts[name] for name in COMPONENT_LABELS) / sum(w.values())


def score(
    resource: Resource, wish: Wish, *, weights: Weights = DEFAULT_WEIGHTS, rules: Rules = DEFAULT_RULES
) -> ScoredCandidate:
    """Score one resource for one wish (the hard filters are not applied here; see ``eligible``)."""
    parts = components(resource, wish, rules=rules)
    return ScoredCandidate(
        key=resource.key,
        total=weighted_total(parts, weights),
        components=parts,
        reasons=reasons(resource, wish),
    )


def _order(candidate: ScoredCandidate) -> tuple[float, str]:
    return (-round(candidate.total, 12), candidate.key)


def rank(
    resources: Iterable[Resource],
    wish: Wish,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    rules: Rules = DEFAULT_RULES,
    limit: int | None = 10,
    exclude: Collection[str] = (),
) -> list[ScoredCandidate]:
    """The eligible resources best first (ties by key), at most ``limit`` (None = all).

    ``exclude`` holds keys to skip, e.g. resources already offered this wish. Linear in the pool; use ``Pool``
    when ranking more than a few wishes.
    """
    scored = [
        score(r, wish, weights=weights, rules=rules)
        for r in resources
        if r.key not in exclude and eligible(r, wish, rules=rules) is None
    ]
    scored.sort(key=_order)
    return scored if limit is None else scored[:limit]


# --- the indexed pool -----------------------------------------------------------------------------------------

_STATIC = ("category_fit", "capacity", "fairness", "reliability", "rating")


class Pool:
    """An immutable, indexed snapshot of the resource pool for fast ranking.

    Build it once from the current rows (1,900 resources take a few milliseconds), then call ``rank(wish)`` per
    case. After a resource changes (a match, a deactivation) make a new snapshot with ``updated(...)`` or rebuild.
    """

    def __init__(self, resources: Iterable[Resource], *, rules: Rules = DEFAULT_RULES) -> None:
        self.rules = rules
        self.resources: tuple[Resource, ...] = tuple(resources)
        self._index: dict[str, int] = {}
        for i, r in enumerate(self.resources):
            if r.key in self._index:
                raise ValueError(f"duplicate resource key {r.key!r}")
            self._index[r.key] = i
        n = len(self.resources)
        self._exclusion: list[str | None] = [resource_exclusion(r, rules=rules) for r in self.resources]
        self._usable = np.array([reason is None for reason in self._exclusion], dtype=bool)
        self._remaining = np.array(
            [max(0, min(r.remaining, rules.max_unfinished - r.open_matches)) for r in self.resources],
            dtype=np.int64,
        )
        # Resource-only components; category_fit only depends on the number of categories once eligible.
        self._static: dict[str, np.ndarray] = {
            "category_fit": np.array(
                [max(0.5, 1.0 - 0.5 * (len(r.categories) - 1) / 7) for r in self.resources]
            ),
            "capacity": np.array([capacity(r) for r in self.resources]),
            "fairness": np.array([fairness(r) for r in self.resources]),
            "reliability": np.array([reliability(r) for r in self.resources]),
            "rating": np.array([rating(r) for r in self.resources]),
        }
        self._max_fund = np.array([np.inf if r.max_fund is None else r.max_fund for r in self.resources])
        self._town_names: list[str] = [t.name for t in towns.TOWNS]
        self._town_row: dict[str, int] = {name: i for i, name in enumerate(self._town_names)}
        home = np.array(
            [self._town_row.get(town_name(r.home_town), -1) for r in self.resources], dtype=np.int64
        )
        self._home = home
        self._city_wide = np.array([r.city_wide for r in self.resources], dtype=bool)
        served_rows: list[np.ndarray] = []
        for name in self._town_names:
            served_rows.append(
                np.array([r.city_wide or name in r.towns_served for r in self.resources], dtype=bool)
            )
        self._serves = np.vstack(served_rows) if served_rows else np.zeros((0, n), dtype=bool)
        self._by_category: dict[str, np.ndarray] = {}
        cats: dict[str, list[int]] = {}
        for i, r in enumerate(self.resources):
            if self._usable[i]:
                for c in r.categories:
                    cats.setdefault(c, []).append(i)
        self._by_category = {c: np.array(idx, dtype=np.int64) for c, idx in cats.items()}
        # Town-to-town distance decay, and which resources list which items / list items of which category.
        self._town_decay = np.array(
            [
                [math.exp(-(_town_km(a, b) or 0.0) / rules.distance_scale_km) for b in self._town_names]
                for a in self._town_names
            ]
        )
        self._by_item: dict[str, list[int]] = {}
        self._lists_category: dict[str, list[int]] = {}
        for i, r in enumerate(self.resources):
            for item in r.items:
                self._by_item.setdefault(item, []).append(i)
            for category, catalogue in ITEM_CATALOGUE.items():
                if not r.items.isdisjoint(catalogue):
                    self._lists_category.setdefault(category, []).append(i)
        self._candidates_cache: dict[tuple[str, str], np.ndarray] = {}
        self._item_cache: dict[tuple[str, str | None], np.ndarray] = {}
        self._static_sum_cache: dict[Weights, np.ndarray] = {}
        self._distance_cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.resources)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def get(self, key: str) -> Resource | None:
        i = self._index.get(key)
        return None if i is None else self.resources[i]

    def updated(self, *changed: Resource) -> Pool:
        """A new snapshot with these resources replaced (by key) or added."""
        by_key = {r.key: r for r in changed}
        kept = [by_key.pop(r.key, r) for r in self.resources]
        return Pool([*kept, *by_key.values()], rules=self.rules)

    def remaining(self, key: str) -> int:
        """Slots the batch assignment may fill for a resource (capacity and anti-hoarding limit)."""
        return int(self._remaining[self._index[key]]) if self._usable[self._index[key]] else 0

    # -- vectorised internals --
    def _static_sum(self, weights: Weights) -> np.ndarray:
        cached = self._static_sum_cache.get(weights)
        if cached is None:
            w = weights.as_dict()
            cached = sum((w[name] * self._static[name] for name in _STATIC), np.zeros(len(self.resources)))
            self._static_sum_cache[weights] = cached
        return cached

    def _distances(self, town: str) -> np.ndarray:
        cached = self._distance_cache.get(town)
        if cached is None:
            row = self._town_row.get(town)
            if row is None:
                cached = np.full(len(self.resources), UNKNOWN_DISTANCE)
            else:
                cached = np.where(
                    self._home >= 0, self._town_decay[row][np.maximum(self._home, 0)], UNKNOWN_DISTANCE
                )
            self._distance_cache[town] = cached
        return cached

    def _candidates(self, category: str, town: str) -> np.ndarray:
        key = (category, town)
        cached = self._candidates_cache.get(key)
        if cached is None:
            idx = self._by_category.get(category, np.zeros(0, dtype=np.int64))
            row = self._town_row.get(town)
            mask = self._serves[row, idx] if row is not None else self._city_wide[idx]
            cached = idx[mask]
            self._candidates_cache[key] = cached
        return cached

    def _item_fits(self, category: str, item: str | None) -> np.ndarray:
        key = (category, item)
        cached = self._item_cache.get(key)
        if cached is None:
            n = len(self.resources)
            if item is None:
                cached = np.ones(n)
            else:
                has_item = np.zeros(n, dtype=bool)
                has_item[self._by_item.get(item, [])] = True
                lists = np.zeros(n, dtype=bool)
                lists[self._lists_category.get(category, [])] = True
                cached = np.where(has_item, 1.0, np.where(lists, 0.0, GENERAL_ITEM_FIT))
            self._item_cache[key] = cached
        return cached

    def scores(self, wish: Wish, *, weights: Weights = DEFAULT_WEIGHTS) -> tuple[np.ndarray, np.ndarray]:
        """Indices (into ``resources``) of every eligible resource and their totals, unsorted."""
        town = town_name(wish.town)
        idx = self._candidates(wish.category, town)
        fits = self._item_fits(wish.category, wish.item)[idx]
        keep = fits > 0
        if wish.item == FUND_ITEM and wish.amount is not None:
            keep &= self._max_fund[idx] >= wish.amount
        idx = idx[keep]
        w = weights.as_dict()
        totals = (
            self._static_sum(weights)[idx]
            + w["item_fit"] * fits[keep]
            + w["distance"] * self._distances(town)[idx]
        ) / sum(w.values())
        return idx, totals

    def rank(
        self,
        wish: Wish,
        *,
        weights: Weights = DEFAULT_WEIGHTS,
        limit: int | None = 10,
        exclude: Collection[str] = (),
    ) -> list[ScoredCandidate]:
        """Same result as ``rank(pool.resources, wish, ...)``, computed from the index."""
        idx, totals = self.scores(wish, weights=weights)
        if exclude:
            keep = np.array([self.resources[i].key not in exclude for i in idx], dtype=bool)
            idx, totals = idx[keep], totals[keep]
        if limit is not None and len(idx) > limit + 8:
            # Preselect with a margin so rounding can never drop a tie at the boundary.
            top = np.argpartition(-totals, limit + 8)[: limit + 8]
            idx = idx[top]
        out = [score(self.resources[i], wish, weights=weights, rules=self.rules) for i in idx]
        out.sort(key=_order)
        return out if limit is None else out[:limit]

    def exclusions(self, wish: Wish) -> dict[str, str]:
        """Every resource that cannot take the wish, with the reason (for "why is X not listed?")."""
        return {r.key: reason for r in self.resources if (reason := eligible(r, wish, rules=self.rules))}

    def exclusion_summary(self, wish: Wish) -> Counter[str]:
        """How many resources each hard filter removed, e.g. ``{"不服务虎门镇": 1500, …}``."""
        return Counter(self.exclusions(wish).values())


def rank_many(
    pool: Pool, wishes: Sequence[Wish], *, weights: Weights = DEFAULT_WEIGHTS, limit: int = 10
) -> dict[int | str, list[ScoredCandidate]]:
    """Top candidates for several wishes (e.g. the case list's "suggested helpers" column)."""
    return {w.case_id: pool.rank(w, weights=weights, limit=limit) for w in wishes}


__all__ = [
    "CITY_WIDE",
    "DEFAULT_RULES",
    "DEFAULT_WEIGHTS",
    "Pool",
    "Rules",
    "accept_rate",
    "average_rating",
    "capacity",
    "category_fit",
    "completion_rate",
    "components",
    "distance",
    "eligible",
    "fairness",
    "item_fit",
    "offers_item",
    "rank",
    "rank_many",
    "rating",
    "reasons",
    "reliability",
    "resource_exclusion",
    "score",
    "town_name",
    "weighted_total",
]
