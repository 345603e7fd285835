"""The ``dispatchflow`` command line. Thin: parses arguments, calls the layers.

Exit codes: 0 success, 1 problems found (diagnostics with errors, failing
bundle tests), 2 usage or I/O errors.
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
from ..dsl.compiler import App, CompileResult, compile_bundle
from ..dsl.diagnostics import DiagnosticBag, render_json, render_text
from ..dsl.parser import parse_expression
from ..dsl.source import Origin, SourceFile
from ..dsl.types import entity_type
from ..dsl.values import coerce_record, parse_datetime
from ..errors import DispatchflowError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


@click.group()
@click.version_option(package_name="dispatchflow")
def main() -> None:
    """dispatchflow: rules platform for field-service work orders (工单) and dispatch (派单)."""


def _compiled_app(bundle: str) -> App:
    """Compile BUNDLE or exit: 2 when it is not a folder, 1 (diagnostics shown) on errors."""
    if not Path(bundle).is_dir():
        click.echo(f"{bundle}: not a folder", err=True)
        sys.exit(EXIT_USAGE)
    result = _compile_or_report(bundle, "text")
    if result.app is None:
        sys.exit(EXIT_PROBLEMS)
    return result.app


def _template_diagnostics(app: App) -> list[Any]:
    """Notification template problems (unknown fields, filters, size) as E1024 errors."""
    import re

    from ..dsl.diagnostics import Diagnostic, Severity
    from ..platform.notify.templates import template_problems

    out = []
    for file, message in template_problems(app):
        part = re.search(r"' (subject|body)(?:\.(zh|en))?: ", message)
        lines = app.sources.get(file, "").splitlines()
        line = 0
        if part:
            key = re.compile(rf"^\s*{part.group(1)}:")
            line = next((i for i, text in enumerate(lines, 1) if key.match(text)), 0)
            if part.group(2):
                sub = re.compile(rf"^\s+{part.group(2)}:")
                line = next((i for i, text in enumerate(lines, 1)
                             if i > line and sub.match(text)), line)
        column = len(lines[line - 1]) - len(lines[line - 1].lstrip()) + 1 if line else 0
        out.append(Diagnostic(Severity.ERROR, "E1024", message, file, line, column,
                              hint="templates see the record by its entity name (and as "
                                   "`record`), `notification`, `now` and `locale`",
                              source_line=lines[line - 1] if line else None))
    return out


def _compile_or_report(bundle: str, fmt: str, against_env: bool = False) -> CompileResult:
    result = compile_bundle(bundle)
    if result.app is not None:
        # Flow graph and calendar checks live in the flows layer, above the compiler.
        from ..flows.analysis import flow_diagnostics
        from ..flows.calendar import calendar_diagnostics

        extra = flow_diagnostics(result.app) + calendar_diagnostics(result.app) + \
            _template_diagnostics(result.app)
        if against_env:
            extra += _environment_diagnostics(result.app)
        result = CompileResult(None if any(d.is_error for d in extra) else result.app,
                               sorted([*result.diagnostics, *extra], key=lambda d: d.sort_key()))
    if result.diagnostics or fmt == "json":
        out = render_json(result.diagnostics) if fmt == "json" else render_text(result.diagnostics)
        click.echo(out, err=fmt != "json" and not result.ok)
    return result


def _environment_diagnostics(app: App) -> list[Any]:
    """Channels lacking configuration in this environment, as E9001 errors."""
    from ..dsl.diagnostics import Diagnostic, Severity
    from ..platform.notify.setup import missing_configuration

    out = []
    for m in missing_configuration(app, resolve=True):
        lines = app.sources.get(m.file, "").splitlines()
        line = next((i for i, text in enumerate(lines, 1) if text.startswith(f"{m.key}:")), 0)
        out.append(Diagnostic(Severity.ERROR, "E9001", str(m), m.file, line, 1 if line else 0,
                              hint=m.hint, source_line=lines[line - 1] if line else None))
    return out


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text for people, json for editors and CI")
@click.option("--env", "against_env", is_flag=True,
              help="also check the channels against this environment: intake secrets, SMTP, "
                   "webhook URLs, signing secret and destinations")
def check(bundle: str, fmt: str, against_env: bool) -> None:
    """Check BUNDLE: schemas, syntax, names and types; report every problem."""
    if not Path(bundle).is_dir():
        click.echo(f"{bundle}: not a folder", err=True)
        sys.exit(EXIT_USAGE)
    started = time.perf_counter()
    result = _compile_or_report(bundle, fmt, against_env)
    if fmt == "text" and result.ok:
        app = result.app
        assert app is not None
        click.echo(f"ok: {app.name} {app.version}: {len(app.entities)} entities, "
                   f"{len(app.rulesets)} rulesets, {len(app.tables)} tables, "
                   f"{len(app.policies)} dispatch policies, {len(app.flows)} flows, "
                   f"{len(app.forms)} forms ({(time.perf_counter() - started) * 1000:.0f} ms)")
    sys.exit(EXIT_OK if result.ok else EXIT_PROBLEMS)


@main.command("test")
@click.argument("bundle", type=click.Path(file_okay=False))
def test_bundle(bundle: str) -> None:
    """Run BUNDLE's tests/*.yaml cases; report pass/fail and unreached rules and rows."""
    from ..rules.bundle_tests import run_bundle_tests

    report = run_bundle_tests(_compiled_app(bundle))
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


