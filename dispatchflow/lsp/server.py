"""The language server: pygls wiring of sessions, completion and hover over stdio.

Every open, change or save of a bundle file re-checks that file's whole bundle
(the nearest folder upward holding ``app.yaml``, else the workspace root) with
the open documents' text in place of their files, and publishes diagnostics for
every file of the bundle -- cross-file errors too -- clearing files that became
clean. Changes are debounced: a change schedules the check :data:`CHECK_DELAY_S`
after it, a later change pushes it back; the check runs off the event loop (so
completion and hover keep answering) and its result is dropped, unpublished, if
the bundle's documents changed while it ran -- the check that change scheduled
publishes instead. A check that fails unexpectedly is logged to the client and
leaves the previous diagnostics; the server keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from . import assist
from .fixes import quick_fixes
from .session import BundleSession, Checker, bundle_root, to_lsp

logger = logging.getLogger(__name__)

#: Quiet time after a change before the bundle is re-checked (seconds).
CHECK_DELAY_S = 0.15

_KINDS = {"field": lsp.CompletionItemKind.Field, "name": lsp.CompletionItemKind.Variable,
          "function": lsp.CompletionItemKind.Function, "keyword": lsp.CompletionItemKind.Keyword,
          "value": lsp.CompletionItemKind.EnumMember}


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
        # Per bundle: the scheduled check, and a count of edits (a check whose count
        # is no longer current is stale). One worker: checks of a bundle never overlap.
        self._timers: dict[Path, asyncio.TimerHandle] = {}
        self._edits: dict[Path, int] = {}
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="dispatchflow-check")
        self._checks: set[asyncio.Task] = set()  # the loop keeps only weak references

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

    def _open_documents(self, session: BundleSession) -> tuple[dict[str, str], dict[str, int]]:
        """The text and version of each open document of ``session``'s bundle."""
        texts, versions = {}, {}
        for doc_uri, doc in self.workspace.text_documents.items():
            other = self.session_for(doc_uri)
            if other is not None and other[0] is session:
                texts[other[1]] = doc.source
                versions[other[1]] = doc.version or 0
        return texts, versions

    def schedule(self, uri: str, delay: float = CHECK_DELAY_S) -> None:
        """Re-check the bundle of ``uri`` after ``delay`` seconds without further
        edits, then publish (see :meth:`refresh`); an earlier pending check is dropped."""
        found = self.session_for(uri)
        if found is None:
            return
        root = found[0].root
        self._edits[root] = self._edits.get(root, 0) + 1
        if (pending := self._timers.pop(root, None)) is not None:
            pending.cancel()
        loop = asyncio.get_running_loop()
        self._timers[root] = loop.call_later(delay, self._start, root, uri)

    def _start(self, root: Path, uri: str) -> None:
        self._timers.pop(root, None)
        task = asyncio.get_running_loop().create_task(self.refresh(uri))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def refresh(self, uri: str) -> None:
        """Re-check the bundle of ``uri`` in the worker thread and publish diagnostics
        for all its files, unless an edit arrived meanwhile (the result is stale)."""
        found = self.session_for(uri)
        if found is None:
            return
        session, rel = found
        edits = self._edits.get(session.root, 0)
        texts, versions = self._open_documents(session)
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._worker, session.check, texts)
        except Exception as exc:  # a checker bug must not take the editor's server down
            logger.exception("check failed")
            self.window_log_message(lsp.LogMessageParams(
                lsp.MessageType.Error, f"dispatchflow: check of {session.root} failed: {exc!r}"))
            return
        if self._edits.get(session.root, 0) != edits:
            return  # stale: the check scheduled by the later edit publishes
        self.publish(session, rel, session.absorb(result), versions)

    def refresh_now(self, session: BundleSession, rel: str) -> None:
        """Re-check ``session``'s bundle on this thread and publish (for a first
        completion or hover that comes before any check finished)."""
        texts, versions = self._open_documents(session)
        self.publish(session, rel, session.recheck(texts), versions)

    def publish(self, session: BundleSession, rel: str, by_file: dict[str, list],
                versions: dict[str, int]) -> None:
        """Publish ``by_file`` (see :meth:`BundleSession.recheck`); the edited file
        ``rel`` always hears back, clean or not."""
        by_file.setdefault(rel, [])
        for rel, items in by_file.items():
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=from_fs_path(str(session.root / rel)) or rel, version=versions.get(rel),
                diagnostics=[to_lsp(d) for d in items]))

    def cursor(self, uri: str, position: lsp.Position):
        """(draft app, lines, line, code-point column, is .rules) at a cursor, or None."""
        found = self.session_for(uri)
        if found is None:
            return None
        session, rel = found
        if session.draft is None:
            try:
                self.refresh_now(session, rel)
            except Exception:  # logged; completion and hover just have nothing to offer
                logger.exception("check failed")
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
        ls.schedule(params.text_document.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: BundleServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: BundleServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: BundleServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)  # the file on disk counts again

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def code_action(ls: BundleServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = [line.rstrip("\r\n") for line in doc.lines]
        return quick_fixes(params.text_document.uri, lines, params.context.diagnostics)

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[".", '"', "'"]))
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
