"""The ``dispatchflow`` command line: thin commands that call the layers.

What belongs here: parsing arguments, calling ``platform``, ``rules``, ``flows``
and ``dsl`` functions, and printing their results and errors with the exit
code. What does not: logic of its own -- a command that needs more than a few
lines of glue is missing a function in the layer below it.

One module per command group, each with a ``register(main)`` that adds its
commands to :func:`main`:

* ``bundle``: ``check``, ``test``, ``init``, ``eval`` (a bundle folder, no database);
* ``versions``: ``publish``, ``versions``, ``rollback``, ``diff``;
* ``server``: ``serve`` (and ``serve --demo``);
* ``workers``: ``worker``, ``scheduler``;
* ``jobs``: ``jobs failed``, ``jobs retry``;
* ``dispatch``: ``explain``, ``demo-data``, ``simulate``;
* ``csv_import``: ``import``;
* ``users``: ``user add|deactivate``, ``token create|revoke``;
* ``editor``: ``lsp`` (the language server for bundle folders).

Group modules import :mod:`.common` (exit codes, error output, compiling a
bundle, the runtime) and the library, never this module nor each other. They
import the platform lazily, so ``check`` and ``test`` need no database.

Exit codes: 0 success, 1 problems found (diagnostics with errors, failing
bundle tests), 2 usage or I/O errors.
"""

from __future__ import annotations

import click

from . import bundle, csv_import, dispatch, editor, jobs, server, users, versions, workers


@click.group()
@click.version_option(package_name="dispatchflow")
def main() -> None:
    """dispatchflow: rules platform for field-service work orders (工单) and dispatch (派单)."""


bundle.register(main)
versions.register(main)
server.register(main)
workers.register(main)
jobs.register(main)
dispatch.register(main)
csv_import.register(main)
users.register(main)
editor.register(main)
