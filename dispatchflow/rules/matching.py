"""Batch matching, pure: assign a burst of non-urgent work orders to candidates at once.

When many orders arrive together (a morning's backlog, a promotion day), sending
each to its own best candidate in arrival order wastes travel: an early order
takes the technician a later order needed more. :func:`match_batch` solves the
assignment problem instead (scipy's ``linear_sum_assignment`` on a dense cost
matrix for small bursts, ``min_weight_full_bipartite_matching`` over the
eligible pairs only for large ones), with per-candidate capacity, and reports
the greedy first-come-first-served result beside it so the gain is visible.

Eligibility and scores come from the dispatch policy exactly as in
:func:`~dispatchflow.rules.dispatch.decide`. Urgent orders should not wait for
a batch: the caller dispatches them one by one with ``decide`` as they arrive
and passes only the non-urgent burst here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from .candidates import (
    CandidateId,
    CandidatePool,
    Scored,
    as_id_set,
    id_key,
    rank,
    search_many,
)
from .policy import CompiledPolicy

#: Weight of the secondary objective (score when minimising km, km when maximising
#: score), as a share of one unit of the primary one per assigned order; small
#: enough never to trade away a measurable amount of the primary objective.
_SECONDARY_WEIGHT = 1e-6
#: Above this many matrix cells the sparse solver is used (dense is faster below).
_DENSE_MAX_CELLS = 50_000


@dataclass(frozen=True)
class BatchResult:
    """The outcome of :func:`match_batch`.

    ``assignments`` maps order id to candidate id for the optimal matching,
    ``unassigned`` lists orders it could not serve (in input order), and
    ``total_km`` is its total travel. The ``greedy_*`` fields are the same for the
    first-come-first-served alternative. ``excess_pct`` compares the two totals;
    it is like for like when both served the same number of orders (the optimal
    matching never serves fewer).
    """

    policy: str
    cost: str
    assignments: dict[Any, Any]
    unassigned: list[Any]
    total_km: float
    greedy_assignments: dict[Any, Any]
    greedy_unassigned: list[Any]
    greedy_total_km: float
    eligible_pairs: int

    @property
    def excess_pct(self) -> float:
        """How much more the greedy pass travels than the batch, in percent of the batch."""
        if self.total_km <= 0:
            return 0.0
        return 100.0 * (self.greedy_total_km - self.total_km) / self.total_km

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (ids as given; they should be str or int)."""
        return {"policy": self.policy, "cost": self.cost,
                "assignments": [{"order": _json_id(o), "candidate": _json_id(c)}
                                for o, c in self.assignments.items()],
                "unassigned": [_json_id(o) for o in self.unassigned],
                "total_km": self.total_km,
                "greedy_assignments": [{"order": _json_id(o), "candidate": _json_id(c)}
                                       for o, c in self.greedy_assignments.items()],
                "greedy_unassigned": [_json_id(o) for o in self.greedy_unassigned],
                "greedy_total_km": self.greedy_total_km,
                "excess_pct": self.excess_pct,
                "eligible_pairs": self.eligible_pairs}


def match_batch(policy: CompiledPolicy, orders: Sequence[dict[str, Any]],
                pool: CandidatePool, now: datetime, *,
                capacity: int | Mapping[CandidateId, int] = 1, cost: str = "distance",
                exclude: Mapping[Any, Iterable[CandidateId]] | None = None,
                order_location: str = "location", solver: str = "auto") -> BatchResult:
    """Assign a burst of non-urgent ``orders`` (dicts with ``id``) to candidates optimally.

    Eligibility and scores are the policy's (as in :func:`decide`). Among the
    assignments that serve as many orders as possible, the batch minimises total
    travel km (``cost="distance"``, ties to the higher total score) or maximises
    total score (``cost="score"``, ties to less travel). ``capacity`` is how many
    of these orders one candidate may take: one number for all, or a mapping
    from candidate id (ids missing from it take none). ``exclude`` maps an order
    id to candidates already tried for it. Under ``cost="distance"`` a pair whose
    travel distance is unknown (no location on either side; the order's is the
    policy's distance path, else ``order_location``) is not matched.

    The greedy alternative takes the orders in the given (arrival) order, each
    getting its best-ranked eligible candidate with capacity left.

    Urgent orders should not wait for a batch: dispatch them with :func:`decide`.
    ``solver`` is ``"auto"``, ``"dense"`` (scipy ``linear_sum_assignment``) or
    ``"sparse"`` (``min_weight_full_bipartite_matching`` over eligible pairs).
    Raises ValueError for an unknown ``cost`` or ``solver``, or an order without an
    id, or a repeated order id.
    """
    if cost not in ("distance", "score"):
        raise ValueError(f'unknown cost {cost!r}: use "distance" (total km) or "score"')
    if solver not in ("auto", "dense", "sparse"):
        raise ValueError(f'unknown solver {solver!r}: use "auto", "dense" or "sparse"')
    if isinstance(capacity, int):
        fixed = capacity

        def cap(cid: CandidateId) -> int:
            return fixed
    else:
        caps = capacity

        def cap(cid: CandidateId) -> int:
            return int(caps.get(cid, 0))

    ids: list[Any] = []
    for order in orders:
        oid = order.get("id")
        if oid is None:
            raise ValueError("every order passed to match_batch needs an 'id'")
        ids.append(oid)
    skips = [as_id_set(exclude.get(oid)) for oid in ids] if exclude else None
    options: list[list[Scored]] = []  # per order, ranked like decide()
    for order, scored in zip(orders, search_many(policy, orders, pool, now, skips,
                                                 order_location=order_location), strict=True):
        usable = [s for s in scored if cap(s[1]) > 0 and (cost == "score" or s[3] is not None)]
        options.append(rank(policy, order, now, usable))
    if len(set(ids)) != len(ids):
        raise ValueError("match_batch got the same order id twice")

    assignments = _solve(options, ids, cap, cost, solver)
    greedy: dict[Any, Any] = {}
    left: dict[CandidateId, int] = {}
    for oid, ranked in zip(ids, options, strict=True):
        for _score, cid, _rec, _km in ranked:
            remaining = left.get(cid)
            if remaining is None:
                remaining = cap(cid)
            if remaining > 0:
                greedy[oid] = cid
                left[cid] = remaining - 1
                break
    return BatchResult(
        policy=policy.name, cost=cost,
        assignments=assignments, unassigned=[o for o in ids if o not in assignments],
        total_km=_travel(assignments, ids, options),
        greedy_assignments=greedy, greedy_unassigned=[o for o in ids if o not in greedy],
        greedy_total_km=_travel(greedy, ids, options),
        eligible_pairs=sum(len(r) for r in options))


