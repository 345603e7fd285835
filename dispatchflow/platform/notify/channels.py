"""Transports of the notification channels, registered by name: ``email``, ``webhook``, ``inbox``.

A transport hands one :class:`Message` over and returns a :class:`Receipt`, or
raises :class:`~.errors.DeliveryError` saying whether a retry may help. Adding a
channel is adding a class to :data:`TRANSPORTS` (and the name to the
notification schema); nothing else dispatches on channel names.

Configuration comes from the environment, read when a transport is built:

* e-mail: ``DISPATCHFLOW_SMTP_HOST`` (required), ``DISPATCHFLOW_SMTP_PORT``
  (default 587 with STARTTLS, 465 with SSL, else 25), ``DISPATCHFLOW_SMTP_USER``,
  ``DISPATCHFLOW_SMTP_PASSWORD``, ``DISPATCHFLOW_SMTP_FROM`` (default
  ``dispatchflow@localhost``), ``DISPATCHFLOW_SMTP_STARTTLS`` and
  ``DISPATCHFLOW_SMTP_SSL`` (``1``/``true``/``yes``). Multipart text + HTML, UTF-8.
* webhook: the URL is in the variable the notification names
  (``webhook_url_env``, which must start with :data:`WEBHOOK_URL_PREFIX`);
  ``DISPATCHFLOW_WEBHOOK_SECRET`` signs the body:
  ``X-Dispatchflow-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``.
  The body (JSON, UTF-8) carries a ``timestamp`` (also sent as
  ``X-Dispatchflow-Timestamp``) so receivers can refuse replays. The destination
  must pass the policy of :mod:`.destinations` (public addresses, plus
  ``DISPATCHFLOW_WEBHOOK_ALLOW``). Redirects are not followed; 408, 425, 429 and
  5xx are retried, other 4xx are not.

A transport class may say what it lacks without sending
(``configuration_error(env, address)``); a channel lacking its configuration
raises a DeliveryError marked ``unconfigured``.
* inbox: a row in ``df_inbox`` per message (idempotent per delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from markupsafe import escape
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .. import defaults
from ..config import WEBHOOK_ALLOW_ENV
from ..store.db import inbox
from .addresses import refusal, single_address
from .destinations import AllowList, Destination, check_destination, pinned_handlers
from .errors import DeliveryError

#: Header names of webhook deliveries.
SIGNATURE_HEADER = "X-Dispatchflow-Signature"
TIMESTAMP_HEADER = "X-Dispatchflow-Timestamp"
DELIVERY_HEADER = "X-Dispatchflow-Delivery"

#: Environment variable holding the webhook signing secret.
WEBHOOK_SECRET_ENV = "DISPATCHFLOW_WEBHOOK_SECRET"


#: The only variables a notification's ``webhook_url_env`` may name start with this
#: (so a bundle cannot make the workers read, and POST to, other settings).
WEBHOOK_URL_PREFIX = "DISPATCHFLOW_WEBHOOK_URL_"

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Message:
    """What a transport sends: one delivery row, composed (a digest lists its ``items``)."""

    delivery_id: int
    notification: str
    label: str
    entity: str
    record_id: int
    channel: str
    recipient: str
    recipient_name: str
    user_id: str | None
    address: str | None
    locale: str
    subject: str
    text: str
    html: str
    severity: str
    cause: str | None
    created_at: datetime
    items: tuple[Mapping[str, Any], ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """A successful hand-over: what the other side said."""

    detail: str
    status: int | None = None


class Transport(Protocol):
    """Sends messages of one channel."""

    name: ClassVar[str]

    def send(self, message: Message, now: datetime) -> Receipt:
        """Hand ``message`` over; raise DeliveryError when that fails."""
        ...


def sign(secret: str, body: bytes) -> str:
    """The signature header value of a webhook body: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant time)."""
    return hmac.compare_digest(sign(secret, body), header.strip())


def html_document(message: Message) -> str:
    """The HTML part of an e-mail: the message's HTML fragment in a minimal document."""
    return (f'<!DOCTYPE html>\n<html lang="{escape(message.locale)}"><head><meta charset="utf-8">'
            f"<title>{escape(message.subject)}</title></head>\n<body>{message.html}</body></html>\n")


# ------------------------------------------------------------------ e-mail


