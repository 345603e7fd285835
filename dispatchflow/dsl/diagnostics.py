"""Diagnostics: every problem found in a bundle, with position, cause and hint.

A :class:`Diagnostic` is plain data. :class:`DiagnosticBag` collects them while
the compiler runs so that one ``check`` reports *all* problems; the renderers
turn them into the ``path:line:col: E1234: message`` text form (with the source
line and a caret) or JSON for editors and CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from .source import SourceFile, Span
from .suggest import Hint


class Severity(StrEnum):
    """How bad a diagnostic is; only errors make ``check`` exit 1."""

    ERROR = "error"
    WARNING = "warning"


# Every diagnostic code the compiler can emit, with a one-line title. Golden tests
# cover each; docs/dsl.md lists them. E1xxx bundle/YAML, E2xxx syntax, E3xxx names
# and types, W4xxx warnings on values, E5xxx/W5xxx decision tables, E6xxx bundle
# tests, W7xxx rule sets.
CODES: dict[str, str] = {
    "E1001": "YAML syntax error",
    "E1002": "duplicate key in a YAML mapping",
    "E1003": "file cannot be read",
    "E1010": "value does not match the schema",
    "E1011": "unknown key",
    "E1012": "value has the wrong type",
    "E1013": "required key missing",
    "E1014": "value not among the allowed ones",
    "E1015": "escalation levels out of time order",
    "E1020": "duplicate name",
    "E1021": "unknown reference to another bundle item",
    "E1022": "bundle folder is missing a required file",
    "E1023": "name is a reserved word",
    "E2001": "unexpected token",
    "E2002": "unexpected character",
    "E2003": "unexpected end of input",
    "E3001": "unknown field",
    "E3002": "unknown name",
    "E3003": "unknown function",
    "E3004": "wrong number of arguments",
    "E3005": "argument has the wrong type",
    "E3010": "operand types do not fit the operator",
    "E3011": "value is not a member of the enum",
    "E3012": "units do not match",
    "E3013": "a condition must be a boolean",
    "E3014": "comparison with the null literal",
    "E3015": "invalid regular expression",
    "E3016": "branches of if/then/else have different types",
    "E3017": "list elements have different types",
    "E3018": "regular expression needs backtracking or is too long",
    "E3020": "field cannot be set here",
    "E3021": "value does not fit the field",
    "E3030": "unknown dispatch policy, notification, flow or table",
    "W4001": "nullable value used where a value is required",
    "E5001": "rows overlap under hit policy unique",
    "E5002": "overlapping rows give different outputs under hit policy any",
    "W5003": "input combinations no row covers",
    "W5004": "row can never be chosen under hit policy first",
    "E5005": "row has the wrong number of cells",
    "E5006": "invalid decision-table cell",
    "E6001": "bundle test case is malformed",
    "W7001": "rules set the same field at the same salience",
    "W8001": "flow state is unreachable",
    "E8002": "flow state has no way out",
    "W8003": "final flow state has transitions",
    "W8004": "parallel state can never join",
    "E8005": "flow cannot be compiled",
    "E8006": "business calendar is invalid",
}


@dataclass(frozen=True)
class Diagnostic:
    """One problem at one place. ``line``/``column`` are 1-based; 0 means unknown.

    ``replacements`` are the names a "did you mean" hint suggests for ``word``, the
    misspelt text (see :class:`~dispatchflow.dsl.suggest.Hint`); editors offer them
    as quick fixes. Both are empty when the hint suggests nothing.
    """

    severity: Severity
    code: str
    message: str
    file: str
    line: int = 0
    column: int = 0
    end_column: int = 0
    hint: str | None = None
    source_line: str | None = field(default=None, compare=False)
    word: str = field(default="", compare=False)
    replacements: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.code, self.message)

    def headline(self) -> str:
        """``path:line:col: CODE: message`` (line and column left out when unknown)."""
        where = self.file
        if self.line:
            where += f":{self.line}:{max(self.column, 1)}"
        return f"{where}: {self.code}: {self.message}"

    def render(self) -> str:
        """The headline, the source line with a caret under the span, and the hint."""
        out = [self.headline()]
        if self.source_line is not None and self.line:
            gutter = f"{self.line:>5} | "
            out.append(gutter + self.source_line.rstrip("\n"))
            col = max(self.column, 1)
            width = max(1, (self.end_column or col + 1) - col)
            prefix = "".join(ch if ch == "\t" else " " for ch in self.source_line[: col - 1])
            out.append(" " * (len(gutter) - 2) + "| " + prefix + "^" + "~" * (width - 1))
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict:
        data = asdict(self)
        data["severity"] = self.severity.value
        del data["word"], data["replacements"]  # the JSON form predates them; the hint says it
        return data


class DiagnosticBag:
    """Collects diagnostics during a compile; knows the source files for caret lines."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []
        self._sources: dict[str, SourceFile] = {}

    def add_source(self, source: SourceFile) -> None:
        self._sources[source.path] = source

    def source(self, path: str) -> SourceFile | None:
        return self._sources.get(path)

    def error(self, code: str, message: str, file: str, span: Span | None = None,
              hint: str | None = None) -> None:
        self.add(Severity.ERROR, code, message, file, span, hint)

    def warning(self, code: str, message: str, file: str, span: Span | None = None,
                hint: str | None = None) -> None:
        self.add(Severity.WARNING, code, message, file, span, hint)

    def add(self, severity: Severity, code: str, message: str, file: str,
            span: Span | None = None, hint: str | None = None) -> None:
        assert code in CODES, f"unregistered diagnostic code {code}"
        line = span.line if span else 0
        column = span.column if span else 0
        end_column = span.end_column if span and span.end_line == span.line else 0
        src = self._sources.get(file)
        source_line = src.line_text(line) if src and line else None
        fix = hint if isinstance(hint, Hint) else None
        self._items.append(Diagnostic(severity, code, message, file, line, column,
                                      end_column, hint, source_line,
                                      fix.word if fix else "", fix.replacements if fix else ()))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self._items.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self._items)

    @property
    def error_count(self) -> int:
        return sum(1 for d in self._items if d.is_error)

    def sorted(self) -> list[Diagnostic]:
        """All diagnostics, de-duplicated and sorted by file, line, column."""
        return sorted(set(self._items), key=Diagnostic.sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self._items)


