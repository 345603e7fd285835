"""Jobs: thin, idempotent functions of ids, run inline or by RQ workers.

Each job takes the runtime first and plain arguments after. The registry
:data:`JOBS` names them; :func:`run` calls one; :func:`rq_entry` is what RQ
imports in a worker process (it builds the process's runtime from the
environment once and follows the active app version).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import defaults

if TYPE_CHECKING:
    from .runtime import Runtime


def process_record(rt: Runtime, entity: str, record_id: int) -> int:
    """Process the record's pending outbox events, in order."""
    from .runner import process_record as drain

    return drain(rt, entity, int(record_id))


def dispatch_round(rt: Runtime, entity: str, record_id: int, round_id: int) -> None:
    """Decide and make the offers of one dispatch round."""
    from .dispatching import run_round

    run_round(rt, entity, int(record_id), int(round_id))


def dispatch_batch(rt: Runtime, *round_ids: int) -> None:
    """Match a burst of batched dispatch rounds together."""
    from .batch_dispatch import run_batch

    run_batch(rt, [int(i) for i in round_ids])


def deliver_notification(rt: Runtime, delivery_id: int) -> str:
    """Send one notification delivery (email, webhook or inbox)."""
    from .notify import service as notify

    return notify.deliver(rt.engine, int(delivery_id), rt.clock())


JOBS: dict[str, Callable[..., Any]] = {
    "process_record": process_record,
    "dispatch_round": dispatch_round,
    "dispatch_batch": dispatch_batch,
    "deliver_notification": deliver_notification,
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
        from .config import Settings
        from .runtime import Runtime

        _worker_runtime = (os.getpid(), Runtime(Settings.from_env()))
    return _worker_runtime[1]


def rq_entry(job: str, *args: Any) -> Any:
    """What RQ runs: the named job with this worker process's runtime."""
    return run(worker_runtime(), job, *args)
