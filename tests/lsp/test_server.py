"""``dispatchflow lsp`` over stdio: diagnostics, completion, hover, quick fixes,
debouncing, hostile input; and, in process, a stale check's result being dropped."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from lsprotocol import types as lsp
from pygls.uris import from_fs_path
from pygls.workspace import Workspace

from dispatchflow.dsl.compiler import CompileResult
from dispatchflow.lsp.server import BundleServer

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


def test_rapid_changes_are_checked_once_for_the_last_version(editor) -> None:
    text = (editor.root / TRIAGE).read_text("utf-8")
    editor.open(TRIAGE, text)
    assert editor.wait_diagnostics(TRIAGE) == []
    editor.published.clear()
    for typo in ("tie", "tiea", "tiera", "tire"):  # faster than the quiet period
        editor.change(TRIAGE, text.replace("customer.tier", f"customer.{typo}", 1))
    [diag] = editor.wait_diagnostics(TRIAGE)
    assert diag.message.startswith("unknown field 'tire' on customer")
    editor.run(asyncio.sleep(0.6))  # room for any late, stale publication
    mine = [p for p in editor.published if p.uri == editor.uri(TRIAGE)]
    assert [p.version for p in mine] == [editor.versions[TRIAGE]] == [5]


def test_the_did_you_mean_quick_fix_repairs_a_typo(editor) -> None:
    text = (editor.root / TRIAGE).read_text("utf-8")
    broken = text.replace("work_order.customer.tier", "work_order.customer.tire", 1)
    editor.open(TRIAGE, broken)
    [diag] = editor.wait_diagnostics(TRIAGE)
    [action] = editor.code_actions(TRIAGE, [diag])
    assert (action.title, action.kind, action.is_preferred) == (
        "Change 'tire' to 'tier'", lsp.CodeActionKind.QuickFix, True)
    assert action.edit is not None and action.edit.changes is not None
    [edit] = action.edit.changes[editor.uri(TRIAGE)]
    lines = broken.splitlines(keepends=True)
    line = lines[edit.range.start.line]
    lines[edit.range.start.line] = (line[: edit.range.start.character] + edit.new_text
                                    + line[edit.range.end.character:])
    fixed = "".join(lines)
    assert fixed == text
    editor.change(TRIAGE, fixed)
    assert editor.wait_diagnostics(TRIAGE) == []


def test_a_check_overtaken_by_an_edit_publishes_nothing(reference_copy: Path) -> None:
    """In process, with a checker held until the next edit arrives: the first check
    finishes after the document changed, so only the second one publishes."""
    started, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def checker(root: Path, docs: dict[str, str]) -> CompileResult:
        seen.append(docs[TRIAGE])
        if len(seen) == 1:
            started.set()
            assert release.wait(10)
        return CompileResult(None, [])

    server = BundleServer(checker)
    server.protocol._workspace = Workspace(from_fs_path(str(reference_copy)))
    published: list[lsp.PublishDiagnosticsParams] = []
    server.text_document_publish_diagnostics = published.append  # type: ignore[method-assign]
    uri = from_fs_path(str(reference_copy / TRIAGE))
    assert uri is not None

    async def session() -> None:
        server.workspace.put_text_document(lsp.TextDocumentItem(uri, "dispatchflow", 1, "one"))
        server.schedule(uri, 0)
        assert await asyncio.to_thread(started.wait, 10)
        server.workspace.remove_text_document(uri)
        server.workspace.put_text_document(lsp.TextDocumentItem(uri, "dispatchflow", 2, "two"))
        server.schedule(uri, 0)
        release.set()
        while len(seen) < 2 or server._checks or server._timers:
            await asyncio.sleep(0.01)

    asyncio.run(session())
    assert seen == ["one", "two"]
    assert [(p.uri, p.version) for p in published] == [(uri, 2)]