class EmailTransport:
    """SMTP with STARTTLS or SSL and optional login (see module docs)."""

    name: ClassVar[str] = "email"

    def __init__(self, engine: Engine | None = None, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.env = env
        self.host = env.get("DISPATCHFLOW_SMTP_HOST", "")
        self.starttls = env.get("DISPATCHFLOW_SMTP_STARTTLS", "").lower() in _TRUE
        self.use_ssl = env.get("DISPATCHFLOW_SMTP_SSL", "").lower() in _TRUE
        default_port = 465 if self.use_ssl else 587 if self.starttls else 25
        self.port = int(env.get("DISPATCHFLOW_SMTP_PORT") or default_port)
        self.user = env.get("DISPATCHFLOW_SMTP_USER", "")
        self.password = env.get("DISPATCHFLOW_SMTP_PASSWORD", "")
        self.sender = env.get("DISPATCHFLOW_SMTP_FROM") or "dispatchflow@localhost"

    def build(self, message: Message, now: datetime) -> EmailMessage:
        """The MIME message (multipart/alternative: text, then HTML)."""
        if not message.address:
            raise DeliveryError("the message has no e-mail address", retryable=False)
        if single_address(message.address) is None:
            raise DeliveryError(refusal(message.address, "the recipient address"),
                                retryable=False)
        domain = self.sender.rpartition("@")[2] or "localhost"
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = formataddr((message.recipient_name, message.address)) \
            if message.recipient_name and message.recipient_name != message.address \
            else message.address
        mail["Date"] = format_datetime(now)
        # The same delivery always has the same Message-ID, so a resend after a
        # lost acknowledgement can be recognised by the receiving side.
        mail["Message-ID"] = f"<dispatchflow.{message.delivery_id}@{domain}>"
        mail["X-Dispatchflow-Notification"] = message.notification
        mail[DELIVERY_HEADER] = str(message.delivery_id)
        mail.set_content(message.text or message.subject, charset="utf-8")
        mail.add_alternative(html_document(message), subtype="html", charset="utf-8")
        return mail

    @staticmethod
    def configuration_error(env: Mapping[str, str], address: str | None) -> DeliveryError | None:
        """What e-mail lacks in ``env`` (an ``unconfigured`` error), or None."""
        if env.get("DISPATCHFLOW_SMTP_HOST"):
            return None
        return DeliveryError("e-mail is not configured: DISPATCHFLOW_SMTP_HOST is not set",
                             retryable=False, unconfigured=True,
                             hint="set DISPATCHFLOW_SMTP_HOST (and DISPATCHFLOW_SMTP_FROM) for "
                                  "the workers")

    def send(self, message: Message, now: datetime) -> Receipt:
        problem = self.configuration_error(self.env, message.address)
        if problem is not None:
            raise problem
        mail = self.build(message, now)
        timeout = defaults.NOTIFY_SMTP_TIMEOUT
        try:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout,
                                                  context=ssl.create_default_context()) \
                if self.use_ssl else smtplib.SMTP(self.host, self.port, timeout=timeout)
            with smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"the SMTP server refused {message.address}: {exc.recipients}",
                                retryable=any(c < 500 for c in codes),
                                status=codes[0] if codes else None) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login failed ({exc.smtp_code})", retryable=False,
                                status=exc.smtp_code, hint="check DISPATCHFLOW_SMTP_USER and "
                                "DISPATCHFLOW_SMTP_PASSWORD") from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"the SMTP server answered {exc.smtp_code} "
                                f"{exc.smtp_error!r}", retryable=exc.smtp_code < 500,
                                status=exc.smtp_code) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"the SMTP server does not support it: {exc}", retryable=False,
                                hint="unset DISPATCHFLOW_SMTP_STARTTLS or use another "
                                "server") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot reach the SMTP server {self.host}:{self.port}: {exc}",
                                retryable=True) from exc
        if refused:
            raise DeliveryError(f"the SMTP server refused {sorted(refused)}", retryable=False)
        return Receipt(f"accepted by {self.host}:{self.port}", 250)


