"""Candidate search, pure: which pool records a dispatch policy must look at, and their verdicts.

A :class:`CandidatePool` holds candidate records (technicians) and a spatial
index of their locations. :func:`search` runs one policy for one order over the
pool: it asks the index only for the candidates within the radius the policy's
own ``require distance_km(order.x, pool.y) <= R`` implies
(:func:`policy_radius_km`), and drops with array operations those failing the
policy's leading simple filters (on duty, skill, level: memoised per candidate
record and order value, see :mod:`dispatchflow.rules.screening`). Every
remaining candidate goes through ``policy.evaluate``, the only authority on
filters and scores, so the eligible set and scores equal those of a plain loop
over the whole pool.

Exclusion counts follow the policy's first failing filter, with one deliberate
shortcut: candidates outside the radius are counted under the distance filter's
label without running the filters before it (that is what makes the search fast).
``decide`` and ``match_batch`` (in ``dispatch`` and ``matching``) build on this.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

from ..dsl import ast
from .geo import DEFAULT_CELL_KM, GridIndex, bbox, point_of
from .policy import CompiledPolicy
from .screening import Screen, screen_filters

#: Label under which ``exclude`` ids (candidates already offered the order) are counted.
ALREADY_TRIED = "already tried / 已尝试"
#: Relative and absolute slack (km) added to a policy's radius before the spatial
#: query, so float rounding between numpy and the builtin never drops a candidate
#: the policy would accept (the policy still decides at the boundary).
_RADIUS_SLACK = 1e-9

CandidateId = Hashable
#: ``(score, id, record, km from the order or None)`` of an eligible candidate.
Scored = tuple[float, CandidateId, dict[str, Any], float | None]


# ------------------------------------------------------------------ what a policy allows


@dataclass(frozen=True)
class _Geometry:
    """What the spatial index may use of a policy: radius, label, the two location paths."""

    radius_km: float
    label: str
    order_steps: tuple[str, ...]
    pool_field: str


_GEOMETRY: WeakKeyDictionary[CompiledPolicy, _Geometry | None] = WeakKeyDictionary()


def policy_radius_km(policy: CompiledPolicy) -> float | None:
    """The search radius (km) a policy's own filters imply, or None if they imply none.

    A radius comes from a top-level ``require`` (or one ``and``-ed part of it) of
    the form ``distance_km(<order>.<path>, <pool>.<field>) <= X`` (also ``<``, the
    arguments swapped, or ``X >= distance_km(...)``) with ``X`` a literal such as
    ``5km``. With several such clauses over the same two locations the largest
    radius is returned: a candidate beyond it fails all of them. None means every
    candidate in the pool must be considered.
    """
    geometry = _geometry(policy)
    return None if geometry is None else geometry.radius_km


@dataclass(frozen=True)
class SearchBox:
    """A lat/lng box on the pool's ``field`` holding every candidate the policy may accept."""

    field: str
    min_lat: float
    max_lat: float
    min_lng: float
    max_lng: float


def search_box(policy: CompiledPolicy, order: dict[str, Any]) -> SearchBox | None:
    """Where to look for ``order``'s candidates, for a database prefilter; None: everywhere.

    The box is :func:`~dispatchflow.rules.geo.bbox` around the order's location
    (the path the policy's distance clause reads, e.g. ``work_order.location``)
    with :func:`policy_radius_km`; ``field`` is the pool entity's geo field the
    clause compares it with. None when the policy has no radius or the order has
    no location there; then every candidate must be fetched.
    """
    geometry = _geometry(policy)
    if geometry is None:
        return None
    point = _order_point(order, geometry.order_steps)
    if point is None:
        return None
    radius = geometry.radius_km * (1 + _RADIUS_SLACK) + _RADIUS_SLACK
    return SearchBox(geometry.pool_field, *bbox(point[0], point[1], radius))


def _geometry(policy: CompiledPolicy) -> _Geometry | None:
    try:
        return _GEOMETRY[policy]
    except KeyError:
        pass
    decl = policy.decl
    found: _Geometry | None = None
    if decl.entity != decl.pool:
        for clause in decl.requires:
            for part in ast.conjuncts(clause.condition):
                bound = _distance_bound(part, decl.entity, decl.pool)
                if bound is None:
                    continue
                km, order_steps, pool_field = bound
                if found is None:
                    found = _Geometry(km, clause.label, order_steps, pool_field)
                elif (order_steps, pool_field) == (found.order_steps, found.pool_field):
                    found = _Geometry(max(km, found.radius_km), found.label,
                                      order_steps, pool_field)
    _GEOMETRY[policy] = found
    return found