def render_text(diagnostics: Iterable[Diagnostic]) -> str:
    """Human form: each diagnostic with caret and hint, then a one-line summary."""
    items = list(diagnostics)
    blocks = [d.render() for d in items]
    errors = sum(1 for d in items if d.is_error)
    warnings = len(items) - errors
    blocks.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n\n".join(blocks)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """Machine form for editors and CI: ``{"diagnostics": [...], "errors": N, "warnings": M}``."""
    items = list(diagnostics)
    errors = sum(1 for d in items if d.is_error)
    return json.dumps(
        {"diagnostics": [d.to_json() for d in items], "errors": errors,
         "warnings": len(items) - errors},
        ensure_ascii=False, indent=2,
    )


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_sarif(diagnostics: Iterable[Diagnostic], bundle: Path) -> str:
    """SARIF 2.1.0 for code scanning (one run; columns in Unicode code points).

    Each result's ``ruleId`` is the diagnostic code; its location's ``uri`` is
    relative to the bundle folder (``uriBaseId`` ``BUNDLE``, whose absolute
    ``file:`` URI is in the run's ``originalUriBaseIds``).
    """
    items = list(diagnostics)
    codes = sorted({d.code for d in items})
    index = {code: i for i, code in enumerate(codes)}
    results = []
    for d in items:
        location: dict = {"artifactLocation": {"uri": d.file, "uriBaseId": "BUNDLE"}}
        if d.line:
            column = max(d.column, 1)
            location["region"] = {"startLine": d.line, "startColumn": column,
                                  "endLine": d.line, "endColumn": d.end_column or column + 1}
        text = d.message + (f" (hint: {d.hint})" if d.hint else "")
        results.append({"ruleId": d.code, "ruleIndex": index[d.code], "level": d.severity.value,
                        "message": {"text": text},
                        "locations": [{"physicalLocation": location}]})
    rules = [{"id": code, "shortDescription": {"text": CODES[code]}} for code in codes]
    run = {"tool": {"driver": {"name": "dispatchflow", "rules": rules}},
           "originalUriBaseIds": {"BUNDLE": {"uri": bundle.resolve().as_uri() + "/"}},
           "columnKind": "unicodeCodePoints", "results": results}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]},
                      ensure_ascii=False, indent=2)
