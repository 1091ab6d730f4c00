"""The matching engine: pure domain code (no HTTP, no database) for the 爱心资源库.

- ``matching.model``      Resource, Wish, Weights, ScoredCandidate and the Chinese labels.
- ``matching.scoring``    hard filters (``eligible``), score components, ``score``, ``rank`` and the indexed ``Pool``.
- ``matching.cascade``    the offer cascade as a state machine with time injected.
- ``matching.batch``      batch assignment under capacities (LP with HiGHS) against a greedy baseline.
- ``matching.generator``  the deterministic demo/benchmark pool and wishes.
- ``matching.pool_io``    CSV/XLSX import (validated, all-or-nothing) and export.
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
    "CATEGORIES", "CITY_WIDE", "COMPONENT_LABELS", "ITEM_CATALOGUE", "KIND_LABELS", "Pool", "Resource", "Rules",
    "ScoredCandidate", "Weights", "Wish", "eligible", "rank", "score",
]
