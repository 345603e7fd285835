"""``GET /api/v1/docs``: the API document as a readable page (Swagger UI).

No token is needed to read the documentation, as for ``/api/v1/openapi.json``
(the document says what exists, never what is stored). The page loads only
our own built assets (``static/dist``, see ``frontend/``), so it runs under the
app's CSP (``script-src 'self'; style-src 'self'``).
"""

from __future__ import annotations

from flask import render_template

from .records import bp


@bp.get("/docs")
def docs() -> str:
    """The Swagger UI page over ``/api/v1/openapi.json``."""
    return render_template("api/api_docs.html")
