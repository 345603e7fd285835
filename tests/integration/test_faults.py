"""Crashes and lost queues change no outcome: the database is the truth, the sweeper redoes.

Each test runs on its own fresh PostgreSQL database and private Redis:

- a worker is killed with SIGKILL in the middle of the lifecycle scenario (twice:
  while orders are being created and while they are being completed) and a
  replacement is started; the sweeper (``tick(rt, sweep_after=0)``) re-enqueues
  what the dead worker held;
- the private Redis is wiped with ``FLUSHALL`` mid-run (twice), losing every
  queued job; the sweeper recovers every event and dispatch round;

and both must end exactly like an inline run of the same scenario (no event
lost, no effect applied twice: same statuses, flow instances, timelines, audit
rows, events, offers, timers, notifications);

- a scheduler (``dispatchflow scheduler --once``, on the wall clock) is killed with
  SIGKILL as soon as it has fired timers of a cascade, and pairs of schedulers
  take over, ticking at the same time: every due timer fires exactly once (one
  ``__timer__`` outbox event per fired timer, none for a timer that did not fire);
- ticks right after a late timer fired do not enqueue its record again and again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_lifecycle_scenario import (
    assert_same,
    clock_of,
    create_orders,
    inline_settle,
    make_runtime,
    plan_orders,
    rq_settle,
    run_scenario,
)

from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.store.db import offers, outbox, timeline, timers

#: Orders in the fault scenarios (the full 100 run in test_lifecycle_scenario).
ORDERS = 40

#: How long the scheduler test's passes may take to run the cascade of timers out
#: (about five passes of a few seconds each; ample on a loaded machine).
CASCADE_SECONDS = 150


@pytest.fixture(scope="module")
def baseline(module_database: Callable[[], str],
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scenario's snapshot from an inline run (shared by the tests of this module)."""
    rt = make_runtime(module_database(), None, tmp_path_factory.mktemp("inline"))
    try:
        return run_scenario(rt, inline_settle(rt), orders=ORDERS)
    finally:
        rt.close()


def _sweeper(rt: Runtime) -> Callable[[], None]:
    """What a scheduler does for lost work: re-enqueue every unprocessed event at once."""
    def sweep() -> None:
        tick(rt, sweep_after=0)
    return sweep


def _busy_worker(procs: Any, redis: Any, wait: float = 5.0) -> tuple[Any, str | None]:
    """A live worker running a job right now, and the job (any live one after ``wait`` s).

    The one that runs the RQ scheduler (a forked child process) is preferred: a crash
    of that worker is the one that leaves a child behind.
    """
    from rq import Worker

    deadline = time.monotonic() + wait
    live = {p.name: p for p in procs.workers() if p.alive()}
    while time.monotonic() < deadline:
        busy = [(live[w.name], w.get_current_job_id()) for w in Worker.all(connection=redis)
                if w.name in live and w.get_current_job_id()]
        busy.sort(key=lambda pj: not procs.children(pj[0]))
        if busy and (procs.children(busy[0][0]) or time.monotonic() > deadline - wait / 2):
            return busy[0]
        time.sleep(0.005)
    return next(iter(live.values())), None


