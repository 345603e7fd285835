"""Processes that run background work: ``dispatchflow worker`` and ``dispatchflow scheduler``.

For deployments with Redis (``REDIS_URL``): any number of workers serve
the RQ queues; one scheduler fires due timers, sweeps stalled events and releases
due notifications. Without Redis, ``dispatchflow serve`` does all of it itself.
"""

from __future__ import annotations

import signal
import time

import click

from ..platform.runtime.queue import QUEUES
from .common import EXIT_USAGE, exit_with, report_channels, runtime


def register(main: click.Group) -> None:
    """Add ``worker`` and ``scheduler`` to the ``dispatchflow`` group."""
    main.add_command(worker)
    main.add_command(scheduler)


def _redis_url() -> str:
    """REDIS_URL, or exit with ``EXIT_USAGE`` saying how to set it."""
    from ..platform.config import Settings

    url = Settings.from_env().redis_url
    if not url:
        exit_with("REDIS_URL is not set: without Redis, jobs run inline in the process that "
                  "stores the work (dispatchflow serve); set REDIS_URL=redis://HOST:6379/0 "
                  "to run workers", EXIT_USAGE)
    return url


@click.command()
@click.option("--queues", default=",".join(QUEUES), show_default=True,
              help="comma-separated queues, served in this order")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@click.option("--name", default=None, help="worker name (default: generated)")
def worker(queues: str, burst: bool, name: str | None) -> None:
    """Run an RQ worker (any number, on any machines) for events, dispatch, notifications.

    A SimpleWorker: jobs run in this process (no fork at all), so its database
    connections die with it and a killed worker leaves no transaction open.
    """
    from redis import Redis
    from rq import Queue, SimpleWorker

    from ..platform.assembly.root import warm_up, worker_runtime

    connection = Redis.from_url(_redis_url())
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        exit_with(f"unknown queue(s): {', '.join(unknown)}; queues are {', '.join(QUEUES)}",
                  EXIT_USAGE)
    rt = worker_runtime()
    rt.serves = frozenset(names)  # its events jobs run the dispatch rounds they ask for
    warm_up(rt)  # connect and load the active version before the first job
    report_channels(rt)
    w = SimpleWorker([Queue(q, connection=connection) for q in names],
                     connection=connection, name=name)
    # No RQ scheduler here: it runs in a forked child, which would inherit this
    # process's database connections and keep a killed worker's transaction (and its
    # row locks) alive. Retries are immediate; delayed work is ours (dispatchflow
    # scheduler), and the sweeper redoes anything lost.
    w.work(burst=burst, with_scheduler=False, logging_level="WARNING")


@click.command()
@click.option("--interval", type=float, default=None,
              help="seconds between ticks (default: platform/defaults.py)")
@click.option("--once", is_flag=True, help="one tick, then exit")
def scheduler(interval: float | None, once: bool) -> None:
    """Fire due timers exactly once, sweep stalled events, release due notifications."""
    from ..platform import defaults
    from ..platform.runtime.scheduler import tick

    rt = runtime()
    period = interval if interval is not None else defaults.SCHEDULER_INTERVAL_SECONDS
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    while True:
        rt.refresh()
        result = tick(rt)
        if once:
            click.echo(f"timers fired: {result.timers}, records swept: {result.swept}, "
                       f"dispatch rounds: {result.rounds}, deliveries: {result.deliveries}")
            return
        if stopping:
            return
        time.sleep(period)
