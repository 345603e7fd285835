"""Channel endpoints ``/channels``: signed webhooks and e-mails become records.

``POST /channels/<name>`` takes a JSON object for a webhook channel;
``POST /channels/<name>/email`` takes a raw RFC 822 message
(``Content-Type: message/rfc822`` or ``application/octet-stream``) for an
e-mail channel, as a mail gateway forwards it. Both are authenticated by a
signature header ``t=<unix>,v1=<hex>``: HMAC-SHA256 of the time, the
``Idempotency-Key`` header and the raw body (no session, no token; see
:mod:`dispatchflow.platform.intake.signatures`), which is why the blueprint is
CSRF-exempt. The work is done in
:mod:`dispatchflow.platform.intake.channels`; errors are problem+json:

====  ===============================================================
400   the body is not a JSON object / not a message; a malformed Idempotency-Key
401   signature missing, wrong, or its time outside the tolerance (a replay)
404   no such channel (or not of that kind)
413   the body is larger than the channel's limit
415   an e-mail sent with another Content-Type
422   the mapped record is not valid (field errors; nothing written)
503   the channel's secret is not configured, or no app version
====  ===============================================================
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ...errors import DispatchflowError
from ...platform.intake.channels import (
    BadMessage,
    ChannelNotConfigured,
    Delivery,
    MessageTooLarge,
    SignatureInvalid,
    channel,
    deliver_email,
    deliver_webhook,
)
from ...platform.intake.signatures import BadKey
from ...platform.runtime.state import NoActiveVersion
from ..auth.views import runtime
from ..problems import from_error, problem

bp = Blueprint("channels", __name__, url_prefix="/channels")

EMAIL_TYPES = ("message/rfc822", "application/octet-stream")

_PROBLEMS: list[tuple[type[DispatchflowError], int, str, str]] = [
    (ChannelNotConfigured, 503, "channel-not-configured", "Channel not configured"),
    (SignatureInvalid, 401, "bad-signature", "Signature required"),
    (MessageTooLarge, 413, "too-large", "Request too large"),
    (BadMessage, 400, "bad-message", "Malformed message"),
    (BadKey, 400, "bad-idempotency-key", "Malformed Idempotency-Key"),
    (NoActiveVersion, 503, "no-version", "No app version"),
]


@bp.errorhandler(DispatchflowError)
def _dispatchflow_error(exc: DispatchflowError) -> Response:
    for cls, status, slug, title in _PROBLEMS:
        if isinstance(exc, cls):
            return problem(status, slug, title, exc.message, hint=exc.hint)
    return from_error(exc)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Response:
    return problem(413, "too-large", "Request too large", "the request body is too large")


def _body(limit: int, what: str) -> bytes:
    """The raw body, read at most ``limit`` bytes far (MessageTooLarge beyond)."""
    length = request.content_length
    if length is not None and length > limit:
        raise MessageTooLarge(f"the body is larger than {what}")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise MessageTooLarge(f"the body is larger than {what}")
    return data


@bp.post("/<name>")
def webhook(name: str) -> tuple[Response, int]:
    rt = runtime()
    rt.refresh()
    ch = channel(rt.app, name, "webhook")
    ch.secret()  # refuse before reading anything when the channel cannot authenticate
    body = _body(ch.max_body_bytes, f"{ch.max_body_bytes // 1024} KB")
    delivery = deliver_webhook(rt, name, body, request.headers.get(ch.signature_header),
                               key=request.headers.get("Idempotency-Key"))
    return _answer(delivery)


@bp.post("/<name>/email")
def email(name: str) -> tuple[Response, int] | Response:
    rt = runtime()
    rt.refresh()
    ch = channel(rt.app, name, "email")
    ch.secret()
    if request.mimetype not in EMAIL_TYPES:
        return problem(415, "unsupported-media-type", "Unsupported media type",
                       f"send the raw message as {' or '.join(EMAIL_TYPES)}, "
                       f"not {request.mimetype or 'no Content-Type'}")
    limit = int(rt.settings.max_upload_mb * 1024 * 1024)
    raw = _body(limit, f"{rt.settings.max_upload_mb:g} MB")
    delivery = deliver_email(rt, name, raw, request.headers.get(ch.signature_header),
                             key=request.headers.get("Idempotency-Key"))
    return _answer(delivery)


def _answer(delivery: Delivery) -> tuple[Response, int]:
    """201 for a new record; 200 naming the same record for a repeated delivery."""
    body = {"id": delivery.record.get("id"), "skipped": delivery.skipped,
            "duplicate": delivery.duplicate}
    return jsonify(body), 200 if delivery.duplicate else 201