def test_worker_killed_mid_run_loses_nothing_and_repeats_nothing(
        baseline: dict[str, Any], fresh_database: Callable[[], str], private_redis: Any,
        processes: Any, quiescence: Callable[..., None], tmp_path: Path) -> None:
    database_url = fresh_database()
    rt = make_runtime(database_url, private_redis.url, tmp_path / "rq")
    killed: list[str] = []
    try:
        procs = processes(database_url, private_redis.url)
        procs.start_workers(2)
        redis = private_redis.client()

        def on_step(phase: str, i: int) -> None:
            if (phase, i) in (("created", ORDERS * 2 // 5), ("complete", ORDERS // 2)):
                victim, job = _busy_worker(procs, redis)
                children = procs.children(victim)
                procs.kill9(victim)
                killed.append(f"{victim.name} at {phase} #{i}, running job {job}, leaving "
                              f"child processes {children}")
                procs.start_worker()

        actual = run_scenario(rt, rq_settle(rt, procs, quiescence, nudge=_sweeper(rt)),
                              orders=ORDERS, on_step=on_step)
        redis.close()
    finally:
        rt.close()
    assert len(killed) == 2, killed
    print("killed:", *killed, sep="\n  ")
    assert_same(baseline, actual, ("inline", "rq with workers killed"))


def test_redis_flushall_mid_run_is_recovered_by_the_sweeper(
        baseline: dict[str, Any], fresh_database: Callable[[], str], private_redis: Any,
        processes: Any, quiescence: Callable[..., None], tmp_path: Path) -> None:
    database_url = fresh_database()
    rt = make_runtime(database_url, private_redis.url, tmp_path / "rq")
    flushed: list[tuple[str, int, int]] = []
    try:
        procs = processes(database_url, private_redis.url)
        procs.start_workers(2)
        redis = private_redis.client()

        def on_step(phase: str, i: int) -> None:
            if (phase, i) in (("created", ORDERS // 2), ("complete", ORDERS // 2)):
                queued = sum(redis.llen(f"rq:queue:{q}") for q in
                             ("events", "dispatch", "notifications"))
                redis.flushall()
                flushed.append((phase, i, queued))

        actual = run_scenario(rt, rq_settle(rt, procs, quiescence, nudge=_sweeper(rt)),
                              orders=ORDERS, on_step=on_step)
        redis.close()
    finally:
        rt.close()
    assert len(flushed) == 2, flushed
    print("flushed (phase, order, jobs queued):", flushed)
    assert sum(q for _, _, q in flushed) > 0, f"Redis held no job when flushed: {flushed}"
    assert_same(baseline, actual, ("inline", "rq with FLUSHALL"))


def test_scheduler_killed_and_restarted_fires_every_timer_exactly_once(
        fresh_database: Callable[[], str], private_redis: Any, processes: Any,
        quiescence: Callable[..., None], backlog: Any, tmp_path: Path) -> None:
    database_url = fresh_database()
    rt = make_runtime(database_url, private_redis.url, tmp_path / "rq")
    try:
        procs = processes(database_url, private_redis.url)
        procs.start_workers(2)
        redis = private_redis.client()
        # The scheduler runs on the wall clock: put the orders 3 hours in the past, so
        # their offer windows, accept timeouts and response SLAs are all due, and each
        # fired timer arms the next (re-offer, escalation) in a cascade of ticks.
        clock_of(rt).set(datetime.now(UTC) - timedelta(hours=3))
        plan = plan_orders(ORDERS)
        create_orders(rt, plan)
        quiescence(rt.engine, redis=redis, procs=procs)
        assert _count(rt, timers, timers.c.status == "pending") >= ORDERS

        # One scheduler is killed as soon as it has fired something (its tick is then
        # between firing and enqueueing, or past it); then pairs of schedulers tick at
        # the same time (timers are claimed with SKIP LOCKED) until nothing is due.
        first = procs.start_scheduler("--once")
        _wait_for(lambda: _count(rt, timers, timers.c.status == "fired") > 0
                  or not first.alive(), procs, 90, "the first scheduler fired no timer")
        procs.kill9(first)
        fired_by_first = _count(rt, timers, timers.c.status == "fired")
        deadline = time.monotonic() + CASCADE_SECONDS
        while True:
            pair = [procs.start_scheduler("--once") for _ in range(2)]
            for proc in pair:
                proc.process.wait(timeout=120)
                assert proc.process.returncode == 0, f"{proc.name} failed:\n{procs.logs()}"
            _wait_for(lambda: _rq_idle(backlog, redis, procs), procs, 120,
                      "the workers did not finish")
            left = _left_to_do(rt)
            if not any(left.values()):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"work left after {CASCADE_SECONDS} s of scheduler passes: "
                            f"{left}\n{procs.logs()}", pytrace=False)
        quiescence(rt.engine, redis=redis, procs=procs)
        redis.close()
        fired, errors = _exactly_once_problems(rt, plan, datetime.now(UTC)
                                               - timedelta(seconds=5))
    finally:
        rt.close()
    assert not errors, "\n".join(errors[:40])
    assert fired_by_first < fired, \
        "the restarted schedulers had nothing left to fire: kill the first one earlier"


def test_sweeper_does_not_flood_the_queue_with_late_timer_events(
        fresh_database: Callable[[], str], private_redis: Any, tmp_path: Path) -> None:
    """A timer fired late (the scheduler was down) is an event stored just now: ticks in
    the next seconds must not enqueue its record again and again while it waits in the
    queue (each duplicate job is a worker's time; under a backlog they multiply)."""
    database_url = fresh_database()
    inline = make_runtime(database_url, None, tmp_path / "inline")
    wall = datetime.now(UTC).replace(microsecond=0)
    try:  # orders offered an hour ago: their offer and flow timers are long due
        clock_of(inline).set(wall - timedelta(hours=1))
        create_orders(inline, plan_orders(5))
    finally:
        inline.close()
    rt = make_runtime(database_url, private_redis.url, tmp_path / "rq")  # no workers
    redis = private_redis.client()
    try:
        result = tick(rt, now=wall)
        after_first = _queued(redis)
        for second in range(1, 4):
            tick(rt, now=wall + timedelta(seconds=second))
        after_more = _queued(redis)
    finally:
        redis.close()
        rt.close()
    assert result.timers >= 5 and sum(after_first.values()) > 0, (result, after_first)
    assert after_more == after_first, (
        f"3 more ticks within 3 s re-enqueued work the scheduler had just enqueued: "
        f"{after_first} jobs queued after the tick that fired {result.timers} timers, "
        f"{after_more} three seconds later. The sweeper ages outbox events by created_at, "
        f"which for a timer event is its fire_at (and for a dispatch round its "
        f"requested_at): every late timer looks stalled at once and is re-enqueued on "
        f"every tick until a worker gets to it")


def _queued(redis: Any) -> dict[str, int]:
    return {q: int(redis.llen(f"rq:queue:{q}")) for q in ("events", "dispatch")}


def _rq_idle(backlog: Any, redis: Any, procs: Any) -> bool:
    left = backlog.rq(redis, procs.live_worker_names())
    return not (left["queued"] or left["running"] or left["scheduled"])


def _left_to_do(rt: Runtime) -> dict[str, int]:
    """Timers due, events unprocessed and dispatch rounds pending, in one snapshot.

    One statement: counted one after another, a worker's commit between the counts
    (its events processed, the round they asked for decided, the timers that armed)
    would hide its new timers from the first count and its work from the others."""
    from dispatchflow.platform.store.db import dispatch_rounds

    due = datetime.now(UTC) - timedelta(seconds=1)

    def counted(table: Any, *where: Any) -> Any:
        return select(func.count()).select_from(table).where(*where).scalar_subquery()

    with rt.engine.connect() as conn:
        row = conn.execute(select(
            counted(timers, timers.c.status == "pending", timers.c.fire_at <= due)
            .label("timers_due"),
            counted(outbox, outbox.c.processed_at.is_(None)).label("events_unprocessed"),
            counted(dispatch_rounds, dispatch_rounds.c.status == "pending")
            .label("rounds_pending"))).mappings().one()
    return {key: int(value) for key, value in row.items()}


def _count(rt: Runtime, table: Any, *where: Any) -> int:
    with rt.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())


def _wait_for(condition: Callable[[], bool], procs: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} after {timeout:.0f} s\n{procs.logs()}", pytrace=False)
        if procs.unexpected_deaths():
            pytest.fail(f"a worker died on its own\n{procs.logs()}", pytrace=False)
        time.sleep(0.1)


def _exactly_once_problems(rt: Runtime, plan: list[Any],
                           cutoff: datetime) -> tuple[int, list[str]]:
    """(timers fired, problems): every due timer must have fired once, with exactly one
    event, and no other timer may have an event."""
    errors: list[str] = []
    with rt.engine.connect() as conn:
        rows = conn.execute(select(timers)).mappings().all()
        events = conn.execute(select(outbox.c.id, outbox.c.record_id, outbox.c.payload,
                                     outbox.c.processed_at, outbox.c.failed_at,
                                     outbox.c.last_error, outbox.c.event)
                              .where(outbox.c.entity == "work_order")).all()
        made = conn.execute(select(offers.c.id, offers.c.record_id, offers.c.state)).all()
        expired_lines = conn.execute(select(timeline.c.summary).where(
            timeline.c.kind == "dispatch").where(timeline.c.summary.like("offer % expired")))\
            .scalars().all()
        wo = rt.tables["work_order"]
        statuses = dict(conn.execute(select(wo.c.id, wo.c.status)).all())
    per_timer = Counter(int(e.payload["timer"]) for e in events if e.event == "__timer__")
    by_id = {int(r["id"]): r for r in rows}
    fired = [r for r in rows if r["status"] == "fired"]
    for r in fired:
        if per_timer[int(r["id"])] != 1:
            errors.append(f"timer {r['id']} ({r['kind']} {r['key']} of work_order "
                          f"{r['record_id']}) fired with {per_timer[int(r['id'])]} events")
    for timer_id, n in per_timer.items():
        row = by_id.get(timer_id)
        if row is None or row["status"] != "fired":
            errors.append(f"{n} __timer__ event(s) for timer {timer_id} that is "
                          f"{row and row['status']}")
    for r in rows:
        fire_at = r["fire_at"] if r["fire_at"].tzinfo else r["fire_at"].replace(tzinfo=UTC)
        if r["status"] == "pending" and fire_at <= cutoff:
            errors.append(f"timer {r['id']} ({r['kind']} {r['key']}) due at {fire_at} "
                          "never fired")
    for e in events:
        if e.processed_at is None:
            errors.append(f"event {e.id} ({e.event} of work_order {e.record_id}) not "
                          f"processed: {e.last_error}")
    expired = Counter(line.split()[1] for line in expired_lines)
    for offer_id, n in expired.items():
        if n != 1:
            errors.append(f"offer {offer_id} expired {n} times on the timeline")
    if sum(1 for m in made if m.state == "expired") != len(expired_lines):
        errors.append(f"{sum(1 for m in made if m.state == 'expired')} expired offers but "
                      f"{len(expired_lines)} expiry lines on the timelines")
    escalations = Counter(e.record_id for e in events if e.event == "escalated")
    for o in plan:
        # nobody answers any offer here: every order runs out of candidates or retries
        if statuses.get(o.id) != "exception":
            errors.append(f"order #{o.index} (work_order {o.id}): status "
                          f"{statuses.get(o.id)}, expected exception (escalated)")
        if escalations[o.id] != 1:
            errors.append(f"order #{o.index} (work_order {o.id}) escalated "
                          f"{escalations[o.id]} times")
    return len(fired), errors
