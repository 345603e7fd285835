"""The RQ queue against a real (private) Redis: events are pulled, waiting jobs coalesce."""

from __future__ import annotations

from rq import Queue

from dispatchflow.platform.jobs import rq_entry  # noqa: F401 - the job RQ would import
from dispatchflow.platform.queue import RQQueue, coalesce_key


def test_record_requests_wake_one_drain_job_until_it_starts(private_redis) -> None:
    queue = RQQueue(private_redis.url)
    events = Queue("events", connection=queue.redis)
    queue.enqueue_many([("events", "process_record", ("work_order", i)) for i in range(5)])
    queue.enqueue("events", "process_record", "technician", 9)
    jobs = events.get_jobs()
    assert [j.args for j in jobs] == [("process_pending",)]  # one job stands for them all
    queue.enqueue_many([("notifications", "deliver_notification", (1, 2)),
                        ("notifications", "deliver_notification", (1, 2))])
    assert Queue("notifications", connection=queue.redis).count == 2  # these do not coalesce

    queue.started("process_pending", ())  # a worker took it: new commits need a new one
    queue.enqueue("events", "process_record", "work_order", 1)
    assert events.count == 2
    assert queue.redis.ttl(coalesce_key("process_pending", ())) > 0  # a lost job expires
