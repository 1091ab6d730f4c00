"""Batch assignment: give many open wishes helpers at once, maximising the total score under capacities.

The problem is a bipartite b-matching (each wish at most once, each resource at most its free slots). Wishes with
the same signature (category, item, town, amount) have identical score vectors, so they are aggregated into
groups and the problem becomes a transportation LP whose constraint matrix is totally unimodular: the HiGHS
dual-simplex vertex solution is integral, so the LP solves the integer problem exactly on its edge set.

For speed every group keeps only its ``per_wish`` best candidates (plus whatever the greedy baseline used, so the
solver is never worse than greedy). To show what the cut costs, the result carries an upper bound over *all*
eligible pairs: the Lagrangian bound ``Σ cap_r·u_r + Σ_g n_g·max(0, max_r s_gr − u_r)`` with the LP's resource
prices ``u``, and the simpler "every wish gets its best helper" bound; the smaller is reported.

The greedy baseline is today's practice: first come, first served, each wish takes its best helper with room left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_array

from matching.model import Weights, Wish
from matching.scoring import DEFAULT_WEIGHTS, Pool

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Assignment:
    case_id: int | str
    key: str
    score: float


@dataclass(slots=True)
class BatchResult:
    """A proposed assignment: staff review it and send the offers."""

    method: Literal["greedy", "solver"]
    assignments: list[Assignment]
    unassigned: list[int | str]
    seconds: float
    upper_bound: float | None = None
    edges: int = 0

    @property
    def total(self) -> float:
        return sum(a.score for a in self.assignments)

    @property
    def gap(self) -> float | None:
        """Relative distance to the upper bound (0 = provably optimal over all eligible pairs)."""
        if self.upper_bound is None or self.upper_bound <= 0:
            return None
        return max(0.0, (self.upper_bound - self.total) / self.upper_bound)

    def by_resource(self) -> dict[str, list[int | str]]:
        out: dict[str, list[int | str]] = {}
        for a in self.assignments:
            out.setdefault(a.key, []).append(a.case_id)
        return out


@dataclass(slots=True)
class Comparison:
    greedy: BatchResult
    solver: BatchResult

    @property
    def improvement(self) -> float:
        """Solver total minus greedy total."""
        return self.solver.total - self.greedy.total


@dataclass(slots=True)
class _Group:
    members: list[int | str]  # case ids, oldest first
    cand: np.ndarray  # resource indices, best first (every eligible one)
    scores: np.ndarray  # their scores, descending


@dataclass(slots=True)
class BatchProblem:
    """Groups of interchangeable wishes, resource keys with their free slots, and the first-come order."""

    keys: list[str]
    capacity: np.ndarray
    groups: list[_Group] = field(default_factory=list)
    sequence: list[tuple[int, int]] = field(default_factory=list)  # (group, member) in arrival order

    @property
    def wishes(self) -> int:
        return len(self.sequence)

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[tuple[int | str, str, float]],
        capacities: Mapping[str, int],
        *,
        order: Sequence[int | str] | None = None,
    ) -> BatchProblem:
        """A problem from explicit ``(case_id, resource key, score)`` triples (each wish its own group).

        ``order`` is the first-come order of the case ids for the greedy baseline (default: first seen).
        """
        keys = list(capacities)
        index = {k: i for i, k in enumerate(keys)}
        per_case: dict[int | str, list[tuple[float, int]]] = {}
        for case_id, key, s in edges:
            per_case.setdefault(case_id, []).append((float(s), index[key]))
        cases = list(order) if order is not None else list(per_case)
        groups = []
        for case_id in cases:
            pairs = sorted(per_case.get(case_id, []), key=lambda p: (-p[0], p[1]))
            groups.append(
                _Group(
                    [case_id],
                    np.array([i for _, i in pairs], dtype=np.int64),
                    np.array([s for s, _ in pairs], dtype=float),
                )
            )
        return cls(
            keys=keys,
            capacity=np.array([max(0, capacities[k]) for k in keys], dtype=np.int64),
            groups=groups,
            sequence=[(gi, 0) for gi in range(len(groups))],
        )


def _arrival(wish: Wish) -> tuple[float, str]:
    at = wish.created_at
    stamp = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() if at else float("inf")
    return (stamp, str(wish.case_id))


def build_problem(pool: Pool, wishes: Sequence[Wish], *, weights: Weights = DEFAULT_WEIGHTS) -> BatchProblem:
    """Score every eligible (wish, resource) pair, once per wish signature."""
    keys = [r.key for r in pool.resources]
    capacity = np.array([pool.remaining(k) for k in keys], dtype=np.int64)
    problem = BatchProblem(keys=keys, capacity=capacity)
    group_of: dict[Hashable, int] = {}
    seen: set[int | str] = set()
    for w in sorted(wishes, key=_arrival):
        if w.case_id in seen:
            raise ValueError(f"wish {w.case_id!r} appears twice")
        seen.add(w.case_id)
        gi = group_of.get(w.signature)
        if gi is None:
            idx, totals = pool.scores(w, weights=weights)
            order = np.lexsort((idx, -np.round(totals, 12)))
            gi = group_of[w.signature] = len(problem.groups)
            problem.groups.append(_Group([], idx[order], totals[order]))
        group = problem.groups[gi]
        problem.sequence.append((gi, len(group.members)))
        group.members.append(w.case_id)
    return problem


def greedy(problem: BatchProblem) -> BatchResult:
    """First come, first served: each wish in arrival order takes its best helper with a free slot."""
    started = time.perf_counter()
    left = problem.capacity.copy()
    assignments: list[Assignment] = []
    unassigned: list[int | str] = []
    for gi, m in problem.sequence:
        g = problem.groups[gi]
        for r, s in zip(g.cand.tolist(), g.scores.tolist(), strict=True):
            if left[r] > 0:
                left[r] -= 1
                assignments.append(Assignment(g.members[m], problem.keys[r], s))
                break
        else:
            unassigned.append(g.members[m])
    return BatchResult(
        "greedy",
        assignments,
        unassigned,
        time.perf_counter() - started,
        edges=sum(len(g.cand) for g in problem.groups),
    )


def solve(problem: BatchProblem, *, per_wish: int = 30, warm: BatchResult | None = None) -> BatchResult:
    """The score-maximising assignment on each group's ``per_wish`` best candidates (plus ``warm``'s pairs).

    Solved as a transportation LP with HiGHS (dual simplex → an integral vertex). The result's ``upper_bound``
    covers every eligible pair, so ``gap`` shows what the candidate cut may have cost.
    """
    started = time.perf_counter()
    n_groups = len(problem.groups)
    group_of_case = {problem.groups[gi].members[m]: gi for gi, m in problem.sequence}
    extra: dict[int, set[int]] = {}
    if warm is not None:
        key_index = {k: i for i, k in enumerate(problem.keys)}
        for a in warm.assignments:
            extra.setdefault(group_of_case[a.case_id], set()).add(key_index[a.key])
    edge_group: list[np.ndarray] = []
    edge_res: list[np.ndarray] = []
    edge_score: list[np.ndarray] = []
    for gi, g in enumerate(problem.groups):
        if not g.members or len(g.cand) == 0:
            continue
        take = np.zeros(len(g.cand), dtype=bool)
        take[:per_wish] = True
        if gi in extra:
            take |= np.isin(g.cand, list(extra[gi]))
        take &= problem.capacity[g.cand] > 0
        edge_group.append(np.full(int(take.sum()), gi, dtype=np.int64))
        edge_res.append(g.cand[take])
        edge_score.append(g.scores[take])
    eg = np.concatenate(edge_group) if edge_group else np.zeros(0, dtype=np.int64)
    er = np.concatenate(edge_res) if edge_res else np.zeros(0, dtype=np.int64)
    es = np.concatenate(edge_score) if edge_score else np.zeros(0)
    n_edges = len(eg)
    prices = np.zeros(len(problem.keys))
    flows = np.zeros(n_edges, dtype=np.int64)
    if n_edges:
        used_res, res_row = np.unique(er, return_inverse=True)
        rows = np.concatenate([eg, n_groups + res_row])
        cols = np.concatenate([np.arange(n_edges), np.arange(n_edges)])
        a_ub = csr_array((np.ones(2 * n_edges), (rows, cols)), shape=(n_groups + len(used_res), n_edges))
        b_ub = np.concatenate([[len(g.members) for g in problem.groups], problem.capacity[used_res]]).astype(
            float
        )
        res = linprog(-es, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs-ds")
        if res.status != 0:
            raise RuntimeError(f"batch LP failed: {res.message}")
        flows = np.rint(res.x).astype(np.int64)
        if np.abs(res.x - flows).max() > 1e-6:
            log.warning("batch LP returned a fractional vertex; rounding down")
            flows = np.floor(res.x + 1e-9).astype(np.int64)
        prices[used_res] = np.maximum(0.0, -res.ineqlin.marginals[n_groups:])
    # Disaggregate: within a group, the oldest wishes get the best helpers.
    per_group: dict[int, list[tuple[float, int, int]]] = {}
    for e in np.nonzero(flows)[0].tolist():
        per_group.setdefault(int(eg[e]), []).append((float(es[e]), int(er[e]), int(flows[e])))
    assignments: list[Assignment] = []
    unassigned: list[int | str] = []
    for gi, g in enumerate(problem.groups):
        slots = [
            (s, r) for s, r, f in sorted(per_group.get(gi, []), key=lambda t: (-t[0], t[1])) for _ in range(f)
        ]
        for m, case_id in enumerate(g.members):
            if m < len(slots):
                assignments.append(Assignment(case_id, problem.keys[slots[m][1]], slots[m][0]))
            else:
                unassigned.append(case_id)
    _check(problem, assignments)
    return BatchResult(
        "solver",
        assignments,
        unassigned,
        time.perf_counter() - started,
        upper_bound=upper_bound(problem, prices),
        edges=n_edges,
    )


def upper_bound(problem: BatchProblem, prices: np.ndarray | None = None) -> float:
    """An upper bound on the best total over every eligible pair (see the module docstring)."""
    best = sum(len(g.members) * float(g.scores[0]) for g in problem.groups if len(g.scores))
    if prices is None:
        return best
    lagrange = float((problem.capacity * prices).sum())
    for g in problem.groups:
        if len(g.cand):
            lagrange += len(g.members) * max(0.0, float((g.scores - prices[g.cand]).max()))
    return min(best, lagrange)


def _check(problem: BatchProblem, assignments: Sequence[Assignment]) -> None:
    used: dict[str, int] = {}
    cases: set[int | str] = set()
    cap = dict(zip(problem.keys, problem.capacity.tolist(), strict=True))
    for a in assignments:
        if a.case_id in cases:
            raise AssertionError(f"wish {a.case_id!r} assigned twice")
        cases.add(a.case_id)
        used[a.key] = used.get(a.key, 0) + 1
        if used[a.key] > cap[a.key]:
            raise AssertionError(f"resource {a.key!r} over capacity")


def assign(
    pool: Pool,
    wishes: Sequence[Wish],
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    method: Literal["solver", "greedy"] = "solver",
    per_wish: int = 30,
) -> BatchResult:
    """Propose helpers for ``wishes`` from ``pool`` (e.g. all open wishes of a town, or of the city)."""
    problem = build_problem(pool, wishes, weights=weights)
    if method == "greedy":
        return greedy(problem)
    return solve(problem, per_wish=per_wish, warm=greedy(problem))


def compare(
    pool: Pool, wishes: Sequence[Wish], *, weights: Weights = DEFAULT_WEIGHTS, per_wish: int = 30
) -> Comparison:
    """Greedy first-come baseline against the solver, on the same scored problem."""
    problem = build_problem(pool, wishes, weights=weights)
    base = greedy(problem)
    return Comparison(greedy=base, solver=solve(problem, per_wish=per_wish, warm=base))
