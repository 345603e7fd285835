"""Commands on a bundle folder: ``check``, ``test``, ``init`` and ``eval``.

None of them needs a database: they compile the bundle (see
:func:`.common.compile_or_report`) and run the pure layers on it.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import yaml

from ..dsl.checker import ExprChecker, Scope
from ..dsl.codegen import compile_expression
from ..dsl.diagnostics import DiagnosticBag, render_text
from ..dsl.parser import parse_expression
from ..dsl.source import Origin, SourceFile
from ..dsl.types import entity_type
from ..dsl.values import coerce_record, parse_datetime
from ..errors import DispatchflowError
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    compile_or_report,
    compiled_app,
    exit_with,
    fail,
    require_folder,
)


def register(main: click.Group) -> None:
    """Add ``check``, ``test``, ``init`` and ``eval`` to the ``dispatchflow`` group."""
    for command in (check, test_bundle, init, eval_cmd):
        main.add_command(command)


@click.command()
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]),
              default="text", help="text for people, json for editors and CI, sarif (2.1.0) "
                                   "for code-scanning annotations")
@click.option("--env", "against_env", is_flag=True,
              help="also check the channels against this environment: intake secrets, SMTP, "
                   "webhook URLs, signing secret and destinations")
def check(bundle: str, fmt: str, against_env: bool) -> None:
    """Check BUNDLE: schemas, syntax, names and types; report every problem."""
    require_folder(bundle)
    started = time.perf_counter()
    result = compile_or_report(bundle, fmt, against_env)
    if fmt == "text" and result.ok:
        app = result.app
        assert app is not None
        click.echo(f"ok: {app.name} {app.version}: {len(app.entities)} entities, "
                   f"{len(app.rulesets)} rulesets, {len(app.tables)} tables, "
                   f"{len(app.policies)} dispatch policies, {len(app.flows)} flows, "
                   f"{len(app.forms)} forms ({(time.perf_counter() - started) * 1000:.0f} ms)")
    sys.exit(EXIT_OK if result.ok else EXIT_PROBLEMS)


@click.command("test")
@click.argument("bundle", type=click.Path(file_okay=False))
def test_bundle(bundle: str) -> None:
    """Run BUNDLE's tests/*.yaml cases; report pass/fail and unreached rules and rows."""
    from ..rules.bundle_tests import run_bundle_tests

    report = run_bundle_tests(compiled_app(bundle))
    for case in report.cases:
        mark = "PASS" if case.passed else "FAIL"
        click.echo(f"{mark} {case.name}  ({case.file}:{case.line})")
        for problem in case.problems:
            click.echo(f"     {problem}")
    passed = sum(c.passed for c in report.cases)
    failed = len(report.cases) - passed
    reached_rules = report.total_rules - len(report.unreached_rules)
    reached_rows = report.total_rows - len(report.unreached_rows)
    click.echo(f"\ncoverage: rules {reached_rules}/{report.total_rules}, "
               f"table rows {reached_rows}/{report.total_rows}")
    for rs, rule, file, line in report.unreached_rules:
        click.echo(f"  not reached: rule \"{rule}\" in ruleset {rs} ({file}:{line})")
    for table, row, file, line in report.unreached_rows:
        click.echo(f"  not reached: table {table} row {row} ({file}:{line})")
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(EXIT_OK if failed == 0 else EXIT_PROBLEMS)


@click.command()
@click.argument("directory", type=click.Path())
def init(directory: str) -> None:
    """Create a minimal bundle in DIRECTORY that passes check and test."""
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        exit_with(f"{directory}: exists and is not empty; choose a new folder", EXIT_USAGE)
    starter = resources.files("dispatchflow").joinpath("starter_bundle")
    with resources.as_file(starter) as src:
        shutil.copytree(src, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    click.echo(f"created {directory}; next: dispatchflow check {directory} && "
               f"dispatchflow test {directory}")


@click.command("eval")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.argument("expression")
@click.option("--record", "record_file", type=click.Path(dir_okay=False),
              help="YAML/JSON file: {entity_name: {field: value}, ...}")
@click.option("--now", "now_text", default=None, help="evaluation time (ISO), default: now")
def eval_cmd(bundle: str, expression: str, record_file: str | None,
             now_text: str | None) -> None:
    """Evaluate EXPRESSION against records of BUNDLE's entities (try an expression)."""
    app = compiled_app(bundle)
    data: dict[str, Any] = {}
    if record_file:
        try:
            data = yaml.safe_load(Path(record_file).read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            exit_with(f"{record_file}: cannot read: {exc}", EXIT_USAGE)
        if not isinstance(data, dict) or any(k not in app.entities for k in data):
            exit_with(f"{record_file}: expected a mapping of entity name to record; entities: "
                      f"{', '.join(sorted(app.entities))}", EXIT_USAGE)
    bag = DiagnosticBag()
    bag.add_source(SourceFile("<expression>", expression))
    roots = list(app.entities)
    node = parse_expression(expression, Origin("<expression>"), bag)
    typed = None
    if node is not None:
        scope = Scope({name: entity_type(name) for name in roots}, dict(app.entities))
        typed = ExprChecker(scope, bag, "<expression>").check(node)
    if bag.has_errors or typed is None:
        exit_with(render_text(bag.sorted()), EXIT_PROBLEMS)
    try:
        records = {name: coerce_record(app.entities[name], data.get(name, {}), app.entities,
                                       app.timezone) for name in roots}
        now = parse_datetime(now_text, app.timezone) if now_text else \
            datetime.now(ZoneInfo(app.timezone))
        fn = compile_expression(typed, roots)
        value = fn(*(records[name] for name in roots), now)
    except DispatchflowError as exc:
        fail(exc, EXIT_PROBLEMS)
    except (TypeError, ValueError, AttributeError) as exc:
        fail(f"evaluation failed: {exc} (is a required field missing from the record?)",
             EXIT_PROBLEMS)
    click.echo(f"{_show(value)}  : {typed.type}")


def _show(value: Any) -> str:
    """``value`` as JSON where it can be, else its ``repr``."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)
