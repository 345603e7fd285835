"""Diagnostics as LSP sees them: 0-based ranges in UTF-16, message with hint, clearing."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from dispatchflow.dsl.compiler import CompileResult
from dispatchflow.dsl.diagnostics import Diagnostic, Severity
from dispatchflow.lsp.session import BundleSession, bundle_root, to_lsp


def _diag(line: int, column: int, end: int, source: str | None, **kw) -> Diagnostic:
    return Diagnostic(kw.get("severity", Severity.ERROR), "E3001", "unknown field", "rules/a.rules",
                      line, column, end, kw.get("hint"), source)


def test_columns_become_utf16_units_after_astral_characters() -> None:
    d = _diag(3, 6, 10, "# 😀 tire x", hint="did you mean 'tier'?")
    out = to_lsp(d)
    assert out.range == lsp.Range(lsp.Position(2, 6), lsp.Position(2, 10))
    assert out.message == "unknown field\nhint: did you mean 'tier'?"
    assert (out.code, out.severity, out.source) == ("E3001", lsp.DiagnosticSeverity.Error,
                                                    "dispatchflow")


def test_an_unknown_end_runs_to_the_end_of_the_line() -> None:
    out = to_lsp(_diag(1, 3, 0, "abcdef", severity=Severity.WARNING))
    assert out.range == lsp.Range(lsp.Position(0, 2), lsp.Position(0, 6))
    assert out.severity == lsp.DiagnosticSeverity.Warning


def test_a_file_level_diagnostic_sits_at_the_start() -> None:
    out = to_lsp(_diag(0, 0, 0, None))
    assert out.range == lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))


def test_files_reported_before_are_cleared_when_clean(tmp_path: Path) -> None:
    results = [CompileResult(None, [_diag(1, 1, 2, "x")]), CompileResult(None, [])]
    session = BundleSession(tmp_path, lambda root, docs: results.pop(0))
    assert {rel: len(items) for rel, items in session.recheck({}).items()} == {"rules/a.rules": 1}
    assert session.recheck({}) == {"rules/a.rules": []}
    assert session.reported == set()


def test_a_diagnostic_on_no_bundle_file_is_shown_on_app_yaml(tmp_path: Path) -> None:
    d = Diagnostic(Severity.ERROR, "E1003", "cannot read", str(tmp_path))
    session = BundleSession(tmp_path, lambda root, docs: CompileResult(None, [d]))
    assert session.recheck({}) == {"app.yaml": [d]}


def test_the_bundle_root_is_the_nearest_folder_with_app_yaml(tmp_path: Path) -> None:
    (tmp_path / "b" / "rules").mkdir(parents=True)
    (tmp_path / "b" / "app.yaml").write_text("app: x\n")
    assert bundle_root(tmp_path / "b" / "rules") == tmp_path / "b"
    assert bundle_root(tmp_path) is None
