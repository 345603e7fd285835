"""The composition root: a runtime with its services wired, for every kind of process.

:class:`Runtime` is the :class:`~..runtime.state.RuntimeState` (settings,
database, clock, queue, active version) that every process builds — web app,
worker, scheduler, CLI command, test — with the services that act on it
attached: the records service and the :class:`~..runtime.services.Services`
through which the runtime reaches dispatch and the job registry without
importing them. :func:`worker_runtime` and :func:`rq_entry` are what an RQ
worker process runs.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.engine import Engine

from ..config import Settings
from ..dispatch import access, batches, rounds
from ..records.service import RecordService
from ..runtime.queue import RQQueue, run_job
from ..runtime.services import Services
from ..runtime.state import Clock, NoActiveVersion, RuntimeState
from ..store.db import make_engine
from .jobs import JOBS

#: The services every runtime gets: plain functions of the layers above the runtime.
SERVICES = Services(
    jobs=JOBS,
    timer_handlers={"offer": rounds.fire_offer_timer},
    on_record_event=rounds.on_record_event,
    request_dispatch=rounds.request_dispatch,
    run_round=rounds.run_round,
    check_action=access.check_action_now,
    before_action=rounds.before_action,
    after_action=rounds.after_action,
    due_batches=batches.due_batches,
)


class Runtime(RuntimeState):
    """A :class:`~..runtime.state.RuntimeState` with its services (see module docs)."""

    def __init__(self, settings: Settings, engine: Engine | None = None,
                 clock: Clock | None = None, derived_work: bool = False) -> None:
        super().__init__(settings, engine, clock, derived_work)
        self.services = SERVICES
        self.records = RecordService(self)


_worker_runtime: tuple[int, Runtime] | None = None


def worker_runtime() -> Runtime:
    """This process's runtime, built once from the environment (rebuilt after a fork)."""
    global _worker_runtime
    if _worker_runtime is None or _worker_runtime[0] != os.getpid():
        settings = Settings.from_env()
        engine = make_engine(settings.database_url, derived_work=True)
        _worker_runtime = (os.getpid(), Runtime(settings, engine=engine, derived_work=True))
    return _worker_runtime[1]


def warm_up(rt: RuntimeState) -> None:
    """Load what processing needs before the first job or request: the active version
    and its flows (the first job would pay for it)."""
    rt.refresh()
    try:
        rt.flows_of(rt.version_number)
    except NoActiveVersion:  # nothing published yet: the first job loads it
        pass


def rq_entry(job: str, *args: Any) -> Any:
    """What RQ runs: the named job with this worker process's runtime."""
    rt = worker_runtime()
    if isinstance(rt.queue, RQQueue):
        rt.queue.started(job, args)
    return run_job(rt, job, *args)
