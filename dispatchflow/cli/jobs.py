"""``dispatchflow jobs failed|retry``: inspect and revive work that failed too often.

Parked events are outbox rows with ``failed_at`` set; with Redis (``REDIS_URL``),
failed RQ jobs are listed too. Retrying clears the parking and enqueues the
records' events again.
"""

from __future__ import annotations

from typing import cast

import click

from ..platform.runtime.queue import QUEUES, RQQueue
from .common import EXIT_USAGE, exit_with, runtime


def register(main: click.Group) -> None:
    """Add the ``jobs`` group to the ``dispatchflow`` group."""
    main.add_command(jobs)


@click.group()
def jobs() -> None:
    """Inspect and retry failed work."""


@jobs.command("failed")
def jobs_failed() -> None:
    """List parked events (failed too often) and failed RQ jobs."""
    from sqlalchemy import select

    from ..platform.store.db import outbox

    rt = runtime()
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

        queue_ = cast(RQQueue, rt.queue)  # REDIS_URL is set: the queue is RQ's
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
        exit_with("name event ids or pass --all", EXIT_USAGE)
    rt = runtime()
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
