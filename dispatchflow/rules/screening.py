"""Screening, pure: a dispatch policy's leading filters, memoised per candidate.

Most candidates near a work order fail one of the policy's first, simple
filters: off duty, lacking the order's skill, level too low. Such a filter reads
the order only through a few field paths (``work_order.category``) and never
calls ``now()``, so its result for a candidate depends only on the values at
those paths (the filter's *key*, e.g. ``("aircon",)``) and on the candidate
record. A :class:`Screen` keeps, per filter and key, an int8 array over the pool
index's slots (unknown / false / true / error), filled the first time a slot is
needed by running the policy's own compiled filter on a synthetic order that
holds just those values, and reset when the candidate's record is upserted.

A search then drops the candidates failing the leading filters with array
operations, counting each under the first filter it fails, exactly as
``policy.evaluate`` would, and runs ``evaluate`` only on the rest. A candidate on
which a filter raised is never screened out: ``evaluate`` reports the error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

from ..dsl import ast
from ..dsl.codegen import compile_expression
from .policy import CompiledPolicy

#: Cell states of a screen array.
UNKNOWN, FALSE, TRUE, ERROR = -1, 0, 1, 2
#: Distinct keys kept per filter before its memo is dropped (bounds memory when a
#: filter reads a free-text field).
MAX_KEYS = 64

_FILTERS: WeakKeyDictionary[CompiledPolicy, tuple[ScreenFilter, ...]] = WeakKeyDictionary()


@dataclass(frozen=True)
class ScreenFilter:
    """One leading ``require`` of a policy: ``fn(order, candidate, now)`` and its order paths."""

    index: int
    fn: Callable[..., Any]
    paths: tuple[tuple[str, ...], ...]

    def key(self, order: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The values this filter reads from ``order`` (type-tagged), or None if not memoisable.

        None when a value is unhashable (a list, a nested record) or a path runs
        through something that is not a record (the filter itself would fail).
        """
        values = []
        for steps in self.paths:
            value: Any = order
            for name in steps:
                if value is None:
                    break
                if not isinstance(value, Mapping):
                    return None
                value = value.get(name)
            try:
                hash(value)
            except TypeError:
                return None
            values.append((type(value), value))
        return tuple(values)

    def synthetic_order(self, key: tuple[Any, ...]) -> dict[str, Any]:
        """An order on which every path this filter reads has the value in ``key``."""
        order: dict[str, Any] = {}
        # longer paths first: a shorter one that is null must win over its children
        for steps, (_, value) in sorted(zip(self.paths, key, strict=True),
                                        key=lambda pv: -len(pv[0])):
            node = order
            for name in steps[:-1]:
                node = node.setdefault(name, {})
            node[steps[-1]] = value
        return order


def screen_filters(policy: CompiledPolicy) -> tuple[ScreenFilter, ...]:
    """The policy's leading filters that can be memoised (see the module docs), compiled once."""
    try:
        return _FILTERS[policy]
    except KeyError:
        pass
    decl = policy.decl
    found: list[ScreenFilter] = []
    if decl.entity != decl.pool:
        for i, clause in enumerate(decl.requires):
            paths = order_paths(clause.condition, decl.entity, decl.pool)
            if paths is None:
                break
            fn = compile_expression(clause.condition, [decl.entity, decl.pool], boolean=True)
            found.append(ScreenFilter(i, fn, tuple(sorted(paths))))
    _FILTERS[policy] = result = tuple(found)
    return result


def order_paths(node: ast.Expr, entity: str, pool: str) -> set[tuple[str, ...]] | None:
    """The order paths ``node`` reads; None if it reads another root or calls ``now()``."""
    if isinstance(node, ast.Path):
        if node.root == entity:
            return {tuple(s.name for s in node.steps)} if node.steps else None
        return set() if node.root == pool else None
    if isinstance(node, ast.Call) and node.name == "now":
        return None
    paths: set[tuple[str, ...]] = set()
    for child in ast.children(node):
        sub = order_paths(child, entity, pool)
        if sub is None:
            return None
        paths |= sub
    return paths


