"""Quick fixes in process: a "did you mean" becomes an edit of exactly the misspelt word."""

from __future__ import annotations

from lsprotocol import types as lsp

from dispatchflow.dsl.diagnostics import Diagnostic, Severity
from dispatchflow.dsl.suggest import did_you_mean
from dispatchflow.lsp.fixes import quick_fixes
from dispatchflow.lsp.session import to_lsp

URI = "file:///b/rules/a.rules"


def _diag(source: str, word: str, candidates: list[str]) -> lsp.Diagnostic:
    column = source.index(word) + 1
    hint = did_you_mean(word.strip('"'), candidates)
    assert hint is not None
    return to_lsp(Diagnostic(Severity.ERROR, "E3001", "unknown field", "rules/a.rules", 1,
                             column, column + len(word), hint, source,
                             hint.word, hint.replacements))


def _edits(action: lsp.CodeAction) -> list[lsp.TextEdit]:
    assert action.edit is not None and action.edit.changes is not None
    return list(action.edit.changes[URI])


def test_the_hint_carries_its_word_and_replacements_as_data() -> None:
    hint = did_you_mean("tire", ["tier", "region"])
    assert hint == "did you mean 'tier'?"
    assert (hint.word, hint.replacements) == ("tire", ("tier",))
    d = _diag("  when work_order.customer.tire", "tire", ["tier", "region"])
    assert d.data == {"hint": "did you mean 'tier'?", "word": "tire", "replacements": ["tier"]}


def test_one_suggestion_is_one_preferred_fix_of_the_range() -> None:
    line = "  when work_order.customer.tire == 'VIP'"
    d = _diag(line, "tire", ["tier", "region"])
    [action] = quick_fixes(URI, [line], [d])
    assert (action.title, action.kind, action.is_preferred) == (
        "Change 'tire' to 'tier'", lsp.CodeActionKind.QuickFix, True)
    assert _edits(action) == [lsp.TextEdit(d.range, "tier")]


def test_two_suggestions_are_two_fixes_neither_preferred() -> None:
    line = "x: ab"
    d = _diag(line, "ab", ["abc", "abd"])
    assert sorted((a.title, a.is_preferred) for a in quick_fixes(URI, [line], [d])) == [
        ("Change 'ab' to 'abc'", False), ("Change 'ab' to 'abd'", False)]


def test_a_quoted_enum_literal_keeps_its_quotes() -> None:
    line = '  when work_order.priority == "P5x"'
    d = _diag(line, '"P5x"', ["P1", "P5"])
    assert [e.new_text for a in quick_fixes(URI, [line], [d]) for e in _edits(a)] == ['"P5"']


def test_no_fix_when_the_text_moved_or_the_hint_suggests_nothing() -> None:
    line = "  when work_order.customer.tire"
    d = _diag(line, "tire", ["tier"])
    assert quick_fixes(URI, ["  when work_order.customer.tier"], [d]) == []
    assert quick_fixes(URI, [], [d]) == []
    plain = to_lsp(Diagnostic(Severity.ERROR, "E3001", "x", "a", 1, 1, 3, "use a field", line))
    assert quick_fixes(URI, [line], [plain]) == []
