"""Where nudges go: in process for the embedded default, Redis pub/sub with ``REDIS_URL``.

A nudge says only "the change feed moved" (see package docs). A broker has
:meth:`~Broker.publish` (never raises: a commit must not fail because nobody
can be told) and :meth:`~Broker.subscribe`, whose :class:`Subscription` waits
for the next nudge. A subscription whose broker went away (Redis restarted)
raises :class:`BrokerLost`; its reader re-syncs from the feed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from ...errors import DispatchflowError

log = logging.getLogger(__name__)

#: The Redis pub/sub channel of the change feed's nudges.
CHANNEL = "dispatchflow:live"


class BrokerLost(DispatchflowError):
    """The broker stopped delivering (Redis went away): re-read the feed and subscribe again."""


class Subscription(Protocol):
    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a nudge; True if one came. Raises BrokerLost."""

    def close(self) -> None:
        """Stop listening (idempotent)."""


class Broker(Protocol):
    def publish(self) -> None:
        """Nudge every subscriber (errors are logged, never raised)."""

    def subscribe(self) -> Subscription:
        """A new subscription. Raises BrokerLost when the broker cannot be reached."""

    def close(self) -> None:
        """Release the broker's connections."""


class LocalSubscription:
    """A subscription to a :class:`LocalBroker`: a flag set by each nudge."""

    def __init__(self, broker: LocalBroker) -> None:
        self._broker = broker
        self._nudged = threading.Event()

    def nudge(self) -> None:
        self._nudged.set()

    def wait(self, timeout: float) -> bool:
        came = self._nudged.wait(timeout)
        self._nudged.clear()
        return came

    def close(self) -> None:
        self._broker.unsubscribe(self)


class LocalBroker:
    """Nudges within this process (the embedded default: jobs run in the web process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[LocalSubscription] = set()

    def publish(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.nudge()

    def subscribe(self) -> LocalSubscription:
        sub = LocalSubscription(self)
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: LocalSubscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """Nothing to release."""


class RedisSubscription:
    """A Redis pub/sub subscription to :data:`CHANNEL`."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    def wait(self, timeout: float) -> bool:
        from redis.exceptions import RedisError

        try:
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            # Drain what queued up meanwhile: one read of the feed covers them all.
            while message is not None and self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=0) is not None:
                pass
        except (RedisError, OSError) as exc:
            raise BrokerLost(f"the live updates' Redis connection was lost: {exc}") from exc
        return message is not None

    def close(self) -> None:
        try:
            self._pubsub.close()
        except Exception:  # noqa: BLE001 (closing a dead connection)
            log.debug("closing a lost pub/sub connection failed", exc_info=True)


class RedisBroker:
    """Nudges through Redis pub/sub, so a worker's commit reaches every web process."""

    def __init__(self, redis_url: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(redis_url, health_check_interval=30)

    def publish(self) -> None:
        from redis.exceptions import RedisError

        try:
            self.redis.publish(CHANNEL, b"")
        except (RedisError, OSError):
            # Pages find the change at their next poll of the feed (a heartbeat).
            log.warning("could not publish a live-update nudge", exc_info=True)

    def subscribe(self) -> RedisSubscription:
        from redis.exceptions import RedisError

        pubsub = self.redis.pubsub()
        try:
            pubsub.subscribe(CHANNEL)
            pubsub.get_message(timeout=1.0)  # the subscribe confirmation: now listening
        except (RedisError, OSError) as exc:
            pubsub.close()
            raise BrokerLost(f"cannot subscribe to live updates on Redis: {exc}") from exc
        return RedisSubscription(pubsub)

    def close(self) -> None:
        self.redis.close()


def make_broker(redis_url: str | None) -> LocalBroker | RedisBroker:
    """Redis pub/sub when ``redis_url`` is set, else the in-process broker."""
    return RedisBroker(redis_url) if redis_url else LocalBroker()


__all__ = ["CHANNEL", "Broker", "BrokerLost", "LocalBroker", "RedisBroker", "Subscription",
           "make_broker"]
