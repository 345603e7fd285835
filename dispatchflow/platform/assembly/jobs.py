"""Jobs: thin, idempotent functions of ids, run inline or by RQ workers.

Each job takes the runtime first and plain arguments after. The registry
:data:`JOBS` names them; the composition root (:mod:`.root`) hands it to every
runtime, whose queue runs them (:func:`~..runtime.queue.run_job`), and RQ
workers run them through :func:`.root.rq_entry`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import defaults
from ..dispatch.batches import run_batch
from ..dispatch.rounds import run_round
from ..notify import service as notify
from ..runtime import runner
from ..store.db import reading

if TYPE_CHECKING:
    from .root import Runtime

log = logging.getLogger(__name__)


def process_record(rt: Runtime, entity: str, record_id: int) -> int:
    """Process the record's pending outbox events, in order."""
    return runner.process_record(rt, entity, int(record_id)) or 0


def process_pending(rt: Runtime) -> int:
    """Process the pending events of every record (how RQ workers take events)."""
    return runner.process_pending(rt)


def dispatch_round(rt: Runtime, entity: str, record_id: int, round_id: int) -> None:
    """Decide and make the offers of one dispatch round."""
    rt.queue.enqueue_many(run_round(rt, entity, int(record_id), int(round_id)))


def dispatch_batch(rt: Runtime, *round_ids: int) -> None:
    """Match a burst of batched dispatch rounds together."""
    run_batch(rt, [int(i) for i in round_ids])


def deliver_notification(rt: Runtime, *delivery_ids: int) -> list[str]:
    """Send notification deliveries (email, webhook or inbox), one after another."""
    return [notify.deliver(rt.engine, int(i), rt.clock()) for i in delivery_ids]


def deliver_due(rt: Runtime) -> int:
    """Send every notification delivery that is due (how RQ workers take deliveries:
    :class:`~.queue.RQQueue` wakes one such job instead of a job per notification);
    returns how many were tried.

    Rounds of :func:`~.notify.service.due` until none is left, or until
    :data:`defaults.DRAIN_SECONDS` have passed (another such job is queued then). A
    delivery whose sending raises is left (claimed deliveries come back when their
    lease ends) and the job then fails, so RQ retries it and ``jobs failed`` shows it.
    """
    done, failed, deadline = 0, [], time.monotonic() + defaults.DRAIN_SECONDS
    while True:
        now = rt.clock()
        with reading(rt.engine) as conn:
            ids = [i for i in notify.due(conn, now) if i not in failed]
        if not ids:
            break
        for delivery_id in ids:
            try:
                notify.deliver(rt.engine, delivery_id, now)
            except Exception:
                log.exception("delivery %s failed", delivery_id)
                failed.append(delivery_id)
            done += 1
        if time.monotonic() > deadline:
            rt.queue.enqueue("notifications", "deliver_due")
            break
    if failed:
        raise RuntimeError(f"{len(failed)} notification deliveries failed: {failed[:10]}")
    return done


JOBS: dict[str, Callable[..., Any]] = {
    "process_record": process_record,
    "process_pending": process_pending,
    "dispatch_round": dispatch_round,
    "dispatch_batch": dispatch_batch,
    "deliver_notification": deliver_notification,
    "deliver_due": deliver_due,
}