@main.command()
@click.argument("directory", type=click.Path())
def init(directory: str) -> None:
    """Create a minimal bundle in DIRECTORY that passes check and test."""
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        click.echo(f"{directory}: exists and is not empty; choose a new folder", err=True)
        sys.exit(EXIT_USAGE)
    starter = resources.files("dispatchflow").joinpath("starter_bundle")
    with resources.as_file(starter) as src:
        shutil.copytree(src, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    click.echo(f"created {directory}; next: dispatchflow check {directory} && "
               f"dispatchflow test {directory}")


@main.command("eval")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.argument("expression")
@click.option("--record", "record_file", type=click.Path(dir_okay=False),
              help="YAML/JSON file: {entity_name: {field: value}, ...}")
@click.option("--now", "now_text", default=None, help="evaluation time (ISO), default: now")
def eval_cmd(bundle: str, expression: str, record_file: str | None,
             now_text: str | None) -> None:
    """Evaluate EXPRESSION against records of BUNDLE's entities (try an expression)."""
    app = _compiled_app(bundle)
    data: dict[str, Any] = {}
    if record_file:
        try:
            data = yaml.safe_load(Path(record_file).read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            click.echo(f"{record_file}: cannot read: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        if not isinstance(data, dict) or any(k not in app.entities for k in data):
            click.echo(f"{record_file}: expected a mapping of entity name to record; entities: "
                       f"{', '.join(sorted(app.entities))}", err=True)
            sys.exit(EXIT_USAGE)
    bag = DiagnosticBag()
    bag.add_source(SourceFile("<expression>", expression))
    roots = list(app.entities)
    node = parse_expression(expression, Origin("<expression>"), bag)
    typed = None
    if node is not None:
        scope = Scope({name: entity_type(name) for name in roots}, dict(app.entities))
        typed = ExprChecker(scope, bag, "<expression>").check(node)
    if bag.has_errors or typed is None:
        click.echo(render_text(bag.sorted()), err=True)
        sys.exit(EXIT_PROBLEMS)
    try:
        records = {name: coerce_record(app.entities[name], data.get(name, {}), app.entities,
                                       app.timezone) for name in roots}
        now = parse_datetime(now_text, app.timezone) if now_text else \
            datetime.now(ZoneInfo(app.timezone))
        fn = compile_expression(typed, roots)
        value = fn(*(records[name] for name in roots), now)
    except DispatchflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    except (TypeError, ValueError, AttributeError) as exc:
        click.echo(f"error: evaluation failed: {exc} (is a required field missing from the "
                   "record?)", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"{_show(value)}  : {typed.type}")


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


# ------------------------------------------------------------------ versions


def _database() -> Any:
    """An engine on DATABASE_URL (default: the embedded SQLite file) with system tables."""
    from ..platform.config import Settings
    from ..platform.store.db import create_system_tables, make_engine

    engine = make_engine(Settings.from_env().database_url)
    create_system_tables(engine)
    return engine


def _who() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return None


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--dry-run", is_flag=True, help="print the migration plan; change nothing")
@click.option("--allow-destructive", is_flag=True,
              help="allow steps that delete data (dropped fields, entities, narrowed types)")
@click.option("--note", default=None, help="a note stored with the version")
def publish(bundle: str, dry_run: bool, allow_destructive: bool, note: str | None) -> None:
    """Publish BUNDLE as the next app version and migrate its tables (DATABASE_URL)."""
    from ..platform.store.migrate import DestructiveChangeRefused
    from ..platform.store.versions import publish as publish_app

    app = _compiled_app(bundle)
    engine = _database()
    try:
        outcome = publish_app(engine, app, created_by=_who(), dry_run=dry_run,
                              allow_destructive=allow_destructive, note=note)
    except DestructiveChangeRefused as exc:
        n = len(exc.plan.destructive_steps)
        click.echo(exc.plan.text())
        click.echo(f"refused: {n} destructive step(s); re-run with --allow-destructive",
                   err=True)
        sys.exit(EXIT_PROBLEMS)
    except DispatchflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    finally:
        engine.dispose()
    if outcome.unchanged:
        click.echo(f"unchanged: version {outcome.number} is active with the same sources "
                   f"({app.digest[:12]})")
        return
    click.echo(outcome.plan.text())
    if dry_run:
        click.echo(f"dry run: nothing changed (this would be version {outcome.number})")
    else:
        click.echo(f"published version {outcome.number}")


@main.command("versions")
def versions_cmd() -> None:
    """List published app versions; * marks the active one."""
    from ..platform.store.versions import list_versions

    engine = _database()
    try:
        rows = list_versions(engine)
    finally:
        engine.dispose()
    if not rows:
        click.echo("no versions published yet; run: dispatchflow publish BUNDLE")
        return
    table = [("#", "", "bundle", "digest", "created (UTC)", "by", "note")] + [
        (str(v.number), "*" if v.active else "", v.bundle_version, v.digest[:12],
         v.created_at.strftime("%Y-%m-%d %H:%M"), v.created_by or "", v.note or "")
        for v in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


@main.command()
@click.argument("number", type=int)
def rollback(number: int) -> None:
    """Activate version NUMBER again; its tables change additively only (no data is lost)."""
    from ..platform.store.versions import rollback as rollback_to

    engine = _database()
    try:
        info = rollback_to(engine, number, created_by=_who())
    except DispatchflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    finally:
        engine.dispose()
    click.echo(f"active version: {info.number} ({info.app_name} {info.bundle_version}, "
               f"{info.digest[:12]})")


@main.command()
@click.argument("old")
@click.argument("new", required=False)
def diff(old: str, new: str | None) -> None:
    """Show what changed from OLD to NEW (rules, fields, tables, flows, ...).

    Each of OLD and NEW is a version number, "active", or a bundle folder. With
    one argument the active version is compared with it.
    """
    from ..platform.store.app_diff import diff_apps, render_changes

    if new is None:
        old, new = "active", old
    engine: Any = None
    try:
        apps = []
        for spec in (old, new):
            if Path(spec).is_dir():
                result = _compile_or_report(spec, "text")
                if result.app is None:
                    sys.exit(EXIT_PROBLEMS)
                apps.append(result.app)
                continue
            if spec != "active" and not spec.isdigit():
                click.echo(f"{spec}: neither a version number nor a bundle folder", err=True)
                sys.exit(EXIT_USAGE)
            from ..platform.store.versions import load_app

            engine = engine or _database()
            apps.append(load_app(engine, None if spec == "active" else int(spec)))
    except DispatchflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    finally:
        if engine is not None:
            engine.dispose()
    for line in render_changes(diff_apps(apps[0], apps[1])):
        click.echo(line)


def _register_more() -> None:
    """Commands that live in their own modules (they import the platform lazily)."""
    from . import dispatch as cli_dispatch
    from . import explain as cli_explain
    from . import intake as cli_import
    from . import jobs as cli_jobs
    from . import server as cli_server

    cli_server.register(main)
    cli_import.register(main)
    cli_jobs.register(main)
    cli_explain.register(main)
    cli_dispatch.register(main)


_register_more()

if __name__ == "__main__":
    main()
