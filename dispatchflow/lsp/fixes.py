"""Quick fixes: the "did you mean" of a diagnostic as a code action that edits the text.

A diagnostic whose hint suggests names carries them as data (``word`` and
``replacements``, see :func:`dispatchflow.lsp.session.to_lsp`); each replacement
becomes a quick fix replacing the diagnostic's range. The fix is only offered when
the range still holds exactly the misspelt word (or the word in quotes, as an enum
literal is), so a diagnostic whose range is wider (a whole line) or that is out of
date edits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types as lsp


def _text_at(lines: list[str], rng: lsp.Range) -> str | None:
    """The text of a one-line range, columns in UTF-16 code units; None otherwise."""
    if rng.start.line != rng.end.line or rng.start.line >= len(lines):
        return None
    units = lines[rng.start.line].encode("utf-16-le")
    return units[2 * rng.start.character: 2 * rng.end.character].decode("utf-16-le", "replace")


def quick_fixes(uri: str, lines: list[str], diagnostics: Sequence[lsp.Diagnostic]
                ) -> list[lsp.CodeAction]:
    """One quick fix per suggested replacement of each diagnostic in ``diagnostics``
    (the client's, as sent with ``textDocument/codeAction``) over the document
    ``lines``; the first suggestion of a diagnostic with a single one is preferred."""
    actions = []
    for diag in diagnostics:
        data = diag.data if isinstance(diag.data, dict) else {}
        word, replacements = data.get("word"), data.get("replacements") or []
        text = _text_at(lines, diag.range)
        if not word or text is None:
            continue
        quote = text[0] if len(text) > 2 and text[0] == text[-1] and text[0] in "\"'" else ""
        if text != f"{quote}{word}{quote}":
            continue
        for name in replacements:
            edit = lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(diag.range,
                                                                 f"{quote}{name}{quote}")]})
            actions.append(lsp.CodeAction(
                f"Change '{word}' to '{name}'", kind=lsp.CodeActionKind.QuickFix,
                diagnostics=[diag], edit=edit, is_preferred=len(replacements) == 1))
    return actions
