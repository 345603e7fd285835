"""Notifications: who is told what, when, and over which channel.

What belongs here: turning a bundle's ``notifications/*.yaml`` into messages
and getting them delivered — the compiled form of a notification (``spec``),
recipients resolved through the authorizer (``recipients``), sandboxed Jinja
templates (``sandbox``, ``templates``), quiet
hours, dedupe and digests decided at planning time (``service``, ``digest``),
transports registered by channel name (``channels``: e-mail, webhook, inbox),
users' inboxes (``inbox``) and a worker's check of its channels'
configuration (``setup``); the delivery tables are system tables
(:mod:`dispatchflow.platform.store.db`). What does not: deciding *that* something is
notified (rules and flows emit ``notify`` effects; the event runner calls
:func:`plan`) and showing inboxes (``web``). It may import ``records``, ``store``
and the layers below them.

The API the event runner and scheduler use: :func:`notifications_on`,
:func:`plan` (in the event's transaction), :func:`due` (each scheduler tick)
and :func:`deliver` (a job per delivery id). See :mod:`.service`.
"""

from .channels import TRANSPORTS, Message, Receipt, Transport, build_transport
from .errors import DeliveryError, NotificationError, TemplateRenderError
from .service import (
    acknowledge,
    deliver,
    deliveries_for,
    due,
    inbox,
    mark_read,
    notifications_on,
    plan,
    unread_count,
)
from .templates import render_message, template_problems

__all__ = [
    "TRANSPORTS", "DeliveryError", "Message", "NotificationError", "Receipt",
    "TemplateRenderError", "Transport", "acknowledge", "build_transport", "deliver",
    "deliveries_for", "due", "inbox", "mark_read", "notifications_on", "plan",
    "render_message", "template_problems", "unread_count",
]
