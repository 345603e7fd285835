"""Jobs: thin, idempotent functions of ids, run inline or by RQ workers.

Each job takes the runtime first and plain arguments after. The registry
:data:`JOBS` names them; :func:`run` calls one; :func:`rq_entry` is what RQ
imports in a worker process (it builds the process's runtime from the
environment once and follows the active app version).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import defaults

if TYPE_CHECKING:
    from .state import Runtime

log = logging.getLogger(__name__)


def process_record(rt: Runtime, entity: str, record_id: int) -> int:
    """Process the record's pending outbox events, in order."""
    from .runner import process_record as drain

    return drain(rt, entity, int(record_id)) or 0


def process_pending(rt: Runtime) -> int:
    """Process the pending events of every record (how RQ workers take events)."""
    from .runner import process_pending as drain_all

    return drain_all(rt)


def dispatch_round(rt: Runtime, entity: str, record_id: int, round_id: int) -> None:
    """Decide and make the offers of one dispatch round."""
    from ..dispatch.rounds import run_round

    rt.queue.enqueue_many(run_round(rt, entity, int(record_id), int(round_id)))


def dispatch_batch(rt: Runtime, *round_ids: int) -> None:
    """Match a burst of batched dispatch rounds together."""
    from ..dispatch.batches import run_batch

    run_batch(rt, [int(i) for i in round_ids])


def deliver_notification(rt: Runtime, *delivery_ids: int) -> list[str]:
    """Send notification deliveries (email, webhook or inbox), one after another."""
    from ..notify import service as notify

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
    from ..notify import service as notify
    from ..store.db import reading

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


def run(rt: Runtime, job: str, *args: Any) -> Any:
    """Run the job called ``job`` (KeyError for an unknown name).

    The active app version is re-checked at most every
    :data:`defaults.VERSION_CHECK_SECONDS` (a publish reaches workers within that).
    """
    rt.refresh(max_age=defaults.VERSION_CHECK_SECONDS)
    return JOBS[job](rt, *args)


_worker_runtime: tuple[int, Runtime] | None = None


def worker_runtime() -> Runtime:
    """This process's runtime, built once from the environment (rebuilt after a fork)."""
    global _worker_runtime
    if _worker_runtime is None or _worker_runtime[0] != os.getpid():
        from ..config import Settings
        from ..store.db import make_engine
        from .state import Runtime

        settings = Settings.from_env()
        engine = make_engine(settings.database_url, derived_work=True)
        _worker_runtime = (os.getpid(), Runtime(settings, engine=engine, derived_work=True))
    return _worker_runtime[1]


def warm_up(rt: Runtime) -> None:
    """Load what processing needs before the first job or request: the active version,
    its flows, and the modules imported on first use (the first ones would pay for it)."""
    from ..notify import service  # noqa: F401
    from ..dispatch import batches, rounds  # noqa: F401
    from . import runner  # noqa: F401

    rt.refresh()
    from .state import NoActiveVersion

    try:
        rt.flows_of(rt.version_number)
    except NoActiveVersion:  # nothing published yet: the first job loads it
        pass


def rq_entry(job: str, *args: Any) -> Any:
    """What RQ runs: the named job with this worker process's runtime."""
    rt = worker_runtime()
    from .queue import RQQueue

    if isinstance(rt.queue, RQQueue):
        rt.queue.started(job, args)
    return run(rt, job, *args)
