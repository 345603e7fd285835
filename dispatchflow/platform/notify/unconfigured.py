"""Messages of channels that lack their configuration: held once, reported once, released
when the configuration appears.

A bundle may use a channel the environment does not configure (no
``DISPATCHFLOW_SMTP_HOST``, an unset webhook URL or secret). Failing and logging
every such message buried the log (the flows benchmark printed ~2,400 lines) and
made the messages look like delivery failures. Instead:

* :func:`~.service.deliver` marks the message ``unconfigured`` -- not retried, not an
  attempt, no log line of its own; the reason is in the row's ``last_error``;
* :func:`report_once` logs one warning per process and reason (``serve`` and
  ``worker`` report every missing setting at start, see
  :mod:`dispatchflow.platform.notify.setup`, and those count as reported);
* :func:`release`, run when ``serve`` or ``worker`` starts, puts the held messages
  of channels that are configured now back to ``pending`` (the scheduler then sends
  them) -- those planned within ``defaults.NOTIFY_UNCONFIGURED_MAX_AGE_SECONDS``;
  older ones become ``failed``, so a late configuration does not send a flood of
  stale messages.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from .. import defaults
from ..store.db import FAILED, PENDING, UNCONFIGURED, notifications
from .channels import TRANSPORTS
from .errors import DeliveryError

log = logging.getLogger(__name__)

N = notifications

_reported: set[str] = set()
_lock = threading.Lock()


def report_once(reason: str, *, say: bool = True) -> bool:
    """Log ``reason`` as a warning the first time this process meets it; True then.
    ``say=False`` only records it (it was reported in another form)."""
    with _lock:
        if reason in _reported:
            return False
        _reported.add(reason)
    if say:
        log.warning("notifications are held as unconfigured: %s (reported once)", reason)
    return True


def configuration_error(channel: str, address: str | None,
                        env: Mapping[str, str] | None = None) -> DeliveryError | None:
    """What ``channel`` (to ``address``) lacks in ``env`` (default: the environment), or
    None; a transport without a ``configuration_error`` check needs nothing."""
    check = getattr(TRANSPORTS.get(channel), "configuration_error", None)
    return None if check is None else check(os.environ if env is None else env, address)


class Released(NamedTuple):
    """What :func:`release` did: messages back to pending, and those too old to send."""

    pending: int
    expired: int


def release(engine: Engine, now: datetime, env: Mapping[str, str] | None = None) -> Released:
    """Put ``unconfigured`` messages whose channel is configured in ``env`` back to
    ``pending`` (at most ``NOTIFY_UNCONFIGURED_MAX_AGE_SECONDS`` old; older ones fail)."""
    oldest = now - timedelta(seconds=defaults.NOTIFY_UNCONFIGURED_MAX_AGE_SECONDS)
    pending = expired = 0
    with engine.begin() as conn:
        pairs = conn.execute(select(N.c.channel, N.c.address).where(N.c.status == UNCONFIGURED)
                             .distinct()).all()
        for channel, address in pairs:
            if configuration_error(channel, address, env) is not None:
                continue
            held = (N.c.status == UNCONFIGURED, N.c.channel == channel,
                    N.c.address.is_(None) if address is None else N.c.address == address)
            pending += conn.execute(update(N).where(*held, N.c.created_at >= oldest).values(
                status=PENDING, next_attempt_at=None, last_error=None)).rowcount
            expired += conn.execute(update(N).where(*held, N.c.created_at < oldest).values(
                status=FAILED, active_key=None,
                last_error="held as unconfigured for longer than "
                           f"{defaults.NOTIFY_UNCONFIGURED_MAX_AGE_SECONDS // 3600} h: not sent"
            )).rowcount
    if pending or expired:
        log.info("unconfigured notifications released: %s to send, %s too old", pending,
                 expired)
    return Released(pending, expired)