# ------------------------------------------------------------------ webhook


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookTransport:
    """A signed JSON POST to the URL in the notification's ``webhook_url_env`` variable."""

    name: ClassVar[str] = "webhook"

    def __init__(self, engine: Engine | None = None, env: Mapping[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env

    def body(self, message: Message, now: datetime) -> bytes:
        """The exact bytes POSTed (and signed)."""
        document = {
            "delivery_id": message.delivery_id, "notification": message.notification,
            "label": message.label, "severity": message.severity, "entity": message.entity,
            "record_id": message.record_id, "locale": message.locale,
            "subject": message.subject, "body": message.text, "cause": message.cause,
            "created_at": message.created_at.isoformat(), "timestamp": int(now.timestamp()),
            "recipients": list(message.payload.get("recipients") or []),
            "items": [dict(i) for i in message.items],
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"),
                          sort_keys=True).encode("utf-8")

    @staticmethod
    def configuration_error(env: Mapping[str, str], address: str | None) -> DeliveryError | None:
        """What a webhook to the URL in variable ``address`` lacks in ``env``, or None.

        A variable outside :data:`WEBHOOK_URL_PREFIX` is refused (not read); an unset
        URL or secret, a URL that is not http(s) and a malformed allow-list are
        ``unconfigured``.
        """
        var = address or ""
        if not var.startswith(WEBHOOK_URL_PREFIX):
            return DeliveryError(f"the webhook URL variable {var or '(none)'} does not start "
                                 f"with {WEBHOOK_URL_PREFIX}: it is not read", retryable=False,
                                 hint=f"rename webhook_url_env to {WEBHOOK_URL_PREFIX}<NAME> in "
                                      "the notification and publish again")
        url = env.get(var, "")
        if not url:
            return DeliveryError(f"the webhook URL variable {var} is not set", retryable=False,
                                 unconfigured=True, hint=f"set {var} for the workers")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            return DeliveryError(f"the webhook URL in {var} must start with https:// or "
                                 "http:// and name a host", retryable=False, unconfigured=True)
        if not env.get(WEBHOOK_SECRET_ENV):
            return DeliveryError(f"webhooks are not signed: {WEBHOOK_SECRET_ENV} is not set",
                                 retryable=False, unconfigured=True,
                                 hint=f"set {WEBHOOK_SECRET_ENV} for the workers and give the "
                                      "receiver the same secret")
        try:
            AllowList.parse(env.get(WEBHOOK_ALLOW_ENV), WEBHOOK_ALLOW_ENV)
        except DeliveryError as exc:
            return exc
        return None

    def destination(self, url: str) -> Destination:
        """The checked destination of ``url`` (raises DeliveryError when refused)."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return check_destination(parts.hostname or "", port,
                                 AllowList.parse(self.env.get(WEBHOOK_ALLOW_ENV),
                                                 WEBHOOK_ALLOW_ENV))

    def send(self, message: Message, now: datetime) -> Receipt:
        problem = self.configuration_error(self.env, message.address)
        if problem is not None:
            raise problem
        url = self.env[message.address or ""]
        secret = self.env[WEBHOOK_SECRET_ENV]
        destination = self.destination(url)
        body = self.body(message, now)
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "dispatchflow-notify",
            SIGNATURE_HEADER: sign(secret, body),
            TIMESTAMP_HEADER: str(int(now.timestamp())),
            DELIVERY_HEADER: str(message.delivery_id),
        })
        opener = urllib.request.build_opener(_NoRedirect, *pinned_handlers(destination))
        try:
            with opener.open(request, timeout=defaults.NOTIFY_WEBHOOK_TIMEOUT) as response:
                status = int(response.status)
                response.read(4096)
        except urllib.error.HTTPError as exc:
            code = int(exc.code)
            detail = exc.read(500).decode("utf-8", "replace")
            exc.close()
            raise DeliveryError(f"the webhook answered {code}: {detail}".strip(),
                                retryable=code >= 500 or code in (408, 425, 429),
                                status=code) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"cannot reach the webhook: {reason}", retryable=True) from exc
        return Receipt(f"answered {status}", status)


# ------------------------------------------------------------------ inbox


class InboxTransport:
    """Writes the message into the recipient's inbox (``df_inbox``), once per delivery."""

    name: ClassVar[str] = "inbox"

    def __init__(self, engine: Engine | None = None, env: Mapping[str, str] | None = None) -> None:
        if engine is None:
            raise ValueError("the inbox transport needs the database engine")
        self.engine = engine

    def send(self, message: Message, now: datetime) -> Receipt:
        if not message.user_id:
            raise DeliveryError("an inbox message needs a user", retryable=False)
        try:
            with self.engine.begin() as conn:
                conn.execute(inbox.insert().values(
                    user_id=message.user_id, delivery_id=message.delivery_id,
                    notification=message.notification, subject=message.subject,
                    body=message.text, body_html=message.html, severity=message.severity,
                    entity=message.entity, record_id=message.record_id, created_at=now))
        except IntegrityError:
            return Receipt("already in the inbox")
        return Receipt(f"in the inbox of {message.user_id}")


#: The channel registry: name -> transport class, built as ``cls(engine, env)``.
TRANSPORTS: dict[str, Callable[[Engine | None, Mapping[str, str] | None], Transport]] = {
    "email": EmailTransport,
    "webhook": WebhookTransport,
    "inbox": InboxTransport,
}


def build_transport(channel: str, engine: Engine,
                    env: Mapping[str, str] | None = None) -> Transport:
    """The transport of ``channel`` configured from ``env`` (default: the environment).

    Raises DeliveryError (not retryable) for a channel nobody registered.
    """
    cls = TRANSPORTS.get(channel)
    if cls is None:
        raise DeliveryError(f"no transport for the channel '{channel}'", retryable=False,
                            hint=f"registered: {', '.join(sorted(TRANSPORTS))}")
    return cls(engine, env)