class Screen:
    """Memoised leading filters of one policy over one pool's index slots."""

    def __init__(self, filters: tuple[ScreenFilter, ...]) -> None:
        self.filters = filters
        self._memo: list[dict[tuple[Any, ...], np.ndarray]] = [{} for _ in filters]

    def forget(self, slot: int) -> None:
        """The record at ``slot`` changed (or the slot was reused): recompute it when needed."""
        for memo in self._memo:
            for cells in memo.values():
                if slot < len(cells):
                    cells[slot] = UNKNOWN

    def apply(self, orders: Sequence[Mapping[str, Any]], rows: np.ndarray | None,
              slots: np.ndarray, items_of: Callable[[np.ndarray], list[Any]],
              capacity: int) -> tuple[np.ndarray, list[int]]:
        """Which (order, candidate) pairs survive the leading filters, and failures per filter.

        Pair ``j`` is ``orders[rows[j]]`` (``orders[0]`` when ``rows`` is None) with
        the candidate at ``slots[j]``; ``items_of`` turns slots into records and
        ``capacity`` is the index's. Returns a keep mask over the pairs and, per
        filter, how many pairs failed it first.
        """
        live = np.arange(len(slots))  # pairs still passing and still screenable
        spared: list[np.ndarray] = []  # pairs a filter raised on: left to evaluate
        counts = [0] * len(self.filters)
        for k, flt in enumerate(self.filters):
            if not len(live):
                break
            groups = self._groups(flt, orders, rows, live, spared)
            if groups is None:
                break
            memo = self._memo[k]
            survivors = []
            for key, pairs in groups:
                cells = self._cells(memo, key, capacity)
                at = slots[pairs]
                state = cells[at]
                todo = state == UNKNOWN
                if todo.any():  # run the filter once per candidate, however many orders
                    fill = np.unique(at[todo])
                    cells[fill] = _run(flt, key, items_of(fill))
                    state = cells[at]
                passed = state == TRUE
                counts[k] += int(np.count_nonzero(state == FALSE))
                if not passed.all():
                    errors = state == ERROR
                    if errors.any():
                        spared.append(pairs[errors])
                    pairs = pairs[passed]
                survivors.append(pairs)
            live = survivors[0] if len(survivors) == 1 else np.concatenate(survivors)
        keep = np.zeros(len(slots), dtype=bool)
        keep[live] = True
        for pairs in spared:
            keep[pairs] = True
        return keep, counts

    @staticmethod
    def _groups(flt: ScreenFilter, orders: Sequence[Mapping[str, Any]], rows: np.ndarray | None,
                live: np.ndarray, spared: list[np.ndarray],
                ) -> list[tuple[tuple[Any, ...], np.ndarray]] | None:
        """The live pairs grouped by the filter's key of their order (None: stop screening).

        Pairs whose order has no key for this filter go to ``spared``.
        """
        if rows is None:
            key = flt.key(orders[0])
            return None if key is None else [(key, live)]
        live_rows = rows[live]
        group_of = np.full(len(orders), -1, dtype=np.intp)
        ids: dict[tuple[Any, ...], int] = {}
        for r in np.unique(live_rows).tolist():
            key = flt.key(orders[r])
            if key is not None:
                group_of[r] = ids.setdefault(key, len(ids))
        group = group_of[live_rows]
        if (group < 0).any():
            spared.append(live[group < 0])
        if not ids:
            return None
        return [(key, live[group == gid]) for key, gid in ids.items()]

    @staticmethod
    def _cells(memo: dict[tuple[Any, ...], np.ndarray], key: tuple[Any, ...],
               capacity: int) -> np.ndarray:
        cells = memo.get(key)
        if cells is None:
            if len(memo) >= MAX_KEYS:
                memo.clear()
            cells = memo[key] = np.full(capacity, UNKNOWN, dtype=np.int8)
        elif len(cells) < capacity:
            cells = memo[key] = np.concatenate(
                [cells, np.full(capacity - len(cells), UNKNOWN, dtype=np.int8)])
        return cells


def _run(flt: ScreenFilter, key: tuple[Any, ...], records: list[Any]) -> np.ndarray:
    """The filter's state for each record, on the synthetic order of ``key``."""
    order = flt.synthetic_order(key)
    fn = flt.fn
    out = []
    for record in records:
        try:
            out.append(TRUE if fn(order, record, None) else FALSE)
        except Exception:  # noqa: BLE001 - policy.evaluate will raise its own error
            out.append(ERROR)
    return np.array(out, dtype=np.int8)
