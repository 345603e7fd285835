"""What every command group shares: exit codes, errors, compiling a bundle, the runtime.

Exit codes, for every command: ``EXIT_OK`` (0) success, ``EXIT_PROBLEMS`` (1)
problems found (diagnostics with errors, failing bundle tests, refused changes),
``EXIT_USAGE`` (2) usage or I/O errors. The platform is imported lazily, so
``check`` and ``test`` never need a database.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ..dsl.compiler import App, CompileResult, compile_bundle
from ..dsl.diagnostics import render_json, render_sarif, render_text

if TYPE_CHECKING:
    from ..platform.assembly import Runtime

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def exit_with(text: str, code: int) -> NoReturn:
    """Print ``text`` on standard error and exit with ``code``."""
    click.echo(text, err=True)
    sys.exit(code)


def fail(message: object, code: int) -> NoReturn:
    """Print ``error: message`` on standard error and exit with ``code``."""
    exit_with(f"error: {message}", code)


def runtime() -> Runtime:
    """A runtime on this environment's settings (``DATABASE_URL``, ``REDIS_URL``, ...)."""
    from ..platform.assembly import Runtime
    from ..platform.config import Settings

    return Runtime(Settings.from_env())


def check_bundle(bundle: str | Path, against_env: bool = False,
                 overrides: dict[str, str] | None = None) -> CompileResult:
    """Compile ``bundle`` with every check ``check`` makes; print nothing.

    Beyond the compiler: flow graphs and calendars (flows layer), notification
    templates and, with ``against_env``, the channels' configuration in this
    environment. ``overrides`` ({relative path: text}) stand in for files on disk
    (the editor's open documents, see :mod:`dispatchflow.lsp`). The result's app
    is None when any check found an error.
    """
    result = compile_bundle(bundle, overrides)
    if result.app is not None:
        # Flow graph and calendar checks live in the flows layer, above the compiler.
        from ..flows.analysis import flow_diagnostics
        from ..flows.calendar import calendar_diagnostics
        from ..platform.notify.templates import template_diagnostics

        extra = flow_diagnostics(result.app) + calendar_diagnostics(result.app) + \
            template_diagnostics(result.app)
        if against_env:
            from ..platform.notify.setup import environment_diagnostics

            extra += environment_diagnostics(result.app)
        result = CompileResult(None if any(d.is_error for d in extra) else result.app,
                               sorted([*result.diagnostics, *extra], key=lambda d: d.sort_key()),
                               result.draft)
    return result


def compile_or_report(bundle: str, fmt: str, against_env: bool = False) -> CompileResult:
    """:func:`check_bundle`, then print the diagnostics.

    ``fmt`` is ``text`` (on standard error when there are errors), ``json`` or
    ``sarif`` (both always printed, on standard output; see
    :func:`~dispatchflow.dsl.diagnostics.render_sarif`).
    """
    result = check_bundle(bundle, against_env)
    if fmt == "sarif":
        click.echo(render_sarif(result.diagnostics, Path(bundle)))
    elif result.diagnostics or fmt == "json":
        out = render_json(result.diagnostics) if fmt == "json" else render_text(result.diagnostics)
        click.echo(out, err=fmt != "json" and not result.ok)
    return result


def require_folder(bundle: str) -> None:
    """Exit with ``EXIT_USAGE`` (``BUNDLE: not a folder``) unless ``bundle`` is a folder."""
    if not Path(bundle).is_dir():
        exit_with(f"{bundle}: not a folder", EXIT_USAGE)


def compiled_app(bundle: str) -> App:
    """Compile ``bundle`` or exit: 2 when it is not a folder, 1 (diagnostics shown) on errors."""
    require_folder(bundle)
    result = compile_or_report(bundle, "text")
    if result.app is None:
        sys.exit(EXIT_PROBLEMS)
    return result.app


def report_channels(rt: Runtime) -> None:
    """At ``serve``/``worker`` start: one warning line about channels lacking
    configuration; releases held messages of channels configured now (see
    :mod:`dispatchflow.platform.notify.setup`). Says nothing before a first publish."""
    from ..platform.notify.setup import start_report
    from ..platform.runtime.state import NoActiveVersion

    try:
        app = rt.app
    except NoActiveVersion:
        return
    line = start_report(app, rt.engine, rt.clock())
    if line:
        click.echo(f"warning: {line}", err=True)