def _distance_bound(node: ast.Expr, entity: str,
                    pool: str) -> tuple[float, tuple[str, ...], str] | None:
    """``(km, order path steps, pool field)`` if ``node`` bounds the order-candidate distance."""
    if not isinstance(node, ast.Compare):
        return None
    if node.op in ("<=", "<"):
        call, limit = node.left, node.right
    elif node.op in (">=", ">"):
        call, limit = node.right, node.left
    else:
        return None
    if not (isinstance(call, ast.Call) and call.name == "distance_km" and len(call.args) == 2
            and isinstance(limit, ast.Literal) and limit.kind in ("distance", "number")
            and isinstance(limit.value, int | float) and not isinstance(limit.value, bool)):
        return None
    by_root = {a.root: a for a in call.args if isinstance(a, ast.Path)}
    order, cand = by_root.get(entity), by_root.get(pool)
    if order is None or cand is None or len(cand.steps) != 1:
        return None
    return max(float(limit.value), 0.0), tuple(s.name for s in order.steps), cand.steps[0].name


def _order_point(order: Mapping[str, Any], steps: tuple[str, ...]) -> tuple[float, float] | None:
    value: Any = order
    for name in steps:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return point_of(value)


# ------------------------------------------------------------------ the pool


class CandidatePool:
    """Candidate records (dicts with an ``id``) and a spatial index of their locations.

    Build one with :meth:`from_records`; keep it warm with :meth:`upsert` and
    :meth:`remove` (a long-lived pool is fastest: filter results are memoised per
    record). Records are not copied: after changing a record in place (its
    location, ``on_duty``, skills, level: any field a policy's filters read) call
    :meth:`upsert` with it again, or searches may use the old values. Do not
    mutate :attr:`index` directly.
    Records whose location is missing or malformed are kept but not indexed:
    they are outside every radius.
    """

    def __init__(self, location_field: str = "location", *,
                 cell_km: float = DEFAULT_CELL_KM) -> None:
        self.location_field = location_field
        self.index = GridIndex(cell_km)
        self._records: dict[CandidateId, dict[str, Any]] = {}
        self._screens: WeakKeyDictionary[CompiledPolicy, Screen] = WeakKeyDictionary()

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], location_field: str = "location",
                     *, cell_km: float = DEFAULT_CELL_KM) -> CandidatePool:
        """A pool holding ``records`` (a later record with the same id replaces an earlier one).

        Raises ValueError if a record has no ``id``.
        """
        pool = cls(location_field, cell_km=cell_km)
        by_id: dict[CandidateId, dict[str, Any]] = {}
        for record in records:
            try:
                by_id[record["id"]] = record
            except (KeyError, TypeError):
                pool.upsert(record)  # raises the explanatory error
        pool._records = by_id
        keys, lats, lngs, items = [], [], [], []
        for cid, record in by_id.items():
            point = point_of(record.get(location_field))
            if point is not None and -90 <= point[0] <= 90 and -180 <= point[1] <= 180:
                keys.append(cid)
                lats.append(point[0])
                lngs.append(point[1])
                items.append(record)
        pool.index.insert_many(keys, lats, lngs, items)
        return pool

    def upsert(self, record: dict[str, Any]) -> None:
        """Add ``record`` or replace the one with its id, re-indexing it.

        Raises ValueError if the record has no ``id``.
        """
        try:
            cid = record["id"]
        except (KeyError, TypeError):
            got = sorted(record) if isinstance(record, dict) else record
            raise ValueError(f"a candidate record needs an 'id' (got {got!r})") from None
        self._records[cid] = record
        index = self.index
        point = point_of(record.get(self.location_field))
        if point is None or not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
            if cid in index:
                index.remove(cid)
            return
        index.insert(cid, point[0], point[1], record)
        if self._screens:
            slot = index.slot(cid)
            for screen in self._screens.values():
                screen.forget(slot)

    def remove(self, cid: CandidateId) -> bool:
        """Forget candidate ``cid``; False if it was not in the pool."""
        if self._records.pop(cid, None) is None:
            return False
        if cid in self.index:
            self.index.remove(cid)
        return True

    def get(self, cid: CandidateId) -> dict[str, Any] | None:
        """The record with id ``cid``, or None."""
        return self._records.get(cid)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, cid: object) -> bool:
        return cid in self._records

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._records.values())

    def within(self, lat: float, lng: float, km: float, *, distances: bool = False,
               ) -> tuple[list[dict[str, Any]], list[float] | None]:
        """Records within ``km`` of ``(lat, lng)`` and, if asked, their distances (km)."""
        records, dist = self.index.within(lat, lng, km, distances=distances)
        return records, (None if dist is None else dist.tolist())

    def _unindexed_records(self) -> list[dict[str, Any]]:
        """Records without a usable location (outside every radius)."""
        if len(self._records) == len(self.index):
            return []
        return [r for cid, r in self._records.items() if cid not in self.index]

    def _screen(self, policy: CompiledPolicy) -> Screen | None:
        """The memo of ``policy``'s leading filters over this pool (None: nothing to memoise)."""
        screen = self._screens.get(policy)
        if screen is None:
            filters = screen_filters(policy)
            if not filters:
                return None
            screen = self._screens[policy] = Screen(filters)
        return screen


