"""Commands on published app versions: ``publish``, ``versions``, ``rollback``, ``diff``.

They work on the database named by ``DATABASE_URL`` (default: the embedded
SQLite file) through :mod:`dispatchflow.platform.store.versions`; ``diff`` also
compares bundle folders, with or without a database.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..errors import DispatchflowError
from .common import EXIT_PROBLEMS, EXIT_USAGE, compile_or_report, compiled_app, exit_with, fail


def register(main: click.Group) -> None:
    """Add ``publish``, ``versions``, ``rollback`` and ``diff`` to the ``dispatchflow`` group."""
    for command in (publish, versions_cmd, rollback, diff):
        main.add_command(command)


def _database() -> Any:
    """An engine on DATABASE_URL (default: the embedded SQLite file) with system tables."""
    from ..platform.config import Settings
    from ..platform.store.db import create_system_tables, make_engine

    engine = make_engine(Settings.from_env().database_url)
    create_system_tables(engine)
    return engine


def _who() -> str | None:
    """The login name stored as a version's author, or None where there is none."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return None


@click.command()
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--dry-run", is_flag=True, help="print the migration plan; change nothing")
@click.option("--allow-destructive", is_flag=True,
              help="allow steps that delete data (dropped fields, entities, narrowed types)")
@click.option("--note", default=None, help="a note stored with the version")
def publish(bundle: str, dry_run: bool, allow_destructive: bool, note: str | None) -> None:
    """Publish BUNDLE as the next app version and migrate its tables (DATABASE_URL)."""
    from ..platform.store.migrate import DestructiveChangeRefused
    from ..platform.store.versions import publish as publish_app

    app = compiled_app(bundle)
    engine = _database()
    try:
        outcome = publish_app(engine, app, created_by=_who(), dry_run=dry_run,
                              allow_destructive=allow_destructive, note=note)
    except DestructiveChangeRefused as exc:
        n = len(exc.plan.destructive_steps)
        click.echo(exc.plan.text())
        exit_with(f"refused: {n} destructive step(s); re-run with --allow-destructive",
                  EXIT_PROBLEMS)
    except DispatchflowError as exc:
        fail(exc, EXIT_PROBLEMS)
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


@click.command("versions")
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


@click.command()
@click.argument("number", type=int)
def rollback(number: int) -> None:
    """Activate version NUMBER again; its tables change additively only (no data is lost)."""
    from ..platform.store.versions import rollback as rollback_to

    engine = _database()
    try:
        info = rollback_to(engine, number, created_by=_who())
    except DispatchflowError as exc:
        fail(exc, EXIT_PROBLEMS)
    finally:
        engine.dispose()
    click.echo(f"active version: {info.number} ({info.app_name} {info.bundle_version}, "
               f"{info.digest[:12]})")


@click.command()
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
                result = compile_or_report(spec, "text")
                if result.app is None:
                    sys.exit(EXIT_PROBLEMS)
                apps.append(result.app)
                continue
            if spec != "active" and not spec.isdigit():
                exit_with(f"{spec}: neither a version number nor a bundle folder", EXIT_USAGE)
            from ..platform.store.versions import load_app

            engine = engine or _database()
            apps.append(load_app(engine, None if spec == "active" else int(spec)))
    except DispatchflowError as exc:
        fail(exc, EXIT_PROBLEMS)
    finally:
        if engine is not None:
            engine.dispose()
    for line in render_changes(diff_apps(apps[0], apps[1])):
        click.echo(line)
