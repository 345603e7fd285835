"""How a rule set's generated code reads decision-table outputs (``sla_targets.x``).

Two bindings, chosen per table by the rule set generator:

- :class:`LazyTable` (tables whose first matching row is the answer): the
  outputs live in a local of the generated function, computed on first use
  from the table's inputs as the rules so far left the record, and reset after
  any ``set`` of a field the inputs read. A table is evaluated at most once per
  run unless its inputs change.
- :class:`GenericTable` (priority, collect, unproven unique/any): calls the
  engine's full evaluation with the current record each time it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..dsl import ast
from ..dsl.codegen import NOW, Emitter
from ..dsl.tables import DecisionTable

UNSET = object()  # sentinel: the lazy table local has not been computed yet


def fields_read(table: DecisionTable) -> frozenset[str]:
    """First-level fields of the context record that the table's inputs read."""
    names: set[str] = set()

    def walk(node: ast.Expr) -> None:
        if isinstance(node, ast.Path) and node.root == table.entity and node.steps:
            names.add(node.steps[0].name)
        for child in ast.children(node):
            walk(child)
    for inp in table.inputs:
        walk(inp.expr)
    return frozenset(names)


@dataclass
class LazyTable:
    table: DecisionTable
    lookup: Callable[..., Any]
    needs_record: bool

    @property
    def local(self) -> str:
        return f"_tb_{self.table.name}"

    def emit_path(self, path: ast.Path, emitter: Emitter) -> str:
        t = self.table
        fn = f"_lookup_{t.name}"
        emitter.consts[fn] = self.lookup
        emitter.consts["_UNSET"] = UNSET
        inputs = "".join(f"{emitter.emit(i.expr)}, " for i in t.inputs)
        record = emitter.current_record(t.entity) if self.needs_record else "None"
        call = f"{fn}({inputs}{record}, {NOW})"
        value = f"({self.local} if {self.local} is not _UNSET else ({self.local} := {call}))"
        index = [o.name for o in t.outputs].index(path.steps[0].name)
        tmp = emitter.tmp()
        return f"(None if ({tmp} := {value}) is None else {tmp}[{index}])"


@dataclass
class GenericTable:
    table: DecisionTable
    evaluate: Callable[[str, dict[str, Any], Any], dict[str, Any] | None]

    def emit_path(self, path: ast.Path, emitter: Emitter) -> str:
        emitter.consts["_table"] = self.evaluate
        table = self.table
        src = f"_table({table.name!r}, {emitter.current_record(table.entity)}, {NOW})"
        for step in path.steps:
            tmp = emitter.tmp()
            src = f"(None if ({tmp} := {src}) is None else {tmp}.get({step.name!r}))"
        return src
