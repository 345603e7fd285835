"""The language server: pygls wiring of sessions, completion and hover over stdio.

Every open, change or save of a bundle file re-checks that file's whole bundle
(the nearest folder upward holding ``app.yaml``, else the workspace root) with
the open documents' text in place of their files, and publishes diagnostics for
every file of the bundle -- cross-file errors too -- clearing files that became
clean. A check that fails unexpectedly is logged to the client and leaves the
previous diagnostics; the server keeps answering.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from . import assist
from .session import BundleSession, Checker, bundle_root, to_lsp

logger = logging.getLogger(__name__)

_KINDS = {"field": lsp.CompletionItemKind.Field, "name": lsp.CompletionItemKind.Variable,
          "function": lsp.CompletionItemKind.Function, "keyword": lsp.CompletionItemKind.Keyword}


class BundleServer(LanguageServer):
    """A pygls server holding one :class:`BundleSession` per bundle folder."""

    def __init__(self, checker: Checker) -> None:
        try:
            ours = version("dispatchflow")
        except PackageNotFoundError:  # running from a source tree
            ours = "dev"
        super().__init__("dispatchflow", ours)
        self.checker = checker
        self.sessions: dict[Path, BundleSession] = {}

    def session_for(self, uri: str) -> tuple[BundleSession, str] | None:
        """The session of the bundle holding ``uri`` and the file's relative path."""
        fs_path = to_fs_path(uri)
        if fs_path is None:
            return None
        path = Path(fs_path).resolve()
        workspace = self.workspace.root_path
        root = bundle_root(path.parent) or (Path(workspace).resolve() if workspace else None)
        if root is None:
            return None
        session = self.sessions.setdefault(root, BundleSession(root, self.checker))
        rel = session.relative(path)
        return (session, rel) if rel is not None else None

    def refresh(self, uri: str) -> None:
        """Re-check the bundle of ``uri`` and publish diagnostics for all its files."""
        found = self.session_for(uri)
        if found is None:
            return
        session, rel = found
        open_documents = {}
        for doc_uri, doc in self.workspace.text_documents.items():
            other = self.session_for(doc_uri)
            if other is not None and other[0] is session:
                open_documents[other[1]] = doc.source
        try:
            by_file = session.recheck(open_documents)
        except Exception as exc:  # a checker bug must not take the editor's server down
            logger.exception("check failed")
            self.window_log_message(lsp.LogMessageParams(
                lsp.MessageType.Error, f"dispatchflow: check of {session.root} failed: {exc!r}"))
            return
        by_file.setdefault(rel, [])  # the edited file always hears back, clean or not
        for rel, items in by_file.items():
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=from_fs_path(str(session.root / rel)) or rel,
                diagnostics=[to_lsp(d) for d in items]))

    def cursor(self, uri: str, position: lsp.Position):
        """(draft app, lines, line, code-point column, is .rules) at a cursor, or None."""
        found = self.session_for(uri)
        if found is None:
            return None
        session, rel = found
        if session.draft is None:
            self.refresh(uri)
        if session.draft is None:
            return None
        doc = self.workspace.get_text_document(uri)
        lines = [line.rstrip("\r\n") for line in doc.lines]
        pos = self.workspace.position_codec.position_from_client_units(doc.lines, position)
        return session.draft, lines, pos.line, pos.character, rel.endswith(".rules")


def build_server(checker: Checker) -> BundleServer:
    """A language server that checks bundles with ``checker`` (see :data:`Checker`)."""
    server = BundleServer(checker)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: BundleServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: BundleServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: BundleServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: BundleServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)  # the file on disk counts again

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=["."]))
    def completion(ls: BundleServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        at = ls.cursor(params.text_document.uri, params.position)
        items = [] if at is None else [
            lsp.CompletionItem(s.label, kind=_KINDS[s.kind], detail=s.detail,
                               documentation=s.doc or None)
            for s in assist.complete(*at)]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: BundleServer, params: lsp.HoverParams) -> lsp.Hover | None:
        at = ls.cursor(params.text_document.uri, params.position)
        text = None if at is None else assist.hover(*at)
        if text is None:
            return None
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text))

    return server


def serve(checker: Checker) -> None:
    """Run the language server on standard input and output until the client exits."""
    build_server(checker).start_io()
