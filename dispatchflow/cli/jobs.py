"""``dispatchflow`` commands that run background work: worker, scheduler, jobs."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click

from ..platform.runtime.queue import QUEUES


def register(main: click.Group) -> None:
    """Add the commands of this module to the ``dispatchflow`` group."""
    main.add_command(worker)
    main.add_command(scheduler)
    main.add_command(jobs)


def _runtime() -> Any:
    from ..platform.assembly import Runtime
    from ..platform.config import Settings

    return Runtime(Settings.from_env())


def _redis_url() -> str:
    from ..platform.config import Settings

    url = Settings.from_env().redis_url
    if not url:
        click.echo("REDIS_URL is not set: without Redis, jobs run inline in the process that "
                   "stores the work (dispatchflow serve); set REDIS_URL=redis://HOST:6379/0 "
                   "to run workers", err=True)
        sys.exit(2)
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
    from .server import report_channels

    connection = Redis.from_url(_redis_url())
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        click.echo(f"unknown queue(s): {', '.join(unknown)}; queues are {', '.join(QUEUES)}",
                   err=True)
        sys.exit(2)
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

    rt = _runtime()
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


@click.group()
def jobs() -> None:
    """Inspect and retry failed work."""


@jobs.command("failed")
def jobs_failed() -> None:
    """List parked events (failed too often) and failed RQ jobs."""
    from sqlalchemy import select

    from ..platform.store.db import outbox

    rt = _runtime()
    with rt.engine.connect() as conn:
        rows = conn.execute(select(outbox).where(outbox.c.failed_at.is_not(None))
                            .order_by(outbox.c.id)).mappings().all()
    for r in rows:
        click.echo(f"event {r['id']}: {r['entity']} {r['record_id']} {r['event']} "
                   f"attempts={r['attempts']} failed_at={r['failed_at']:%Y-%m-%d %H:%M:%S}\n"
                   f"    {r['last_error']}")
    count = len(rows)
    if rt.settings.redis_url:
        from rq import Queue
        from rq.registry import FailedJobRegistry

        queue_ = rt.queue
        for name in QUEUES:
            registry = FailedJobRegistry(queue=Queue(name, connection=queue_.redis))
            for job_id in registry.get_job_ids():
                click.echo(f"rq job {job_id} on {name}")
                count += 1
    click.echo(f"{count} failed")


@jobs.command("retry")
@click.argument("event_ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="every parked event")
def jobs_retry(event_ids: tuple[int, ...], retry_all: bool) -> None:
    """Revive parked events (by id, or --all) and enqueue their records again."""
    from sqlalchemy import select, update

    from ..platform.store.db import outbox

    if not event_ids and not retry_all:
        click.echo("name event ids or pass --all", err=True)
        sys.exit(2)
    rt = _runtime()
    with rt.engine.begin() as conn:
        query = select(outbox.c.id, outbox.c.entity, outbox.c.record_id) \
            .where(outbox.c.failed_at.is_not(None))
        if not retry_all:
            query = query.where(outbox.c.id.in_(event_ids))
        rows = conn.execute(query).all()
        if rows:
            conn.execute(update(outbox).where(outbox.c.id.in_([r[0] for r in rows]))
                         .values(failed_at=None, attempts=0, last_error=None))
    records = sorted({(r[1], int(r[2])) for r in rows})
    rt.refresh()
    rt.queue.enqueue_many([("events", "process_record", rec) for rec in records])
    click.echo(f"{len(rows)} event(s) revived, {len(records)} record(s) enqueued")
