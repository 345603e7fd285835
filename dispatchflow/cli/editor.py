"""Commands for editors: ``lsp``, the language server for bundle folders."""

from __future__ import annotations

from pathlib import Path

import click

from ..dsl.compiler import CompileResult
from .common import check_bundle


def register(main: click.Group) -> None:
    """Add ``lsp`` to the ``dispatchflow`` group."""
    main.add_command(lsp)


def _check(root: Path, open_documents: dict[str, str]) -> CompileResult:
    return check_bundle(root, overrides=open_documents)


@click.command()
def lsp() -> None:
    """Serve the Language Server Protocol on stdin/stdout (for VS Code, Neovim, ...).

    Diagnostics as ``dispatchflow check`` reports them (re-checked once typing
    stops), "did you mean" quick fixes, completion of keywords, names, builtins,
    field paths and enum values, and hover with types and builtin docs, for the
    bundle folder holding each open file (see docs/designer.md).
    """
    from ..lsp.server import serve

    serve(_check)
