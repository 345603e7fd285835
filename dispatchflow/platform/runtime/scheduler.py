"""The scheduler: fires due timers, sweeps stalled work, releases due notifications.

One :func:`tick` does, each in its own transaction:

1. due timers become outbox events, exactly once (:func:`.timers.fire_due`);
2. the **sweeper**: records with outbox events still unprocessed
   :data:`defaults.SWEEP_AFTER_SECONDS` after they were stored, and dispatch
   rounds still undecided, are enqueued again — so a job lost with Redis (a
   ``FLUSHALL``, a restart) or with a killed worker is redone; the database is
   the truth and processing is idempotent. A swept event is marked (after its
   job is sent) and not swept again for an interval;
3. bursts of batched dispatch rounds whose window has passed are matched
   (:mod:`dispatchflow.platform.dispatch.batches`, through the runtime's services);
4. notification deliveries whose time has come (quiet hours over, digest window
   closed, retry due) are enqueued.

``dispatchflow scheduler`` runs ticks in a loop (any number of schedulers may
run: timers are claimed with ``SKIP LOCKED``); the embedded default runs the
loop in a thread of the web process. ``now`` comes from the runtime's clock,
which tests replace to move time instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update

from .. import defaults
from ..store.db import dispatch_rounds, outbox
from .queue import Jobs
from .timers import fire_due

if TYPE_CHECKING:
    from ..assembly import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickResult:
    """What one tick did: timers fired, records and rounds re-enqueued, deliveries released."""

    timers: int
    swept: int
    rounds: int
    deliveries: int


def tick(rt: Runtime, now: datetime | None = None,
         sweep_after: float = defaults.SWEEP_AFTER_SECONDS) -> TickResult:
    """One scheduler pass at ``now`` (default: the runtime's clock); see module docs."""
    from ..notify import service as notify

    now = now or rt.clock()
    fired, fired_count = fire_due(rt.engine, now)
    jobs: Jobs = [("events", "process_record", (entity, record_id))
                  for entity, record_id in fired]
    cutoff = now - timedelta(seconds=sweep_after)
    # An event is swept at most once per interval: a late timer's event (stored with
    # its due time) must not be enqueued again on every tick.
    due = (outbox.c.processed_at.is_(None), outbox.c.failed_at.is_(None),
           outbox.c.created_at <= cutoff,
           or_(outbox.c.swept_at.is_(None), outbox.c.swept_at <= cutoff))
    with rt.engine.begin() as conn:
        stalled = conn.execute(
            select(outbox.c.id, outbox.c.entity, outbox.c.record_id).where(*due)
            .order_by(outbox.c.id).limit(defaults.SCHEDULER_BATCH)).all()
        rounds = conn.execute(
            select(dispatch_rounds.c.entity, dispatch_rounds.c.record_id, dispatch_rounds.c.id)
            .where(dispatch_rounds.c.status == "pending")
            .where(dispatch_rounds.c.requested_at <= cutoff)
            .limit(defaults.SCHEDULER_BATCH)).all()
        deliveries = notify.due(conn, now)
        batches = rt.services.due_batches(rt, conn, now)
    swept = list(dict.fromkeys((str(e), int(r)) for _, e, r in stalled))
    already = {args for _, _, args in jobs}
    jobs.extend(("events", "process_record", record) for record in swept
                if record not in already)
    jobs.extend(("dispatch", "dispatch_round", (e, int(r), int(i))) for e, r, i in rounds)
    jobs.extend(("dispatch", "dispatch_batch", tuple(group)) for group in batches)
    jobs.extend(("notifications", "deliver_notification", (int(d),)) for d in deliveries)
    rt.queue.release_lost()  # a mark left by a lost job must not hold these back
    if jobs:
        rt.queue.enqueue_many(jobs)
    if stalled:
        # Marked only once their jobs are sent: a scheduler killed before that leaves
        # them unmarked, and the next tick sweeps them at once, not an interval later.
        with rt.engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id.in_([i for i, _, _ in stalled]))
                         .values(swept_at=now))
    return TickResult(fired_count, len(swept), len(rounds), len(deliveries))


class SchedulerThread(threading.Thread):
    """Ticks every :data:`defaults.SCHEDULER_INTERVAL_SECONDS` until :meth:`stop`."""

    def __init__(self, rt: Runtime, interval: float = defaults.SCHEDULER_INTERVAL_SECONDS
                 ) -> None:
        super().__init__(name="dispatchflow-scheduler", daemon=True)
        self.rt = rt
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.rt.refresh()
                tick(self.rt)
            except Exception:  # keep ticking: the next tick retries what failed
                log.exception("scheduler tick failed")
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        """Ask the loop to end after the current tick."""
        self._stop_event.set()
