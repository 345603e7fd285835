"""The job queue: one interface, two implementations (RQ over Redis, or inline).

A job is a function of :mod:`.jobs` named by its name, called with the
runtime and a few plain arguments (ids and names, never ORM objects). The
database stays the truth: a job only ever moves work that is already stored
(an outbox event, a timer, a delivery row), so a lost job is re-enqueued by the
sweeper and a job run twice changes nothing.

- :class:`InlineQueue` (embedded default) runs jobs in the calling thread right
  after the caller's commit, one after another (a job that enqueues more jobs
  does not recurse: they run when it returns). A failing job is logged and left
  to the sweeper.
- :class:`RQQueue` (``REDIS_URL`` set) puts jobs on the named RQ queues
  (``events``, ``dispatch``, ``notifications``) with immediate retries (the
  scheduler's sweeper brings back what still fails, with its own delay);
  ``dispatchflow worker`` runs them. Workers pull events rather than take a
  job per record: a request to process a record's events wakes one
  ``process_pending`` job, which drains every record with pending events
  (:func:`~.runner.process_pending`); so a burst of commits costs a few jobs,
  not one each. Notifications likewise: a request to send deliveries wakes one
  ``deliver_due`` job, which sends every delivery that is due
  (:func:`~.jobs.deliver_due`).

Both coalesce: a job that is already waiting with the same arguments and has
not started yet is not queued again (it will see everything committed before it
starts). RQ marks a waiting job with a short-lived Redis key that the job
deletes when it starts (:func:`started`); a mark whose job is no longer queued
(its enqueuer died between marking and queueing, or its worker between taking
it and starting it) is removed by the scheduler's next tick
(:meth:`RQQueue.release_lost`), and every mark expires after
:data:`COALESCE_SECONDS` anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .. import defaults

if TYPE_CHECKING:
    from .state import RuntimeState

log = logging.getLogger(__name__)

#: The RQ queues, in the order a worker serving all of them takes jobs.
QUEUES = ("events", "dispatch", "notifications")

#: Jobs that coalesce (see module docs): draining a record's events, or all pending ones,
#: and sending the due notification deliveries.
COALESCED = frozenset({"process_record", "process_pending", "deliver_due"})

#: Lifetime of the Redis key marking a coalesced job as waiting, in seconds.
COALESCE_SECONDS = 30


#: Jobs to send after a commit: ``(queue, job, args)`` items, in order.
Jobs = list[tuple[str, str, tuple[Any, ...]]]


def coalesce_key(job: str, args: tuple[Any, ...]) -> str | None:
    """The Redis key marking ``job(*args)`` as waiting (None: the job does not coalesce)."""
    if job not in COALESCED:
        return None
    return "dispatchflow:waiting:" + job + ":" + ":".join(str(a) for a in args)


class JobQueue(Protocol):
    """Where the platform sends work after a commit."""

    def enqueue(self, queue: str, job: str, *args: Any) -> None:
        """Run ``jobs.<job>(runtime, *args)`` soon, on queue ``queue``."""

    def enqueue_many(self, items: Jobs) -> None:
        """Enqueue ``(queue, job, args)`` items, in order."""

    def release_lost(self) -> None:
        """Forget marks of waiting jobs that were lost (see module docs)."""

    def close(self) -> None:
        """Close the connections this queue holds (it may not be used afterwards)."""


class InlineQueue:
    """Runs jobs in this process, right away, without recursion (see module docs)."""

    def __init__(self, runtime: RuntimeState) -> None:
        self.rt = runtime
        self._pending: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._local = threading.local()
        self.failures = 0

    def enqueue(self, queue: str, job: str, *args: Any) -> None:
        self.enqueue_many([(queue, job, args)])

    def enqueue_many(self, items: Jobs) -> None:
        for _, job, args in items:
            if job not in COALESCED or (job, args) not in self._pending:
                self._pending.append((job, args))
        if getattr(self._local, "draining", False):
            return
        self._local.draining = True
        try:
            while True:
                try:
                    job, args = self._pending.popleft()
                except IndexError:
                    break
                try:
                    run_job(self.rt, job, *args)
                except Exception:  # the sweeper retries what is still stored
                    self.failures += 1
                    log.exception("inline job %s%r failed", job, args)
        finally:
            self._local.draining = False

    def release_lost(self) -> None:
        """Nothing to do: inline jobs are never lost between marking and running."""

    def close(self) -> None:
        """Nothing to close: inline jobs use the runtime's engine."""


