"""Who is calling: session login for pages, bearer tokens for the API.

The API accepts only ``Authorization: Bearer <token>`` (never the session
cookie), which is why it can be CSRF-exempt. Pages use a signed session
cookie (HttpOnly, SameSite=Lax) and CSRF tokens on every form.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ...platform.assembly import Runtime
from ...platform.records.actors import Actor
from ...platform.records.users import actor_for_token, authenticate, load_actor
from ..i18n import locale, t
from .redirects import safe_local_path

bp = Blueprint("auth", __name__)


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["dispatchflow"]
    return rt


def bearer_token() -> str | None:
    """The bearer token sent with this request (not yet checked), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_actor() -> Actor | None:
    """The actor of a valid bearer token on this request, or None.

    Looked up on every request (never cached), so a revoked token, an expired
    one or one of a deactivated user is refused at once.
    """
    token = bearer_token()
    return None if token is None else actor_for_token(runtime().engine, token)


def session_actor() -> Actor | None:
    """The logged-in user of this browser session, or None."""
    if "actor" not in g:
        user_id = session.get("user_id")
        g.actor = load_actor(runtime().engine, user_id) if user_id else None
    actor: Actor | None = g.actor
    return actor


def signed_in_request() -> bool:
    """Whether this request came with credentials: a bearer token or a signed-in session.

    Also true when the request signed its user in or out (the session changed).
    """
    if request.headers.get("Authorization"):
        return True
    return bool(session.get("user_id") or g.get("actor") or g.get("api_actor")
                or session.modified)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if session_actor() is None:
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)
    return wrapped


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would let a phishing link bounce through us.
    return safe_local_path(target) or url_for("portal.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        actor = authenticate(runtime().engine, request.form.get("username", ""),
                             request.form.get("password", ""))
        if actor is not None:
            lang = session.get("lang")
            session.clear()  # a fresh session on login; the chosen language stays
            session["user_id"] = actor.user_id
            if lang:
                session["lang"] = lang
            return redirect(_safe_next(request.args.get("next")))
        error = t("login_failed")
    return render_template("auth/login.html", error=error, lang=locale()), 200 if error is None \
        else 401


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
