"""Every error answers in its caller's terms: pages get the site's error page, machines
problem+json.

A page error (403, 404, 409, 410, 413, 422, 500, 503, ...) renders
``error.html`` in the visitor's language with the status, what happened and a
next step (log in, go home, reload the record, correct the form, try again
later). Nothing reaches the browser as a bare "Internal Server Error": an
unexpected exception is logged and shown as the site's 500 page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import (
    ConflictError,
    DispatchflowError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from ..platform.assembly import Runtime
from ..platform.runtime.state import NoActiveVersion
from .problems import from_error, problem

log = logging.getLogger(__name__)

MACHINE_PATHS = ("/api/", "/channels/")

#: Statuses the error page has its own words for; others use the nearest class (4xx/5xx).
PAGE_STATUSES = (400, 401, 403, 404, 405, 409, 410, 413, 422, 500, 503)

#: What is left when even the error page cannot be rendered: still ours, still a way on.
FALLBACK = ('<!doctype html><meta charset="utf-8"><title>{status}</title>'
            '<main class="error-page"><h1>{status}</h1><p>出错了 · Something went wrong</p>'
            '<p><a href="/">首页 · Home</a></p></main>')

_KINDS: list[tuple[type[DispatchflowError], int]] = [
    (ValidationError, 422), (NotFoundError, 404), (PermissionDenied, 403), (ConflictError, 409),
]


def error_page(status: int, detail: str | None = None, **context: Any) -> tuple[str, int]:
    """The site's error page for ``status`` (with an optional extra sentence)."""
    key = status if status in PAGE_STATUSES else (500 if status >= 500 else 400)
    try:
        return render_template("error.html", status=status, key=key, detail=detail,
                               back=request.referrer if _local(request.referrer) else None,
                               **context), status
    except Exception:  # noqa: BLE001 - the page itself failed (e.g. the database is down)
        log.exception("the error page for %s failed", status)
        return FALLBACK.format(status=status), status


def register_error_handlers(app: Flask, rt: Runtime) -> None:
    """Install the handlers: problem+json under :data:`MACHINE_PATHS`, pages elsewhere."""

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> Any:
        limit = f"{rt.settings.max_upload_mb:g} MB"
        if _machine():
            return problem(413, "too-large", "Request too large",
                           f"the request is larger than {limit}")
        return error_page(413, f"> {limit}")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if _machine():  # machine callers always get problem+json, whatever layer refused
            slug = (exc.name or "error").lower().replace(" ", "-")
            response = problem(exc.code or 500, slug, exc.name or "Error", exc.description)
            if exc.code == 405 and getattr(exc, "valid_methods", None):
                response.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", []))
            return response
        if exc.code is None or exc.code < 400:  # redirects raised as exceptions pass through
            return exc
        page, status = error_page(exc.code)
        response = Response(page, status=status, mimetype="text/html")
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", []))
        return response

    @app.errorhandler(NoActiveVersion)
    def _no_version(exc: NoActiveVersion) -> Any:
        if _machine():
            return problem(503, "no-version", "No app version", exc.message, hint=exc.hint)
        return error_page(503)

    @app.errorhandler(DispatchflowError)
    def _platform_error(exc: DispatchflowError) -> Any:
        if _machine():
            return from_error(exc)
        status = next((code for cls, code in _KINDS if isinstance(exc, cls)), 400)
        return error_page(status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if _machine():
            return problem(500, "internal", "Internal error",
                           "the server failed; the error is logged")
        return error_page(500)


def _machine() -> bool:
    return request.path.startswith(MACHINE_PATHS)


def _local(url: str | None) -> bool:
    """Only our own pages as "back" links (a Referer is whatever the browser sent)."""
    if not url:
        return False
    host = request.host_url
    return url.startswith(host) and url != request.url
