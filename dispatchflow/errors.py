"""The one error root of dispatchflow and its per-layer families.

Every error dispatchflow raises on purpose derives from :class:`DispatchflowError`
and carries structured fields (file, line, column, path, hint) so callers can
render it for a terminal, an editor or an HTTP problem document.
"""

from __future__ import annotations


class DispatchflowError(Exception):
    """Root of all dispatchflow errors.

    ``message`` says what went wrong, ``hint`` how to fix it; the positional
    fields are optional and 1-based where given.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.hint = hint

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
                if self.column:
                    where += f":{self.column}"
            where += ": "
        text = where + self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class BundleError(DispatchflowError):
    """A bundle could not be loaded or compiled; ``diagnostics`` lists every problem."""

    def __init__(self, message: str, diagnostics: list | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.diagnostics = list(diagnostics or [])


class DslError(DispatchflowError):
    """An expression or rule text is malformed or ill-typed."""


class EvaluationError(DispatchflowError):
    """A compiled rule, table or policy failed at run time (e.g. a unique table matched twice)."""


class ValidationError(DispatchflowError):
    """Submitted data does not satisfy an entity or form schema.

    ``errors`` lists field-level problems (objects with ``field``, ``code`` and
    ``message``) when there are any.
    """

    def __init__(self, message: str, *, errors: list | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.errors = list(errors or [])


class NotFoundError(DispatchflowError):
    """No such record, or the actor may not see it (the two are indistinguishable)."""


class PermissionDenied(DispatchflowError):
    """The actor may not perform the requested operation."""


class ConflictError(DispatchflowError):
    """The operation conflicts with the current state (stale row version, claimed offer).

    ``errors`` lists the reasons one by one when there are several (objects with
    ``field``, ``code`` and ``message``, e.g. the hard filters a candidate fails).
    """

    def __init__(self, message: str, *, errors: list | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.errors = list(errors or [])


class QueryTimeout(DispatchflowError):
    """A database query ran past its time limit and was stopped (nothing was changed)."""