# ------------------------------------------------------------------ search


@dataclass
class SearchResult:
    """What :func:`search` found: eligible candidates (unranked) and exclusion counts.

    ``excluded`` maps a filter label (or :data:`ALREADY_TRIED`) to a count, in
    filter order; ``considered`` counts the candidates the policy's filters
    judged (inside the radius and not already tried); ``radius_km`` is the radius
    that bounded the search, None if the whole pool was scanned.
    """

    scored: list[Scored]
    excluded: dict[str, int]
    considered: int
    radius_km: float | None


def search(policy: CompiledPolicy, order: dict[str, Any], pool: CandidatePool, now: datetime,
           skip: Any = frozenset(), *, want_km: bool = False,
           order_location: str = "location") -> SearchResult:
    """Run ``policy`` for ``order`` on the candidates the index cannot rule out.

    The index bounds the search when the policy has a radius, the pool indexes
    the field its distance clause reads, and the order has a location there;
    otherwise the whole pool is searched. ``skip`` (a set of ids) are counted as
    already tried. With ``want_km`` each eligible candidate's distance from the
    order (km) is filled in (the order's location is the distance clause's path,
    or else its ``order_location`` field); it is None when either is unknown.
    """
    geometry = _geometry(policy)
    point = None
    if geometry is not None and geometry.pool_field == pool.location_field:
        point = _order_point(order, geometry.order_steps)
    index = pool.index
    unindexed: list[dict[str, Any]] = []
    radius = None
    if geometry is not None and point is not None:
        radius = geometry.radius_km
        slots, dist = index.query(point[0], point[1],
                                  radius * (1 + _RADIUS_SLACK) + _RADIUS_SLACK,
                                  distances=want_km)
        beyond = len(pool) - len(slots)
    else:
        slots, dist, beyond = index.all_slots(), None, 0
        unindexed = pool._unindexed_records()
        if want_km:
            steps = geometry.order_steps if geometry is not None else (order_location,)
            point = _order_point(order, steps)
            if point is not None:
                dist = index.distances(slots, point[0], point[1])
    fails = [0] * len(policy.filter_labels)
    tried = 0
    if skip:
        skipped = [index.slot(cid) for cid in skip if cid in index]
        if skipped:
            hit = np.isin(slots, skipped)
            if hit.any():
                tried = int(hit.sum())
                slots, dist = slots[~hit], (None if dist is None else dist[~hit])
        kept = [r for r in unindexed if r["id"] not in skip]
        tried += len(unindexed) - len(kept)
        unindexed = kept
    considered = len(slots) + len(unindexed)
    screen = pool._screen(policy)
    if screen is not None and len(slots):
        passed, counts = screen.apply([order], None, slots, index.items_of, index.capacity)
        for flt, n in zip(screen.filters, counts, strict=True):
            fails[flt.index] += n
        slots, dist = slots[passed], (None if dist is None else dist[passed])
    scored: list[Scored] = []
    _run_policy(policy, order, now, index.items_of(slots),
                None if dist is None else dist.tolist(), want_km, scored, fails)
    _run_policy(policy, order, now, unindexed, None, want_km, scored, fails)
    excluded: dict[str, int] = {}
    for label, n in zip(policy.filter_labels, fails, strict=True):
        if beyond and geometry is not None and label == geometry.label:
            n, beyond = n + beyond, 0
        if n:
            excluded[label] = excluded.get(label, 0) + n
    if tried:
        excluded[ALREADY_TRIED] = tried
    return SearchResult(scored, excluded, considered, radius)