class RQQueue:
    """Sends jobs to RQ over Redis (see module docs)."""

    def __init__(self, redis_url: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(redis_url)
        self._queues: dict[str, Any] = {}

    def queue(self, name: str) -> Any:
        """The RQ queue called ``name``."""
        from rq import Queue

        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = Queue(name, connection=self.redis)
        return q

    def enqueue(self, queue: str, job: str, *args: Any) -> None:
        self.enqueue_many([(queue, job, args)])

    def enqueue_many(self, items: Jobs) -> None:
        from rq import Queue, Retry

        items = self._not_waiting(_pull(items))
        if not items:
            return
        # Immediate retries (no RQ scheduler needed); later ones come from our sweeper.
        retry = Retry(max=defaults.JOB_RETRIES)
        by_queue: dict[str, list[Any]] = {}
        for queue, job, args in items:
            by_queue.setdefault(queue, []).append(Queue.prepare_data(
                "dispatchflow.platform.assembly.root.rq_entry", args=(job, *args), retry=retry,
                result_ttl=defaults.JOB_RESULT_TTL, failure_ttl=defaults.JOB_FAILURE_TTL))
        with self.redis.pipeline() as pipe:
            for queue, data in by_queue.items():
                self.queue(queue).enqueue_many(data, pipeline=pipe)
            pipe.execute()

    def _not_waiting(self, items: Jobs
                     ) -> Jobs:
        """``items`` without coalesced jobs already waiting (marking the others waiting)."""
        keys = {i: coalesce_key(job, args) for i, (_, job, args) in enumerate(items)}
        marked = {i: k for i, k in keys.items() if k is not None}
        if not marked:
            return items
        with self.redis.pipeline(transaction=False) as pipe:
            for key in marked.values():
                pipe.set(key, 1, nx=True, ex=COALESCE_SECONDS)
            fresh = dict(zip(marked, pipe.execute(), strict=True))
        return [item for i, item in enumerate(items) if fresh.get(i, True)]

    def release_lost(self) -> None:
        """Delete the waiting marks of pulled jobs whose queue is empty: no such job is
        waiting, so the mark would only hold back new ones until it expires. (One taken
        off the queue but not started yet may lose its mark too: a job more, no harm.)"""
        for queue, job in PULLED.values():
            key = coalesce_key(job, ())
            if key is not None and self.redis.exists(key) and not self.queue(queue).count:
                self.redis.delete(key)

    def close(self) -> None:
        """Close the Redis connections."""
        self.redis.close()

    def started(self, job: str, args: tuple[Any, ...]) -> None:
        """A job is starting: it no longer stands for work committed from now on."""
        key = coalesce_key(job, args)
        if key is not None:
            self.redis.delete(key)


#: Jobs RQ workers pull work for instead (see module docs): requested job -> the job
#: that takes all such work, with its queue.
PULLED = {"process_record": ("events", "process_pending"),
          "deliver_notification": ("notifications", "deliver_due")}


def _pull(items: Jobs
          ) -> Jobs:
    """``items`` with requests to process records' events or to send deliveries replaced
    by one request to take all that is pending of each (see module docs)."""
    out: Jobs = []
    for queue, job, args in items:
        pulled = PULLED.get(job)
        item = (queue, job, args) if pulled is None else (*pulled, ())
        if item not in out:
            out.append(item)
    return out


def run_job(rt: RuntimeState, job: str, *args: Any) -> Any:
    """Run the job called ``job`` (KeyError for an unknown name) from the runtime's
    job registry (:attr:`.services.Services.jobs`).

    The active app version is re-checked at most every
    :data:`defaults.VERSION_CHECK_SECONDS` (a publish reaches workers within that).
    """
    rt.refresh(max_age=defaults.VERSION_CHECK_SECONDS)
    return rt.services.jobs[job](rt, *args)


def make_queue(runtime: RuntimeState) -> JobQueue:
    """RQ when the settings name a Redis URL, inline otherwise."""
    url = runtime.settings.redis_url
    return RQQueue(url) if url else InlineQueue(runtime)


JobFunction = Callable[..., Any]
