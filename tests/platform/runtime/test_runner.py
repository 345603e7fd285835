"""The event runner on the reference app: triage, dispatch, offers, answers, expiry,
escalation, idempotency, lost jobs, and flow instances pinned to their version.

Runs on SQLite and PostgreSQL with the inline queue; the clock is a cell the
tests move, and ``scheduler.tick`` fires what is due.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatchflow.dsl.compiler import App, compile_bundle, compile_sources
from dispatchflow.errors import ConflictError, NotFoundError, PermissionDenied
from dispatchflow.platform import defaults
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.dispatch import explain
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.runtime.runner import process_pending, process_record, take_action
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.store.db import flow_instances, offers, outbox, timeline
from dispatchflow.platform.store.versions import publish

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


@pytest.fixture(scope="module")
def reference_app() -> App:
    result = compile_bundle(REFERENCE)
    assert result.app is not None, result.diagnostics
    return result.app


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, reference_app: App, clock: Clock) -> Iterator[Runtime]:
    runtime = Runtime(Settings.from_env(home=tmp_path / "home", database_url=database_url,
                                        secret_key="test"), clock=clock)
    publish(runtime.engine, reference_app, created_by="test", now=clock())
    runtime.refresh()
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def world(rt: Runtime) -> dict[str, Any]:
    """A normal customer and two aircon technicians 1 km and 2 km from the customer."""
    create, a = rt.records.create, SYSTEM_ACTOR
    customer = create(a, "customer", {"name": "李娜", "phone": "13800000002", "tier": "normal",
                                      "location": {"lat": 31.2, "lng": 121.5}})
    techs = [create(a, "technician", {"name": n, "level": 3, "on_duty": True,
                                      "skills": ["aircon"],
                                      "location": {"lat": 31.2 + km / 111.2, "lng": 121.5}})
             for n, km in (("王师傅", 1.0), ("赵师傅", 2.0))]
    return {"customer": customer, "techs": techs}


def new_order(rt: Runtime, world: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": "空调不制冷", "description": "客厅空调开机后不出冷风", "category": "aircon",
        "customer": world["customer"]["id"], "location": {"lat": 31.2, "lng": 121.5},
        **extra})


def tech_actor(world: dict[str, Any], i: int) -> Actor:
    return Actor(f"tech{i}", roles=("technician",),
                 attributes={"technician": world["techs"][i]["id"]})


def status(rt: Runtime, order_id: int) -> str:
    return rt.records.get(SYSTEM_ACTOR, "work_order", order_id)["status"]


def offer_states(rt: Runtime, order_id: int) -> list[tuple[int, str]]:
    with rt.engine.connect() as conn:
        rows = conn.execute(select(offers.c.candidate_id, offers.c.state)
                            .where(offers.c.record_id == order_id).order_by(offers.c.id))
        return [(int(c), s) for c, s in rows]


def notes(rt: Runtime, order_id: int, kind: str | None = None) -> list[str]:
    with rt.engine.connect() as conn:
        query = select(timeline.c.summary).where(timeline.c.entity == "work_order") \
            .where(timeline.c.record_id == order_id).order_by(timeline.c.id)
        if kind:
            query = query.where(timeline.c.kind == kind)
        return list(conn.execute(query).scalars())


def tech(rt: Runtime, world: dict[str, Any], i: int) -> dict[str, Any]:
    return rt.records.get(SYSTEM_ACTOR, "technician", world["techs"][i]["id"])


def test_a_new_order_is_triaged_dispatched_and_offered_to_the_nearest(rt, world) -> None:
    order = new_order(rt, world)
    assert status(rt, order["id"]) == "offered"
    t1, t2 = (t["id"] for t in world["techs"])
    assert offer_states(rt, order["id"]) == [(t1, "pending")]
    rules = notes(rt, order["id"], "rule")
    assert "rule set triage: rule “other orders dispatch to nearby skilled technicians” fired" \
        in rules
    flow = notes(rt, order["id"], "flow")
    assert flow[:4] == ["flow work_order started (on work_order.created)",
                        "work_order: new → triaged (on work_order.created)",
                        "work_order: triaged → dispatching (on work_order.dispatch_requested)",
                        "work_order: dispatching → offered (on work_order.offered)"]
    history = explain.dispatch_history(rt, SYSTEM_ACTOR, "work_order", order["id"])
    decision = history["rounds"][0]["decision"]
    assert [c["id"] for c in decision["ranked"]] == [t1, t2]
    assert history["rounds"][0]["offers"][0]["state"] == "pending"
    with rt.engine.connect() as conn:
        pending = conn.execute(select(func.count()).select_from(outbox)
                               .where(outbox.c.processed_at.is_(None))).scalar()
    assert pending == 0


def test_accepting_assigns_the_order_once(rt, world) -> None:
    order = new_order(rt, world)
    t1 = world["techs"][0]["id"]
    with pytest.raises(NotFoundError):  # no offer: the order is not theirs to see
        take_action(rt, tech_actor(world, 1), "work_order", order["id"], "accept")
    result = take_action(rt, tech_actor(world, 0), "work_order", order["id"], "accept")
    assert result.states == ("accepted",)
    stored = rt.records.get(SYSTEM_ACTOR, "work_order", order["id"])
    assert stored["assignee"] == t1 and stored["status"] == "accepted"
    assert tech(rt, world, 0)["open_tasks"] == 1
    assert offer_states(rt, order["id"]) == [(t1, "accepted")]
    with pytest.raises(ConflictError):
        take_action(rt, tech_actor(world, 0), "work_order", order["id"], "accept")
    with pytest.raises(PermissionDenied):  # a customer has no accept permission at all
        take_action(rt, Actor("c", roles=("customer",)), "work_order", order["id"], "accept")


def test_reject_then_expiry_then_escalation_with_the_reason(rt, world, clock) -> None:
    order = new_order(rt, world)
    t1, t2 = (t["id"] for t in world["techs"])
    take_action(rt, tech_actor(world, 0), "work_order", order["id"], "reject")
    assert offer_states(rt, order["id"]) == [(t1, "rejected"), (t2, "pending")]
    assert status(rt, order["id"]) == "offered"
    assert tech(rt, world, 0)["rejected_count"] == 1
    assert tech(rt, world, 0)["consecutive_anomalies"] == 1

    clock.advance(minutes=9)
    tick(rt)
    assert offer_states(rt, order["id"])[-1] == (t2, "pending")  # P3: 10 minutes to accept
    clock.advance(minutes=2)
    tick(rt)
    assert offer_states(rt, order["id"]) == [(t1, "rejected"), (t2, "expired")]
    assert tech(rt, world, 1)["expired_count"] == 1
    # both qualified technicians were tried: straight to the supervisor, with the reason
    assert status(rt, order["id"]) == "exception"
    escalations = [n for n in notes(rt, order["id"], "dispatch") if n.startswith("escalated")]
    assert escalations == ["escalated to area_supervisor: 排除 2 人：已尝试 2"]


def test_an_order_nobody_can_serve_goes_straight_to_the_supervisor(rt, world) -> None:
    order = new_order(rt, world, category="elevator", title="电梯困人")
    assert status(rt, order["id"]) == "exception"
    assert offer_states(rt, order["id"]) == []
    assert any("技能不符 2" in n for n in notes(rt, order["id"], "dispatch"))


def test_processing_again_changes_nothing(rt, world) -> None:
    order = new_order(rt, world)
    before = notes(rt, order["id"])
    assert process_record(rt, "work_order", order["id"]) == 0
    tick(rt, sweep_after=0)
    assert notes(rt, order["id"]) == before
    with rt.engine.connect() as conn:
        counts = conn.execute(select(func.count()).select_from(offers)).scalar()
    assert counts == 1


class DroppingQueue:
    """A queue that loses every job (a Redis that was flushed)."""

    def __init__(self) -> None:
        self.lost: list[Any] = []

    def enqueue(self, queue: str, job: str, *args: Any) -> None:
        self.lost.append((job, args))

    def enqueue_many(self, items: list[tuple[str, str, tuple[Any, ...]]]) -> None:
        self.lost.extend((job, args) for _, job, args in items)

    def release_lost(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_sweeper_redoes_work_whose_jobs_were_lost(rt, world, clock) -> None:
    inline = rt.queue
    rt.queue = DroppingQueue()
    order = new_order(rt, world)
    assert status(rt, order["id"]) == "new"
    rt.queue = inline
    assert tick(rt, sweep_after=60).swept == 0  # too recent for the sweeper
    clock.advance(seconds=61)
    assert tick(rt, sweep_after=60).swept == 1
    assert status(rt, order["id"]) == "offered"


class FailingQueue(DroppingQueue):
    """A queue whose sender dies (Redis gone, the scheduler killed) while sending."""

    def enqueue_many(self, items: list[tuple[str, str, tuple[Any, ...]]]) -> None:
        raise ConnectionError("redis went away")


def test_a_tick_that_dies_sending_its_jobs_leaves_the_work_to_the_next_tick(
        rt, world, clock) -> None:
    inline = rt.queue
    rt.queue = DroppingQueue()
    order = new_order(rt, world)
    clock.advance(seconds=61)
    rt.queue = FailingQueue()
    with pytest.raises(ConnectionError):
        tick(rt, sweep_after=60)
    rt.queue = inline
    # not an interval later: the dead tick never marked the events it could not send
    assert tick(rt, sweep_after=60).swept == 1
    assert status(rt, order["id"]) == "offered"

def test_a_poison_event_is_parked_and_the_record_goes_on(rt, world) -> None:
    order = new_order(rt, world)
    with rt.engine.begin() as conn:
        conn.execute(outbox.insert().values(
            entity="work_order", record_id=order["id"], event="__timer__",
            payload={"kind": "no_such_kind"}, created_at=START, attempts=0))
    for _ in range(10):
        with pytest.raises(KeyError):
            process_record(rt, "work_order", order["id"])
        with rt.engine.connect() as conn:
            failed = conn.execute(select(outbox.c.failed_at).where(
                outbox.c.event == "__timer__")).scalar()
        if failed is not None:
            break
    assert failed is not None
    assert process_record(rt, "work_order", order["id"]) == 0


def test_running_instances_stay_on_their_version(rt, world, reference_app) -> None:
    old = new_order(rt, world)
    sources = dict(reference_app.sources)
    flow = "flows/work_order.yaml"
    sources[flow] = sources[flow].replace("after: 1d\n", "after: 2d\n")
    sources["app.yaml"] = sources["app.yaml"].replace('version: "1.0"', 'version: "1.1"')
    v2 = compile_sources(sources)
    assert v2.app is not None, v2.diagnostics
    publish(rt.engine, v2.app, created_by="test")
    rt.refresh()
    assert rt.version_number == 2
    new = new_order(rt, world)
    with rt.engine.connect() as conn:
        versions = dict(conn.execute(select(flow_instances.c.record_id,
                                            flow_instances.c.version_number)).all())
    assert versions == {old["id"]: 1, new["id"]: 2}
    # the old instance keeps moving on version 1's flow
    take_action(rt, tech_actor(world, 0), "work_order", old["id"], "accept")
    assert status(rt, old["id"]) == "accepted"


def test_timeline_api_merges_platform_entries(rt, world) -> None:
    order = new_order(rt, world)
    items = rt.records.timeline(SYSTEM_ACTOR, "work_order", order["id"])
    kinds = [i.get("kind") for i in items]
    assert "rule" in kinds and "flow" in kinds and "dispatch" in kinds


def test_an_event_chain_that_loops_is_stopped(rt, world) -> None:
    order = new_order(rt, world)
    with rt.engine.begin() as conn:  # a "created" event deep inside a chain of emits
        conn.execute(outbox.insert().values(
            entity="work_order", record_id=order["id"], event="created", created_at=START,
            attempts=0, payload={"depth": defaults.MAX_EVENT_DEPTH}))
    process_record(rt, "work_order", order["id"])
    assert any("stopped an event chain" in n for n in notes(rt, order["id"], "error"))


def pending_sla(rt: Runtime, order_id: int) -> dict[str, datetime]:
    from dispatchflow.platform.runtime.timers import pending_timers

    with rt.engine.connect() as conn:
        rows = pending_timers(conn, "work_order", order_id, "sla")
    return {r["key"].split(":", 1)[1]: (r["fire_at"] if r["fire_at"].tzinfo
                                        else r["fire_at"].replace(tzinfo=UTC)) for r in rows}


def test_sla_deadlines_follow_working_hours_holidays_and_a_pause(rt, world, clock) -> None:
    """By hand, calendar `standard` (Mon-Sat 08-12, 13-20; 1-5 May 2026 are holidays).

    P2 order of a normal customer created Thursday 30 April, 18:00: on site within 4h,
    resolve within 1d (24 working hours).
    - on site: 2h on Thursday evening, then Wednesday 6 May 08:00 + 2h = 10:00;
      warning at 80% (3h12m) = 09:12.
    - resolution: Thursday 2h, Wednesday 11h, Thursday 7 May 11h = 24h at 20:00. A
      reported problem pauses it from Wednesday 10:00 (4h elapsed) to 15:00; the 20h
      left are Wednesday 15-20 (5h), Thursday (11h) and Friday 08-12 (4h): Friday
      8 May, 12:00.
    """
    from zoneinfo import ZoneInfo

    sh = ZoneInfo("Asia/Shanghai")
    clock.now = datetime(2026, 4, 30, 18, 0, tzinfo=sh)
    order = new_order(rt, world, priority="P2")
    t = pending_sla(rt, order["id"])
    assert t["onsite:breach"] == datetime(2026, 5, 6, 10, 0, tzinfo=sh)
    assert t["onsite:warn"] == datetime(2026, 5, 6, 9, 12, tzinfo=sh)
    assert t["resolution:breach"] == datetime(2026, 5, 7, 20, 0, tzinfo=sh)
    assert t["response:breach"] == datetime(2026, 4, 30, 19, 0, tzinfo=sh)  # 24x7, 1h

    clock.now = datetime(2026, 4, 30, 18, 5, tzinfo=sh)
    take_action(rt, tech_actor(world, 0), "work_order", order["id"], "accept")
    assert "response:breach" not in pending_sla(rt, order["id"])  # met: stopped
    clock.now = datetime(2026, 5, 6, 10, 0, tzinfo=sh)
    take_action(rt, tech_actor(world, 0), "work_order", order["id"], "report_exception")
    assert "resolution:breach" not in pending_sla(rt, order["id"])  # paused
    clock.now = datetime(2026, 5, 6, 15, 0, tzinfo=sh)
    take_action(rt, Actor("disp", roles=("dispatcher",), attributes={"regions": []}),
                "work_order", order["id"], "assign")
    assert pending_sla(rt, order["id"])["resolution:breach"] == \
        datetime(2026, 5, 8, 12, 0, tzinfo=sh)
    clocks = explain.sla_clocks(rt, SYSTEM_ACTOR, "work_order", order["id"])
    assert clocks["onsite"]["status"] == "breached"  # nobody arrived by Wednesday 10:00
    assert clocks["resolution"]["deadline"] == "2026-05-08T12:00:00+08:00"


def test_a_priority_change_moves_the_deadline(rt, world, clock) -> None:
    order = new_order(rt, world)
    before = pending_sla(rt, order["id"])["response:breach"]
    assert before == START + timedelta(hours=2)  # P3 normal: respond within 2h
    rt.records.update(SYSTEM_ACTOR, "work_order", order["id"], {"priority": "P1"},
                      expected_version=None)
    assert pending_sla(rt, order["id"])["response:breach"] == START + timedelta(minutes=30)


def test_the_sla_warning_is_raised_once_when_its_timer_fires(rt, world, clock) -> None:
    order = new_order(rt, world)  # P3 normal: respond within 2h, warn at 80% = 1h36m
    clock.advance(minutes=97)
    tick(rt)
    tick(rt)
    warnings = [n for n in notes(rt, order["id"], "sla")]
    assert warnings == ["SLA clock response: warning"]
    with rt.engine.connect() as conn:
        events = conn.execute(select(outbox.c.event).where(outbox.c.record_id == order["id"])
                              .where(outbox.c.event == "sla_warning")).scalars().all()
    assert events == ["sla_warning"]


def test_a_drain_job_takes_the_pending_events_of_every_record(rt, world) -> None:
    inline = rt.queue
    rt.queue = DroppingQueue()
    orders = [new_order(rt, world)["id"] for _ in range(3)]
    rt.queue = inline
    assert [status(rt, o) for o in orders] == ["new"] * 3
    assert process_pending(rt) >= 3
    assert [status(rt, o) for o in orders] == ["offered"] * 3
    assert process_pending(rt) == 0


def test_a_drain_job_skips_a_held_record_then_waits_for_it(tmp_path, reference_app) -> None:
    """PostgreSQL: a record another transaction holds is skipped while the others are
    processed (not parked), and waited for in the next round."""
    from tests.conftest import PG_BASE_URL, _drop_pg_schema, _pg_schema

    schema = _pg_schema()
    rt = Runtime(Settings.from_env(home=tmp_path / "h", secret_key="test",
                                   database_url=f"{PG_BASE_URL}?options=-csearch_path%3D"
                                                f"{schema}"), clock=Clock())
    try:
        publish(rt.engine, reference_app, created_by="test", now=START)
        rt.refresh()
        inline = rt.queue
        rt.queue = DroppingQueue()
        customer = rt.records.create(SYSTEM_ACTOR, "customer", {
            "name": "李娜", "phone": "13800000002", "tier": "normal"})
        held, free = (rt.records.create(SYSTEM_ACTOR, "work_order", {
            "title": "空调不制冷", "category": "aircon", "customer": customer["id"],
            "location": {"lat": 31.2, "lng": 121.5}})["id"] for _ in range(2))
        rt.queue = inline
        table = rt.tables["work_order"]
        seen: list[tuple[bool, bool, Any]] = []

        def pending() -> dict[int, Any]:
            with rt.engine.connect() as conn:
                return dict(conn.execute(
                    select(outbox.c.record_id, outbox.c.failed_at)
                    .where(outbox.c.entity == "work_order")
                    .where(outbox.c.processed_at.is_(None))).all())

        holder = rt.engine.connect()
        holder.execute(select(table.c.id).where(table.c.id == held).with_for_update())

        def release_later() -> None:
            deadline = time.monotonic() + 60
            while status(rt, free) == "new" and time.monotonic() < deadline:
                time.sleep(0.05)  # until the free one is processed, the drain still running
            waiting = pending()
            seen.append((status(rt, free) != "new", held in waiting, waiting.get(held)))
            holder.rollback()
            holder.close()

        releaser = threading.Thread(target=release_later)
        releaser.start()
        assert process_pending(rt) >= 2
        releaser.join()
        # the free one went first; the held one waited, not parked
        assert seen == [(True, True, None)]
        assert pending() == {}
        assert status(rt, held) != "new" and status(rt, free) != "new"
    finally:
        rt.engine.dispose()
        _drop_pg_schema(schema)


def test_a_failing_event_in_a_drain_batch_holds_up_only_its_record(rt, world) -> None:
    inline = rt.queue
    rt.queue = DroppingQueue()
    orders = [new_order(rt, world)["id"] for _ in range(3)]
    with rt.engine.begin() as conn:
        conn.execute(outbox.insert().values(
            entity="work_order", record_id=orders[1], event="__timer__",
            payload={"kind": "no_such_kind"}, created_at=START, attempts=0))
    rt.queue = inline
    with pytest.raises(RuntimeError, match=f"work_order {orders[1]}"):
        process_pending(rt)
    assert status(rt, orders[0]) == status(rt, orders[2]) == "offered"
    for _ in range(defaults.EVENT_MAX_ATTEMPTS):  # retried by RQ, then parked
        with rt.engine.connect() as conn:
            parked = conn.execute(select(outbox.c.failed_at, outbox.c.attempts).where(
                outbox.c.event == "__timer__")).one()
        if parked.failed_at is not None:
            break
        with pytest.raises(RuntimeError):
            process_pending(rt)
    assert parked.failed_at is not None and parked.attempts == defaults.EVENT_MAX_ATTEMPTS
    assert process_pending(rt) > 0  # the record's later events go on once it is parked
    assert status(rt, orders[1]) == "offered"
    assert process_pending(rt) == 0


def _drain_with_lost_jobs(rt: Runtime, world: dict[str, Any], serves: set[str]
                          ) -> tuple[list[int], list[tuple[str, tuple[Any, ...]]]]:
    """Two new orders drained by a job of a worker serving ``serves``, on a queue that
    loses every job; returns the orders and the jobs the drain queued."""
    rt.queue = lost = DroppingQueue()
    orders = [new_order(rt, world)["id"] for _ in range(2)]
    lost.lost.clear()
    rt.serves = frozenset(serves)
    process_pending(rt)
    return orders, lost.lost


def test_a_drain_job_runs_the_dispatch_rounds_it_asks_for_when_its_worker_serves_them(
        rt, world) -> None:
    orders, queued = _drain_with_lost_jobs(rt, world, {"events", "dispatch"})
    assert [status(rt, o) for o in orders] == ["offered"] * 2
    assert {job for job, _ in queued} <= {"deliver_notification"}  # no round, no wake-up


def test_a_drain_job_queues_the_dispatch_rounds_when_its_worker_does_not_serve_them(
        rt, world) -> None:
    orders, queued = _drain_with_lost_jobs(rt, world, {"events"})
    assert [status(rt, o) for o in orders] == ["dispatching"] * 2
    rounds = [args for job, args in queued if job == "dispatch_round"]
    assert sorted(args[1] for args in rounds) == sorted(orders)
    assert "process_record" not in {job for job, _ in queued}  # its own loop takes those


def test_a_dispatch_round_that_fails_in_the_drain_job_is_queued(rt, world, monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("candidate pool unavailable")

    # The runtime reaches dispatch rounds through its services (the composition root's).
    monkeypatch.setattr(rt, "services", dataclasses.replace(rt.services, run_round=broken))
    orders, queued = _drain_with_lost_jobs(rt, world, {"events", "dispatch"})
    assert [status(rt, o) for o in orders] == ["dispatching"] * 2
    assert sorted(args[1] for job, args in queued if job == "dispatch_round") == sorted(orders)


def test_events_for_a_record_the_drain_holds_are_processed_in_its_transaction(
        rt, world) -> None:
    """Completing an order updates its technician's profile: the technician's
    ``updated`` event is processed by the same drain (its row is held), not queued."""
    from dispatchflow.platform.records.files import store_file

    order = new_order(rt, world)["id"]
    actor = tech_actor(world, 0)
    for action in ("accept", "depart", "arrive", "start_service"):
        take_action(rt, actor, "work_order", order, action)
    photo = store_file(rt.engine, b"\x89PNG" + bytes(16), filename="a.png",
                       content_type="image/png", created_by=actor.user_id,
                       max_bytes=1 << 20)
    rt.queue = lost = DroppingQueue()
    process_pending(rt)  # the technician's event from accepting, on its own
    take_action(rt, actor, "work_order", order, "complete",
                {"resolution": "换电容", "customer_absent": True, "photos": [photo.id]})
    lost.lost.clear()
    assert process_record(rt, "work_order", order) > 0
    technician = world["techs"][0]["id"]
    with rt.engine.connect() as conn:
        events = conn.execute(select(outbox.c.event, outbox.c.processed_at)
                              .where(outbox.c.entity == "technician")
                              .where(outbox.c.record_id == technician)
                              .order_by(outbox.c.id)).all()
    assert [e for e, _ in events] == ["created", "updated", "updated"]  # accept, complete
    assert all(at is not None for _, at in events)
    assert ("process_record", ("technician", technician)) not in lost.lost
    assert tech(rt, world, 0)["completed_count"] == 1


def test_a_round_run_by_a_drain_job_stands_when_the_events_after_it_fail(
        rt, world, monkeypatch) -> None:
    """The drain job runs the round and the record's events in one transaction; if
    those events fail, the round is made on its own and the events go the usual way."""
    from dispatchflow.platform.runtime import runner

    real = runner.handle_event

    def failing_offered(step: Any, event: str, payload: Any) -> None:
        if event == "offered":
            raise RuntimeError("rules engine down")
        real(step, event, payload)

    monkeypatch.setattr(runner, "handle_event", failing_offered)
    rt.queue = DroppingQueue()
    order = new_order(rt, world)["id"]
    rt.serves = frozenset({"events", "dispatch"})
    with pytest.raises(RuntimeError, match=f"work_order {order}"):
        process_pending(rt)
    assert offer_states(rt, order) == [(world["techs"][0]["id"], "pending")]
    with rt.engine.connect() as conn:
        offered = conn.execute(select(outbox.c.processed_at, outbox.c.attempts)
                               .where(outbox.c.record_id == order)
                               .where(outbox.c.event == "offered")).one()
    assert offered.processed_at is None and offered.attempts >= 1
    monkeypatch.setattr(runner, "handle_event", real)
    process_pending(rt)
    assert status(rt, order) == "offered"
