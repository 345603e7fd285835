"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..forms.render import STATIC_DIR, asset_tags
from ..platform.config import Settings
from ..platform.runtime import NoActiveVersion, Runtime
from . import (  # noqa: F401 (routes on api.bp)
    api,
    api_docs,
    api_escalations,
    api_flows,
    auth,
    channels,
    portal,
)
from .i18n import label, locale, t
from .problems import problem

csrf = CSRFProtect()

MACHINE_PATHS = ("/api/", "/channels/")

# Pages load only our own scripts and styles; uploads and signatures are data: images.
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
       "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None,
               **config: Any) -> Flask:
    """Build the web app. ``runtime`` (or one from ``settings``) is shared by all requests."""
    rt = runtime or Runtime(settings or Settings.from_env())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=rt.settings.secret_key,
        MAX_CONTENT_LENGTH=int(rt.settings.max_upload_mb * 1024 * 1024) + 64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_AS_ASCII=False,
    )
    app.config.update(config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["dispatchflow"] = rt
    csrf.init_app(app)
    csrf.exempt(api.bp)
    csrf.exempt(channels.bp)  # callers authenticate every request by HMAC signature
    app.register_blueprint(api.bp)  # api_flows adds its routes to it
    app.register_blueprint(channels.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(portal.bp)
    app.register_blueprint(Blueprint("forms_assets", __name__, static_folder=str(STATIC_DIR),
                                     static_url_path="/static/forms"))
    app.jinja_env.globals.update(t=t, label=label, locale=locale,
                                 form_assets=Markup(asset_tags("/static/forms")))

    @app.context_processor
    def _signed_in() -> dict[str, Any]:
        return {"actor": auth.session_actor()} if not request.path.startswith(MACHINE_PATHS) \
            else {}

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> Any:
        limit = f"{rt.settings.max_upload_mb:g} MB"
        if request.path.startswith(MACHINE_PATHS):
            return problem(413, "too-large", "Request too large",
                           f"the request is larger than {limit}")
        return render_template("error.html", message=f"> {limit}"), 413

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        # Machine callers always get problem+json, whatever layer rejected the request.
        if request.path.startswith(MACHINE_PATHS):
            slug = (exc.name or "error").lower().replace(" ", "-")
            response = problem(exc.code or 500, slug, exc.name or "Error", exc.description)
            if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        return exc

    @app.errorhandler(NoActiveVersion)
    def _no_version(_exc: NoActiveVersion) -> Any:
        return render_template("error.html", message=t("no_version")), 503

    return app