def _run_policy(policy: CompiledPolicy, order: dict[str, Any], now: datetime,
                candidates: list[dict[str, Any]], dist: list[float] | None, want_km: bool,
                scored: list[Scored], fails: list[int]) -> None:
    """``policy.evaluate`` on each candidate: eligible ones into ``scored``, others counted."""
    append = scored.append
    evaluate = policy.evaluate
    if dist is None:
        for record in candidates:
            failed, score = evaluate(order, record, now)
            if failed < 0:
                append((score, record["id"], record, None))  # type: ignore[arg-type]
            else:
                fails[failed] += 1
        return
    for record, km in zip(candidates, dist, strict=True):
        failed, score = evaluate(order, record, now)
        if failed < 0:
            append((score, record["id"], record, km))  # type: ignore[arg-type]
        else:
            fails[failed] += 1


def search_many(policy: CompiledPolicy, orders: Sequence[dict[str, Any]], pool: CandidatePool,
                now: datetime, skips: Sequence[Any] | None = None, *,
                order_location: str = "location") -> list[list[Scored]]:
    """The eligible candidates of each order, with km: ``search(..., want_km=True).scored``.

    For a burst: the radius pairs of all orders come from one vectorised
    :meth:`~dispatchflow.rules.geo.GridIndex.pairs_within`, so the per-order cost
    is only the policy's. Exclusion counts are not computed. ``skips`` holds one
    set of ids to leave out per order (or None).
    """
    geometry = _geometry(policy)
    out: list[list[Scored] | None] = [None] * len(orders)
    rows_of: list[int] = []
    points: list[tuple[float, float]] = []
    if geometry is not None and geometry.pool_field == pool.location_field:
        for i, order in enumerate(orders):
            point = _order_point(order, geometry.order_steps)
            if point is not None:
                rows_of.append(i)
                points.append(point)
    if geometry is not None and rows_of:
        radius = geometry.radius_km * (1 + _RADIUS_SLACK) + _RADIUS_SLACK
        lats, lngs = np.array([p[0] for p in points]), np.array([p[1] for p in points])
        rows, slots, _ = pool.index.pairs_within(lats, lngs, radius, distances=False)
        screen = pool._screen(policy)
        if screen is not None and len(slots):
            passed, _ = screen.apply([orders[i] for i in rows_of], rows, slots,
                                     pool.index.items_of, pool.index.capacity)
            rows, slots = rows[passed], slots[passed]
        dist = pool.index.distances(slots, lats[rows], lngs[rows])
        for i in rows_of:
            out[i] = []
        evaluate = policy.evaluate
        for r, record, km in zip(rows.tolist(), pool.index.items_of(slots), dist.tolist(),
                                 strict=True):
            i = rows_of[r]
            cid = record["id"]
            if skips is not None and skips[i] and cid in skips[i]:
                continue
            failed, score = evaluate(orders[i], record, now)
            if failed < 0:
                out[i].append((score, cid, record, km))
    return [found if found is not None else
            search(policy, order, pool, now, skips[i] if skips is not None else frozenset(),
                   want_km=True, order_location=order_location).scored
            for i, (order, found) in enumerate(zip(orders, out, strict=True))]


def rank(policy: CompiledPolicy, order: dict[str, Any], now: datetime,
         scored: list[Scored], limit: int | None = None) -> list[Scored]:
    """``scored`` sorted by score desc, then the policy's tiebreaks, then id (in place).

    Tiebreak keys are computed only for runs of equal scores, and with a
    ``limit`` only for runs reaching into the first ``limit`` places.
    """
    scored.sort(key=itemgetter(0), reverse=True)  # stable: equal scores keep their order
    n = len(scored)
    stop = n if limit is None else min(limit, n)
    tie = policy.tiebreak_key
    i = 0
    while i < stop:
        j = i + 1
        while j < n and scored[j][0] == scored[i][0]:
            j += 1
        if j - i > 1:
            scored[i:j] = sorted(scored[i:j], key=lambda s: (tie(order, s[2], now), id_key(s[1])))
        i = j
    return scored


def id_key(cid: Any) -> tuple[int, Any]:
    """Sort key for candidate ids: numbers before strings, so mixed pools still sort."""
    return (0, cid) if isinstance(cid, int | float) else (1, str(cid))


def as_id_set(ids: Iterable[CandidateId] | None) -> Any:
    """``ids`` as something with fast ``in`` (a frozenset unless it already is a set)."""
    if not ids:
        return frozenset()
    return ids if isinstance(ids, set | frozenset | dict) else frozenset(ids)
