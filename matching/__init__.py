"""The matching engine: pure domain code (no HTTP, no database) for the 爱心资源库.

- ``matching.model``      Resource, Wish, Weights, ScoredCandidate and the Chinese labels.
- ``matching.scoring``    hard filters (``eligible``), score components, ``score``, ``rank`` and the indexed ``Pool``.
- ``matching.cascade``    the offer cascade as a state machine with time injected.
- ``matching.batch``      batch assignment under capacities (LP with HiGHS) against a greedy baseline.
- ``matching.generator``  the deterministic demo/benchmark pool and wishes.
- ``matching.pool_io``    CSV/XLSX import (validated, all-or-nothing) and export.

Typical use by the database and web layers::

    pool = Pool(resources_from_rows, rules=Rules(max_unfinished=settings.max_unfinished))
    weights = Weights.from_mapping(settings.matching_weights)          # e.g. {"distance": 3, "负荷均衡": 2}
    top = pool.rank(Wish(case_id=case.id, category="助残", item="轮椅", town="虎门"), weights=weights, limit=10)
    for c in top:   # case page: c.key, c.percent, c.labelled() → [("类别匹配", 1.0), …], c.reasons → ["同镇街", …]
        ...
    cascade, actions = start_cascade([c.key for c in top], now=now, mode="top_k", k=3)
    # persist cascade.to_dict() and turn actions (OfferSent/OfferWithdrawn/Matched/Exhausted) into outbox rows;
    # later: cascade.accept(key, now) / cascade.decline(key, now) / cascade.tick(now) under a row lock.
    proposal = batch.compare(pool, open_wishes, weights=weights)      # .greedy / .solver, .total, .gap
"""

from matching.model import (
    CATEGORIES,
    CITY_WIDE,
    COMPONENT_LABELS,
    ITEM_CATALOGUE,
    KIND_LABELS,
    Resource,
    ScoredCandidate,
    Weights,
    Wish,
)
from matching.scoring import Pool, Rules, eligible, rank, score

__all__ = [
    "CATEGORIES",
    "CITY_WIDE",
    "COMPONENT_LABELS",
    "ITEM_CATALOGUE",
    "KIND_LABELS",
    "Pool",
    "Resource",
    "Rules",
    "ScoredCandidate",
    "Weights",
    "Wish",
    "eligible",
    "rank",
    "score",
]
