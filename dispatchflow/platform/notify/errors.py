"""The errors of notifications: templates that cannot render, messages that cannot be sent.

All derive from :class:`NotificationError` (a :class:`~dispatchflow.errors.DispatchflowError`),
so callers can catch the family; each carries the notification's name and, where it
applies, the locale and template part, so the message points at the YAML to fix.
"""

from __future__ import annotations

from ...errors import DispatchflowError


class NotificationError(DispatchflowError):
    """Root of the notification errors (an unknown notification, for instance)."""


class TemplateRenderError(NotificationError):
    """A subject or body template failed: syntax, an undefined name, a sandbox refusal,
    the time limit or a size cap. ``notification``, ``locale`` and ``part`` say which."""

    def __init__(self, message: str, *, notification: str, locale: str, part: str,
                 hint: str | None = None) -> None:
        where = f"notification '{notification}' ({part}, {locale or 'default'})"
        super().__init__(f"{where}: {message}", hint=hint)
        self.notification = notification
        self.locale = locale
        self.part = part
        self.cause = message


class DeliveryError(NotificationError):
    """A transport could not hand a message over.

    ``retryable`` says whether trying again later may help (a timeout, a 5xx, an
    SMTP 4xx) or not (a 4xx from the webhook, a refused address, missing
    configuration); ``status`` is the HTTP or SMTP status code when there is one.
    ``unconfigured`` marks a channel lacking its configuration (no SMTP host, an
    unset webhook URL or secret): its messages are held, not retried (see
    :func:`~.service.deliver`).
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 hint: str | None = None, unconfigured: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable and not unconfigured
        self.status = status
        self.unconfigured = unconfigured
