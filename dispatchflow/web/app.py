"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup

from ..forms.render import STATIC_DIR, asset_tags
from ..platform.assembly import Runtime
from ..platform.config import Settings
from .api import (  # noqa: F401 (docs, escalations, flows, tokens add routes to api.bp)
    channels,
    docs,
    escalations,
    flows,
    tokens,
)
from .api import records as api
from .auth import views as auth
from .errors import MACHINE_PATHS, register_error_handlers
from .i18n import label, locale, t
from .live import views as live
from .portal import records as record_pages
from .portal import views as portal

csrf = CSRFProtect()

# Pages load only our own scripts and styles; uploads and signatures are data: images.
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
       "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _private(endpoint: str | None) -> bool:
    """Whether the response is for a signed-in user or token (or is the login page)."""
    if endpoint == "auth.login":
        return True
    if endpoint is not None and (endpoint == "static" or endpoint.endswith(".static")):
        return False  # shared assets, the same for everyone
    return auth.signed_in_request()


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
    app.register_blueprint(record_pages.bp)
    app.register_blueprint(live.bp)
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
        if _private(request.endpoint):
            # What a signed-in user or token sees must not stay in a shared or
            # back-button cache after logout.
            response.headers["Cache-Control"] = "no-store"
        return response

    register_error_handlers(app, rt)
    return app
