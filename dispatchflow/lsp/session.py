"""One bundle folder as an editor sees it: files on disk, with open documents on top.

:class:`BundleSession` re-checks the whole bundle with the checker it is given
(the one ``dispatchflow check`` runs, see :func:`dispatchflow.cli.common.check_bundle`)
and answers, per file, the diagnostics to publish -- including an empty list for
a file that was reported before and is clean now. :func:`to_lsp` turns a
:class:`~dispatchflow.dsl.diagnostics.Diagnostic` (1-based, columns in code
points) into an LSP diagnostic (0-based, columns in UTF-16 code units).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp

from ..dsl.bundle import is_bundle_file
from ..dsl.compiler import App, CompileResult
from ..dsl.diagnostics import Diagnostic

#: (bundle folder, {relative path: text of an open document}) -> the check's result.
Checker = Callable[[Path, dict[str, str]], CompileResult]


def bundle_root(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` holding an ``app.yaml``, or None."""
    for folder in (path, *path.parents):
        if (folder / "app.yaml").is_file():
            return folder
    return None


@dataclass
class BundleSession:
    """The last check of one bundle and the files it reported on."""

    root: Path
    checker: Checker
    draft: App | None = None
    reported: set[str] = field(default_factory=set)

    def relative(self, path: Path) -> str | None:
        """``path`` relative to the bundle (``/`` separators) if it is a bundle file."""
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return None
        return rel if is_bundle_file(rel) else None

    def recheck(self, open_documents: dict[str, str]) -> dict[str, list[Diagnostic]]:
        """Check the bundle with ``open_documents`` in place of their files.

        Returns {relative path: diagnostics} for every file with diagnostics now
        and every file reported last time (an empty list clears its squiggles).
        A diagnostic on no particular file is shown on ``app.yaml``.
        """
        return self.absorb(self.check(open_documents))

    def check(self, open_documents: dict[str, str]) -> CompileResult:
        """Run the checker with ``open_documents`` in place of their files; the
        session is left as it was (safe off the server's thread)."""
        return self.checker(self.root, open_documents)

    def absorb(self, result: CompileResult) -> dict[str, list[Diagnostic]]:
        """Take ``result`` as the bundle's current state: what :meth:`recheck` returns."""
        self.draft = result.draft or self.draft
        by_file: dict[str, list[Diagnostic]] = {rel: [] for rel in self.reported}
        for d in result.diagnostics:
            rel = d.file if is_bundle_file(d.file) else "app.yaml"
            by_file.setdefault(rel, []).append(d)
        self.reported = {rel for rel, items in by_file.items() if items}
        return by_file


def _utf16(text: str | None, column: int) -> int:
    """The UTF-16 offset of 1-based code-point ``column`` in ``text``."""
    if not text or column <= 1:
        return max(column - 1, 0)
    head = text[: column - 1]
    return len(head.encode("utf-16-le")) // 2 + max(column - 1 - len(head), 0)


def to_lsp(d: Diagnostic) -> lsp.Diagnostic:
    """An LSP diagnostic: same range, severity, code, and the message with its hint."""
    line = max(d.line - 1, 0)
    start = _utf16(d.source_line, max(d.column, 1))
    if not d.line:
        end = start
    elif d.end_column > d.column:
        end = _utf16(d.source_line, d.end_column)
    else:  # unknown end or a span over several lines: to the end of the line
        end = max(_utf16(d.source_line, len(d.source_line or "") + 1), start + 1)
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    severity = lsp.DiagnosticSeverity.Error if d.is_error else lsp.DiagnosticSeverity.Warning
    return lsp.Diagnostic(range=lsp.Range(lsp.Position(line, start), lsp.Position(line, end)),
                          message=message, severity=severity, code=d.code,
                          source="dispatchflow", data=_data(d))


def _data(d: Diagnostic) -> dict | None:
    """The hint as data: ``word`` and ``replacements`` when it suggests names
    (read back by :mod:`dispatchflow.lsp.fixes`)."""
    if not d.hint:
        return None
    if not d.replacements:
        return {"hint": d.hint}
    return {"hint": d.hint, "word": d.word, "replacements": list(d.replacements)}
