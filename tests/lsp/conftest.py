"""A real LSP client (pygls) driving ``dispatchflow lsp`` as a subprocess over stdio.

:class:`Editor` wraps the asynchronous client in plain method calls so the tests
read like an editing session: open a file, change it, wait for diagnostics, ask
for completion and hover. The server runs this checkout's code (``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

CHECKOUT = Path(__file__).resolve().parents[2]
REFERENCE_BUNDLE = CHECKOUT / "examples" / "field-service"


class Editor:
    """An editor session against one ``dispatchflow lsp`` process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("tests", "1")
        self.diagnostics: dict[str, list[lsp.Diagnostic]] = {}
        self.versions: dict[str, int] = {}
        self.published: list[lsp.PublishDiagnosticsParams] = []  # every one, in order

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: lsp.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params.diagnostics
            self.published.append(params)

        env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
        self.run(self.client.start_io(sys.executable, "-m", "dispatchflow.cli", "lsp",
                                      cwd=str(CHECKOUT), env=env))
        self.run(self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=self.uri(""),
            workspace_folders=[lsp.WorkspaceFolder(self.uri(""), "bundle")])))
        self.client.initialized(lsp.InitializedParams())

    def run(self, coroutine):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, 30))

    def uri(self, rel: str) -> str:
        uri = from_fs_path(str(self.root / rel) if rel else str(self.root))
        assert uri is not None
        return uri

    def open(self, rel: str, text: str | None = None) -> None:
        """didOpen ``rel`` with ``text`` (default: the file's text on disk)."""
        text = (self.root / rel).read_text("utf-8") if text is None else text
        self.versions[rel] = 1
        self.diagnostics.pop(self.uri(rel), None)
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(self.uri(rel), "dispatchflow", 1, text)))

    def change(self, rel: str, text: str) -> None:
        """didChange ``rel`` to the whole of ``text``."""
        self.versions[rel] += 1
        self.diagnostics.pop(self.uri(rel), None)
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(self.versions[rel], self.uri(rel)),
            [lsp.TextDocumentContentChangeWholeDocument(text)]))

    def wait_diagnostics(self, rel: str, timeout: float = 20) -> list[lsp.Diagnostic]:
        """The next diagnostics published for ``rel`` (after the last open/change)."""
        deadline = time.monotonic() + timeout
        while self.uri(rel) not in self.diagnostics:
            assert time.monotonic() < deadline, f"no diagnostics for {rel} within {timeout} s"
            self.run(asyncio.sleep(0.02))
        return list(self.diagnostics[self.uri(rel)])

    def completion(self, rel: str, line: int, character: int) -> list[str]:
        """Labels of the completion items at 0-based (line, character)."""
        result = self.run(self.client.text_document_completion_async(lsp.CompletionParams(
            lsp.TextDocumentIdentifier(self.uri(rel)), lsp.Position(line, character))))
        items = result.items if isinstance(result, lsp.CompletionList) else result or []
        return [item.label for item in items]

    def hover(self, rel: str, line: int, character: int) -> str | None:
        """The hover text at 0-based (line, character), or None."""
        result = self.run(self.client.text_document_hover_async(lsp.HoverParams(
            lsp.TextDocumentIdentifier(self.uri(rel)), lsp.Position(line, character))))
        if result is None:
            return None
        assert isinstance(result.contents, lsp.MarkupContent)
        return result.contents.value

    def code_actions(self, rel: str, diagnostics: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
        """The code actions offered for ``diagnostics`` (their ranges' union) in ``rel``."""
        rng = lsp.Range(min((d.range.start for d in diagnostics), key=lambda p: (p.line, p.character)),
                        max((d.range.end for d in diagnostics), key=lambda p: (p.line, p.character)))
        result = self.run(self.client.text_document_code_action_async(lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(self.uri(rel)), rng, lsp.CodeActionContext(diagnostics))))
        return [a for a in result or [] if isinstance(a, lsp.CodeAction)]

    def close(self) -> None:
        try:
            self.run(self.client.shutdown_async(None))
            self.client.exit(None)
            self.run(self.client.stop())
        finally:
            self.loop.close()


@pytest.fixture
def reference_copy(tmp_path: Path) -> Path:
    """A copy of the reference bundle (examples/field-service) in ``tmp_path``."""
    root = tmp_path / "field-service"
    shutil.copytree(REFERENCE_BUNDLE, root)
    return root


@pytest.fixture
def editor(reference_copy: Path) -> Iterator[Editor]:
    """An initialized LSP session whose workspace is the copied reference bundle."""
    session = Editor(reference_copy)
    yield session
    session.close()


@pytest.fixture
def line_of() -> Callable[[str, str], int]:
    """``line_of(text, needle)``: the 0-based number of the first line holding needle."""
    def find(text: str, needle: str) -> int:
        return next(i for i, line in enumerate(text.splitlines()) if needle in line)
    return find
