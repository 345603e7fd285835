"""Errors as RFC 9457 problem documents (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from flask import Response, json

from ..errors import (
    ConflictError,
    DispatchflowError,
    DslError,
    NotFoundError,
    PermissionDenied,
    QueryTimeout,
    ValidationError,
)

PROBLEM_TYPE = "https://dispatchflow.dev/problems/"

# error class -> (HTTP status, problem type slug, title)
_STATUS: list[tuple[type[DispatchflowError], int, str, str]] = [
    (ValidationError, 422, "validation", "The request is not valid"),
    (NotFoundError, 404, "not-found", "Not found"),
    (PermissionDenied, 403, "forbidden", "Not allowed"),
    (ConflictError, 409, "conflict", "Conflict"),
    (DslError, 400, "bad-filter", "The expression is not valid"),
    (QueryTimeout, 503, "query-timeout", "The query took too long"),
]


def problem(status: int, slug: str, title: str, detail: str | None = None,
            **extra: Any) -> Response:
    body = {"type": PROBLEM_TYPE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/problem+json")


def from_error(exc: DispatchflowError) -> Response:
    """The problem document for a dispatchflow error (500 for unexpected kinds)."""
    for cls, status, slug, title in _STATUS:
        if isinstance(exc, cls):
            errors = [{"field": e.field, "code": e.code, "message": e.message}
                      for e in getattr(exc, "errors", [])] or None
            return problem(status, slug, title, exc.message, errors=errors, hint=exc.hint)
    return problem(400, "bad-request", "Bad request", exc.message, hint=exc.hint)
