"""``GET /live``: the live-update stream of a signed-in page (see the package docs).

The response is long-lived: the server must not give it a whole worker.
``dispatchflow serve`` runs a threaded server; under gunicorn use ``gthread``
or ``gevent`` workers (docs/operations.md).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from ...platform.live.broker import BrokerLost, Subscription
from ..auth.views import runtime, session_actor
from ..problems import problem
from .stream import events, start

bp = Blueprint("live", __name__)


@bp.get("/live")
def live() -> Response:
    """Server-Sent Events: ``change`` events (entity, record_id, kind, row_version, at),
    ``resync`` when missed changes cannot be replayed, heartbeat comments.

    ``Last-Event-ID`` (header, or ``?last_event_id=``) resumes after that event.
    401 without a signed-in session.
    """
    actor = session_actor()
    if actor is None:
        return problem(401, "unauthorized", "Sign in first",
                       "sign in on /login to receive live updates")
    rt = runtime()
    rt.refresh()
    last = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    subscription: Subscription | None
    try:  # before reading the feed: nothing committed in between is missed
        subscription = rt.live.subscribe()
    except BrokerLost:
        subscription = None  # the stream sends what the feed has, then ends: retry later
    cursor, resync = start(rt, last)
    response = Response(events(rt, actor, cursor, resync, subscription),
                        mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events on at once
    return response
