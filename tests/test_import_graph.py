"""No import cycles between modules, and imports point down the layers only.

The graph is read from the source with :mod:`ast` (nothing is imported): every
``import`` a module executes counts — at the top, inside functions, anywhere —
except those under ``if TYPE_CHECKING:``, which only the type checker runs.
``from package import name`` is an edge to ``package.name`` when that is a
module, else to ``package`` itself.

The layers, lowest first (a module may import its own layer and those below):

========================  ====================================================
errors, lru               exceptions every layer raises; a bounded per-version cache
dsl                       the language: loading, checking, compiling bundles
rules, flows, forms       pure decisions, process semantics, forms
lsp                       the language server for editors (never the platform)
platform (config,         settings and named tunables
defaults)
platform.store            database, system and entity tables, versions
platform.live             the change feed (audit and timeline rows) and its brokers
platform.records          the records service, authorization, users, files
platform.notify           notifications: plans, templates, transports
platform.runtime          the running app, outbox runner, steps, flows, timers
platform.dispatch         rounds, offers, batches, manual assignment
platform.intake           channels and CSV import
platform.assembly         the composition root: wires the services, job registry
platform.demo             the demo data and living city (uses assembled runtimes)
web                       the Flask app and its blueprints
cli                       the ``dispatchflow`` commands
========================  ====================================================
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import pytest

#: Layers, lowest first; a module belongs to the longest prefix that names it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dispatchflow", "dispatchflow.errors", "dispatchflow.lru"),
    ("dispatchflow.dsl",),
    ("dispatchflow.rules", "dispatchflow.flows", "dispatchflow.forms"),
    ("dispatchflow.lsp",),
    ("dispatchflow.platform", "dispatchflow.platform.config", "dispatchflow.platform.defaults"),
    ("dispatchflow.platform.store",),
    ("dispatchflow.platform.live",),
    ("dispatchflow.platform.records",),
    ("dispatchflow.platform.notify",),
    ("dispatchflow.platform.runtime",),
    ("dispatchflow.platform.dispatch",),
    ("dispatchflow.platform.intake",),
    ("dispatchflow.platform.assembly",),
    ("dispatchflow.platform.demo",),
    ("dispatchflow.web",),
    ("dispatchflow.cli",),
)


def package_modules(package: str = "dispatchflow") -> dict[str, Path]:
    """Every module of ``package``: dotted name -> source file."""
    root = Path(str(resources.files(package)))
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def executed_imports(source: str, module: str, is_package: bool,
                     known: Iterable[str]) -> set[str]:
    """Modules among ``known`` that ``module`` imports when it runs."""
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name:
                    found.add(name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in known:
                    found.add(sub)
                elif target in known:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """dispatchflow's executed imports between its own modules."""
    modules = package_modules()
    return {name: executed_imports(path.read_text("utf-8"), name,
                                   path.name == "__init__.py", modules)
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def layer_of(module: str) -> int:
    """The rank of ``module``'s layer (0 = lowest)."""
    best, rank = "", -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, i
    if rank < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return rank


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import from a module to one in a higher layer, as 'a -> b'."""
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if layer_of(b) > layer_of(a))


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_imports_point_down_the_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_every_module_is_in_a_layer() -> None:
    for module in import_graph():
        layer_of(module)


# ------------------------------------------------------------------ the detector


@pytest.mark.parametrize("source, expected", [
    ("from .b import x", {"p.b"}),
    ("from . import b", {"p.b"}),
    ("from .. import q", {"q"}),
    ("import p.b.c", {"p.b"}),
    ("def f():\n    from .b import x\n", {"p.b"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import x\n", set()),
    ("import typing\nif typing.TYPE_CHECKING:\n    from .b import x\nelse:\n    from . import b\n",
     {"p.b"}),
    ("from .c import x", set()),  # not one of ours
])
def test_detector_reads_executed_imports(source: str, expected: set[str]) -> None:
    assert executed_imports(source, "p.a", False, {"p", "p.a", "p.b", "q"}) == expected


def test_detector_finds_a_cycle_and_an_upward_import() -> None:
    graph = {"dispatchflow.platform.store.db": {"dispatchflow.platform.runtime.runner"},
             "dispatchflow.platform.runtime.runner": {"dispatchflow.platform.store.db"}}
    assert cycles(graph) == [sorted(graph)]
    assert upward_imports(graph) == [
        "dispatchflow.platform.store.db -> dispatchflow.platform.runtime.runner"]


def test_cli_command_groups_import_only_common() -> None:
    """``cli/__init__`` wires the groups; a group imports ``cli.common``, never another."""
    graph = import_graph()
    wrong = sorted(f"{a} -> {b}" for a, targets in graph.items()
                   if a.startswith("dispatchflow.cli.") and a != "dispatchflow.cli.__main__"
                   for b in targets
                   if b.startswith("dispatchflow.cli") and b != "dispatchflow.cli.common")
    assert wrong == []
