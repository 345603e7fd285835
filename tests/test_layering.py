"""The pure layers import no web framework, database, queue or cache (STYLE.md point 1).

Source is parsed with :mod:`ast` rather than imported, so a forbidden import
hidden in a function body or an ``if TYPE_CHECKING`` block is still found and
nothing is executed.
"""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import pytest

PURE_PACKAGES = ("dispatchflow.dsl", "dispatchflow.rules", "dispatchflow.flows",
                 "dispatchflow.forms")
FORBIDDEN = ("flask", "sqlalchemy", "redis", "rq")
# Not pure (it serves stdio), but an editor's language server needs no database either.
SERVICE_FREE_PACKAGES = (*PURE_PACKAGES, "dispatchflow.lsp")


def _modules(package: str) -> list[Path]:
    root = Path(str(resources.files(package)))
    return sorted(root.rglob("*.py"))


def forbidden_imports(source: str, filename: str = "<src>") -> list[tuple[int, str]]:
    """(line, module) for every import of a forbidden top-level package in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.extend((node.lineno, name) for name in names
                     if name.split(".")[0] in FORBIDDEN)
    return found


@pytest.mark.parametrize("package", SERVICE_FREE_PACKAGES)
def test_pure_package_imports_no_io_framework(package: str) -> None:
    modules = _modules(package)
    assert modules, f"{package} has no modules to check"
    offenders = []
    for path in modules:
        for line, name in forbidden_imports(path.read_text("utf-8"), str(path)):
            offenders.append(f"{path}:{line}: imports {name}")
    assert offenders == []


def test_walk_covers_every_dsl_and_rules_module() -> None:
    names = {p.name for p in _modules("dispatchflow.dsl")}
    assert {"parser.py", "checker.py", "codegen.py", "tables.py", "compiler.py"} <= names
    names = {p.name for p in _modules("dispatchflow.rules")}
    assert {"ruleset.py", "decision_table.py", "policy.py", "engine.py"} <= names


@pytest.mark.parametrize("source, expected", [
    ("import flask", [(1, "flask")]),
    ("import os\nfrom sqlalchemy.orm import Session", [(2, "sqlalchemy.orm")]),
    ("def job():\n    import rq\n", [(2, "rq")]),
    ("import redis.client as rc", [(1, "redis.client")]),
    ("from . import flask", []),  # a sibling module that happens to be named flask
    ("import flask_babel_free_name_lookalike", []),
    ("import requests, rqueue", []),
])
def test_detector_finds_direct_imports_only(source: str, expected: list) -> None:
    assert forbidden_imports(source) == expected
