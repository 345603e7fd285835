"""The RQ queue against a real (private) Redis: events and deliveries are pulled,
waiting jobs coalesce."""

from __future__ import annotations

from rq import Queue

from dispatchflow.platform.assembly.root import rq_entry  # noqa: F401 - the job RQ would import
from dispatchflow.platform.runtime.queue import RQQueue, coalesce_key


def test_record_requests_wake_one_drain_job_until_it_starts(private_redis) -> None:
    queue = RQQueue(private_redis.url)
    events = Queue("events", connection=queue.redis)
    queue.enqueue_many([("events", "process_record", ("work_order", i)) for i in range(5)])
    queue.enqueue("events", "process_record", "technician", 9)
    jobs = events.get_jobs()
    assert [j.args for j in jobs] == [("process_pending",)]  # one job stands for them all
    queue.enqueue_many([("notifications", "deliver_notification", (1, 2)),
                        ("notifications", "deliver_notification", (3,))])
    queue.enqueue("notifications", "deliver_notification", 4)
    sending = Queue("notifications", connection=queue.redis).get_jobs()
    assert [j.args for j in sending] == [("deliver_due",)]  # deliveries are pulled too
    queue.enqueue_many([("dispatch", "dispatch_round", ("work_order", 1, 7))] * 2)
    assert Queue("dispatch", connection=queue.redis).count == 1  # the same job once

    queue.started("process_pending", ())  # a worker took it: new commits need a new one
    queue.enqueue("events", "process_record", "work_order", 1)
    assert events.count == 2
    assert queue.redis.ttl(coalesce_key("process_pending", ())) > 0  # a lost job expires


def test_a_mark_left_by_a_lost_job_is_released_by_the_next_tick(private_redis) -> None:
    """An enqueuer killed between marking a drain job waiting and queueing it leaves a
    mark with no job: new commits would not wake a drain until it expired."""
    queue = RQQueue(private_redis.url)
    events = Queue("events", connection=queue.redis)
    queue._not_waiting([("events", "process_pending", ())])  # marked, then killed
    queue.enqueue("events", "process_record", "work_order", 1)
    assert events.count == 0  # held back by the lost job's mark
    queue.release_lost()
    queue.enqueue("events", "process_record", "work_order", 1)
    assert events.count == 1
    queue.release_lost()  # a job is waiting: its mark stays
    queue.enqueue("events", "process_record", "work_order", 2)
    assert events.count == 1
