"""Evaluate decision tables with DMN hit policies.

A table compiles into one generated function returning the numbers of the
matching rows (inputs evaluated once, each row's cells tested in order); the
output cells of the chosen rows are evaluated afterwards. Hit policies:

- ``unique``: at most one row may match (more is an :class:`EvaluationError`).
- ``first``: the first matching row in table order.
- ``priority``: among matching rows, the one whose output value comes first in
  the output's ``priority`` list.
- ``any``: several rows may match if they give the same outputs.
- ``collect``: every matching row; with ``aggregate`` the sum, min, max or
  count of the single output.

No matching row gives ``outputs = None`` (``[]`` / count 0 for collect).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..dsl.ast import Literal
from ..dsl.codegen import NOW, Emitter, compile_expression, compile_function, root_param
from ..dsl.tables import DecisionTable, cell_source
from ..errors import EvaluationError

AGGREGATES: dict[str, Callable[[list[Any]], Any]] = {
    "sum": lambda vals: sum(vals[1:], vals[0]) if vals else 0,
    "min": lambda vals: min(vals) if vals else None,
    "max": lambda vals: max(vals) if vals else None,
    "count": len,
}


@dataclass(frozen=True)
class TableResult:
    """``outputs``: a dict (single hit), list of dicts (collect), a value (aggregate) or None."""

    table: str
    outputs: Any
    rows: list[int]  # 1-based numbers of the rows that determined the result


class CompiledTable:
    """A decision table ready to evaluate: ``evaluate(record, now)``."""

    def __init__(self, table: DecisionTable) -> None:
        self.table = table
        root = root_param(table.entity)
        emitter = Emitter()
        body = []
        for i, inp in enumerate(table.inputs):
            body.append(f"_i{i} = {emitter.emit(inp.expr)}")
        body.append("_hits = []")
        for r, row in enumerate(table.rows):
            conds = [cell_source(cell, f"_i{i}", emitter) for i, cell in enumerate(row.cells)]
            body.append(f"if {' and '.join(conds) or 'True'}:")
            body.append(f"    _hits.append({r})")
        body.append("return _hits")
        self._match = compile_function(f"_table_{table.name}", [root, NOW], body, emitter,
                                       f"<table {table.name} in {table.file}>")
        self._outputs = [[compile_expression(e, [table.entity], f"<table {table.name}>")
                          for e in row.outputs] for row in table.rows]
        prio = next((i for i, o in enumerate(table.outputs) if o.priority), None)
        self._priority_index = prio

    def matching_rows(self, record: dict[str, Any], now: datetime) -> list[int]:
        """0-based indexes of every row whose input cells all match."""
        return self._match(record, now)

    def _row_outputs(self, r: int, record: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {o.name: fn(record, now)
                for o, fn in zip(self.table.outputs, self._outputs[r], strict=True)}

    def evaluate(self, record: dict[str, Any], now: datetime) -> TableResult:
        """Apply the hit policy; raises EvaluationError on a unique/any violation."""
        t = self.table
        try:
            hits = self.matching_rows(record, now)
        except (TypeError, AttributeError, ValueError, re.error) as exc:
            raise EvaluationError(f"table {t.name} failed on this record: {exc}", file=t.file,
                                  hint="check the record's field values") from exc
        numbers = [t.rows[r].number for r in hits]
        if t.hit == "collect":
            outs = [self._row_outputs(r, record, now) for r in hits]
            if t.aggregate:
                values = [o[t.outputs[0].name] for o in outs if o[t.outputs[0].name] is not None]
                if t.aggregate == "sum" and t.outputs[0].type.kind == "duration":
                    return TableResult(t.name, sum(values, timedelta()), numbers)
                return TableResult(t.name, AGGREGATES[t.aggregate](values), numbers)
            return TableResult(t.name, outs, numbers)
        if not hits:
            return TableResult(t.name, None, [])
        if t.hit == "first":
            return TableResult(t.name, self._row_outputs(hits[0], record, now), numbers[:1])
        if t.hit == "unique":
            if len(hits) > 1:
                raise EvaluationError(f"table {t.name} (hit unique): rows "
                                      f"{', '.join(map(str, numbers))} all match", file=t.file,
                                      hint="make the rows exclusive (dispatchflow check "
                                           "reports overlaps)")
            return TableResult(t.name, self._row_outputs(hits[0], record, now), numbers)
        if t.hit == "any":
            outs = [self._row_outputs(r, record, now) for r in hits]
            if any(o != outs[0] for o in outs[1:]):
                raise EvaluationError(f"table {t.name} (hit any): rows "
                                      f"{', '.join(map(str, numbers))} match with different "
                                      "outputs", file=t.file)
            return TableResult(t.name, outs[0], numbers)
        # priority
        assert self._priority_index is not None
        out_def = t.outputs[self._priority_index]
        order = {v: i for i, v in enumerate(out_def.priority or ())}
        ranked = [(self._row_outputs(r, record, now), r) for r in hits]
        best, chosen = min(ranked, key=lambda o: order.get(o[0][out_def.name], len(order)))
        return TableResult(t.name, best, [t.rows[chosen].number])


def compile_lookup(table: DecisionTable) -> tuple[Callable[..., Any], bool] | None:
    """A fast lookup ``f(*input_values, record, now) -> outputs tuple | None``.

    Only for tables where the first matching row is the answer: hit ``first``,
    or ``unique`` / ``any`` when analysis proved the rows exclusive. The second
    result says whether an output cell reads the record (otherwise callers may
    pass None for it). Returns None for other tables.
    """
    if not (table.hit == "first" or (table.hit in ("unique", "any") and table.exclusive)):
        return None
    emitter = Emitter()
    root = root_param(table.entity)
    params = [f"_i{i}" for i in range(len(table.inputs))] + [root, NOW]
    needs_record = False
    body = []
    for row in table.rows:
        conds = [cell_source(cell, f"_i{i}", emitter) for i, cell in enumerate(row.cells)]
        if all(isinstance(o, Literal) for o in row.outputs):
            outputs = emitter.const(tuple(o.value for o in row.outputs))  # type: ignore[attr-defined]
        else:
            needs_record = True
            outputs = "(" + "".join(f"{emitter.emit(o)}, " for o in row.outputs) + ")"
        body.append(f"if {' and '.join(conds) or 'True'}:")
        body.append(f"    return {outputs}")
    body.append("return None")
    fn = compile_function(f"_lookup_{table.name}", params, body, emitter,
                          f"<table {table.name} in {table.file}>")
    return fn, needs_record
