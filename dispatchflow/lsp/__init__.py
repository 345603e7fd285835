"""The editor side of the language: a Language Server for bundle folders on disk.

What belongs here: the ``dispatchflow lsp`` server (pygls) -- diagnostics from
the same checker as ``dispatchflow check`` (debounced), completion and hover
from the compiled entity model, "did you mean" quick fixes -- and the
conversions between diagnostics and LSP.
What does not: checking itself (``dsl`` and the layers the checker passed in
use) and anything of the platform: the server imports ``dsl`` and the pure
layers only; the command that starts it (``cli/editor.py``) hands it the checker.
"""