def _travel(assigned: dict[Any, Any], ids: list[Any], options: list[list[Scored]]) -> float:
    """Total km of ``assigned`` (unknown distances count 0)."""
    total = []
    for oid, ranked in zip(ids, options, strict=True):
        cid = assigned.get(oid)
        if cid is not None:
            total.append(next(s[3] or 0.0 for s in ranked if s[1] == cid))
    return math.fsum(total)


def _solve(options: list[list[Scored]], ids: list[Any], cap: Callable[[CandidateId], int],
           cost: str, solver: str) -> dict[Any, Any]:
    """Order id -> candidate id of an optimal assignment (see :func:`match_batch`).

    Rows are the orders with at least one usable pair; a candidate of capacity
    ``c`` gets ``min(c, its number of pairs)`` identical columns.
    """
    rows = [i for i, r in enumerate(options) if r]
    if not rows:
        return {}
    pairs = [s for i in rows for s in options[i]]
    pair_row = np.repeat(np.arange(len(rows)), [len(options[i]) for i in rows])
    cands = sorted({s[1] for s in pairs}, key=id_key)
    position = {cid: j for j, cid in enumerate(cands)}
    pair_cand = np.array([position[s[1]] for s in pairs], dtype=np.intp)
    demand = np.bincount(pair_cand, minlength=len(cands))
    slots = np.minimum(np.array([cap(cid) for cid in cands]), demand)
    first = np.cumsum(slots) - slots
    column_cand = np.repeat(np.arange(len(cands)), slots)

    scores = np.array([float(s[0]) for s in pairs])
    kms = np.array([s[3] or 0.0 for s in pairs])
    primary, secondary = (kms, -scores) if cost == "distance" else (-scores, kms)
    span = float(secondary.max() - secondary.min()) or 1.0
    weights = primary - primary.min() + _SECONDARY_WEIGHT * (secondary - secondary.min()) / span
    # every pair once per column of its candidate
    reps = slots[pair_cand]
    r_idx = np.repeat(pair_row, reps)
    starts = np.cumsum(reps) - reps
    c_idx = np.repeat(first[pair_cand], reps) + np.arange(int(reps.sum())) - \
        np.repeat(starts, reps)
    vals = np.repeat(weights, reps) + 1.0  # > 0: the sparse solver drops zero weights
    m, n = len(rows), len(column_cand)
    # A missing pair costs more than any full set of real ones, so the solver
    # first serves as many orders as it can, then minimises the cost.
    big = (m + 1) * (float(weights.max()) + 2.0)
    if solver == "dense" or (solver == "auto" and m * n <= _DENSE_MAX_CELLS):
        matrix = np.full((m, n), big)
        matrix[r_idx, c_idx] = vals
        row_ind, col_ind = linear_sum_assignment(matrix)
        real = matrix[row_ind, col_ind] < big
    else:
        # one private fallback column per order makes a full matching always exist
        graph = csr_matrix((np.concatenate([vals, np.full(m, big)]),
                            (np.concatenate([r_idx, np.arange(m)]),
                             np.concatenate([c_idx, np.arange(n, n + m)]))), shape=(m, n + m))
        row_ind, col_ind = min_weight_full_bipartite_matching(graph)
        real = col_ind < n
    return {ids[rows[r]]: cands[column_cand[c]]
            for r, c in sorted(zip(row_ind[real].tolist(), col_ind[real].tolist(),
                                   strict=True))}


def _json_id(value: Any) -> Any:
    return value if isinstance(value, str | int) and not isinstance(value, bool) else str(value)
