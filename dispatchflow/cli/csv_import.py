"""``dispatchflow import ENTITY FILE.csv``: bulk-create records from a CSV file.

Exit codes as for every command: 0 all rows imported, 1 some rows had
problems (listed on stderr as ``row 7: priority: ...``), 2 usage errors (no
such file, entity or user; nothing published; not allowed).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import DispatchflowError
from .common import EXIT_PROBLEMS, EXIT_USAGE, exit_with, fail, runtime


def register(main: click.Group) -> None:
    """Add ``import`` to the ``dispatchflow`` group."""
    main.add_command(import_records)


@click.command("import")
@click.argument("entity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--partial", is_flag=True,
              help="import the valid rows even when others have problems "
                   "(default: all or nothing)")
@click.option("--as", "as_user", default=None, metavar="USER",
              help="import as this user, with their permissions (default: the system)")
def import_records(entity: str, file: str, partial: bool, as_user: str | None) -> None:
    """Create ENTITY records from the rows of FILE (UTF-8 CSV, header = field names or labels).

    Every row is checked first; without --partial one bad row means nothing is
    imported.
    """
    from tqdm import tqdm

    from ..platform.intake.csv_import import import_csv
    from ..platform.records.actors import Actor
    from ..platform.records.users import load_actor

    try:
        rt = runtime()
        rt.refresh()
        rt.app  # noqa: B018 - raises NoActiveVersion with its hint
        actor = load_actor(rt.engine, as_user, channel="import") if as_user else \
            Actor("cli:import", "CSV import", channel="import", is_system=True)
        if actor is None:
            fail(f"no active user '{as_user}' (hint: create it with: dispatchflow user add)",
                 EXIT_USAGE)
        bars: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, unit="row", file=sys.stderr,
                                         desc="checking" if stage == "check" else "writing",
                                         leave=False, disable=None)
            bar.update(done - bar.n)

        try:
            result = import_csv(rt, actor, entity, file, all_or_nothing=not partial,
                                progress=progress)
        finally:
            for bar in bars.values():
                bar.close()
    except DispatchflowError as exc:
        fail(exc, EXIT_USAGE)
    for error in result.errors:
        click.echo(str(error), err=True)
    bad_rows = len({e.row_number for e in result.errors if e.row_number > 1})
    if result.errors and (not partial or not bad_rows):
        exit_with("nothing imported" + (f": {_rows(bad_rows)} with problems" if bad_rows
                                        else ""), EXIT_PROBLEMS)
    click.echo(f"imported {result.created} records")
    if result.errors:
        exit_with(f"{_rows(bad_rows)} not imported", EXIT_PROBLEMS)


def _rows(count: int) -> str:
    """``1 row``, ``3 rows``."""
    return f"{count} row{'s' if count != 1 else ''}"
