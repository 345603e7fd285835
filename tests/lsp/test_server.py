"""``dispatchflow lsp`` over stdio: diagnostics, completion, hover, hostile input."""

from __future__ import annotations

from lsprotocol import types as lsp

TRIAGE = "rules/triage.rules"


def test_a_typo_is_reported_with_position_and_hint_then_cleared(editor, line_of) -> None:
    text = (editor.root / TRIAGE).read_text("utf-8")
    broken = text.replace("work_order.customer.tier", "work_order.customer.tire", 1)
    editor.open(TRIAGE, broken)
    [diag] = editor.wait_diagnostics(TRIAGE)
    line = line_of(broken, "work_order.customer.tire")
    column = broken.splitlines()[line].index("tire")
    assert diag.range == lsp.Range(lsp.Position(line, column), lsp.Position(line, column + 4))
    assert diag.code == "E3001"
    assert diag.severity == lsp.DiagnosticSeverity.Error
    assert diag.message == "unknown field 'tire' on customer\nhint: did you mean 'tier'?"
    editor.change(TRIAGE, text)
    assert editor.wait_diagnostics(TRIAGE) == []


def test_a_cross_file_error_lands_in_the_file_that_uses_the_field(editor) -> None:
    entity = "entities/customer.yaml"
    text = (editor.root / entity).read_text("utf-8")
    editor.open(entity, text.replace("\n  tier:", "\n  level:", 1))
    assert editor.wait_diagnostics(entity) == []
    uses = editor.wait_diagnostics(TRIAGE)
    assert {d.code for d in uses} == {"E3001"}
    assert all("unknown field 'tier' on customer" in d.message for d in uses)
    del editor.diagnostics[editor.uri(TRIAGE)]
    editor.change(entity, text)
    assert editor.wait_diagnostics(TRIAGE) == []  # the fix elsewhere clears it


def test_completion_after_a_reference_offers_the_customer_fields(editor, line_of) -> None:
    text = (editor.root / TRIAGE).read_text("utf-8")
    line = line_of(text, 'when work_order.customer.tier == "VIP"')
    typed = text.splitlines()
    typed[line] = "  when work_order.customer."
    editor.open(TRIAGE, "\n".join(typed))
    editor.wait_diagnostics(TRIAGE)
    labels = editor.completion(TRIAGE, line, len(typed[line]))
    assert {"name", "phone", "tier", "region", "id", "created_at"} <= set(labels)
    assert "priority" not in labels  # a work order field, not a customer's


def test_completion_of_a_word_offers_roots_builtins_and_keywords(editor, line_of) -> None:
    text = (editor.root / TRIAGE).read_text("utf-8")
    editor.open(TRIAGE)
    editor.wait_diagnostics(TRIAGE)
    line = line_of(text, 'when work_order.customer.tier == "VIP"')
    assert editor.completion(TRIAGE, line, len("  when w")) == ["work_order", "weekday", "when",
                                                                  "within"]


def test_hover_gives_a_field_type_and_a_builtin_signature(editor, line_of) -> None:
    text = (editor.root / TRIAGE).read_text("utf-8")
    editor.open(TRIAGE)
    editor.wait_diagnostics(TRIAGE)
    line = line_of(text, 'when work_order.customer.tier == "VIP"')
    column = text.splitlines()[line].index("tier") + 1
    assert editor.hover(TRIAGE, line, column).startswith(
        "`work_order.customer.tier`: enum (VIP, gold, normal)")
    line = line_of(text, "contains_any(")
    column = text.splitlines()[line].index("contains_any") + 2
    assert editor.hover(TRIAGE, line, column).startswith(
        "```\ncontains_any(text: string | list, words: list) -> bool\n```")
    assert editor.hover(TRIAGE, 0, 0) is None  # a comment


def test_hostile_documents_get_a_diagnostic_and_the_server_keeps_answering(
        editor, line_of) -> None:
    entity = "entities/customer.yaml"
    editor.open(entity, "entity: customer\nfields: [unclosed\n  - {: :\n")
    [diag] = editor.wait_diagnostics(entity)
    assert diag.code == "E1001"
    editor.change(entity, "x" * (10 * 1024 * 1024))
    [diag] = editor.wait_diagnostics(entity)
    assert (diag.code, diag.message) == ("E1003", "file is larger than 2048 KiB\n"
                                                  "hint: split it into several files")
    editor.change(entity, "\x00\xff\ufffd\x1b[31m\udcff garbage \x07" * 50)
    assert editor.wait_diagnostics(entity)[0].code == "E1003"  # not valid UTF-8
    editor.change(entity, "a: &a [*a]\n")
    assert [d.message for d in editor.wait_diagnostics(entity)] == ["an alias contains itself\n"
                                                                  "hint: YAML aliases (*name) "
                                                                  "cannot refer to the value they "
                                                                  "are part of"]
    text = (editor.root / TRIAGE).read_text("utf-8")
    line = line_of(text, "contains_any(")
    editor.open(TRIAGE, text)
    editor.wait_diagnostics(TRIAGE)
    assert editor.hover(TRIAGE, line, text.splitlines()[line].index("contains_any") + 1)
