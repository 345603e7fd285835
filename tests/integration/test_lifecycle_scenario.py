"""The whole work-order lifecycle, 100 orders, inline and on RQ workers: same outcome.

:func:`run_scenario` drives the reference bundle (examples/field-service) through
one fixed script on a fixed clock that only the driver moves: customers,
technicians and work orders are created, every order is triaged, dispatched,
offered, accepted, worked (every 3rd one through the parallel spare-parts
branch), completed with a completion report, confirmed, rated and closed.
Every 5th order's first technician never answers (the offer expires and the
engine re-offers to the next one); every 10th order is answered by nobody
through all retries, is escalated into ``exception`` and assigned by hand.

Orders sit on a grid >= 40 km apart and each has technicians of its own within
5 km, so no dispatch decision depends on another order's progress: the result
is a function of the script alone. The test runs the script inline (no Redis)
and on two RQ worker processes, each on a fresh PostgreSQL database, and
compares everything the platform recorded per record (statuses, flow
instances, timelines, audit rows, outbox events, dispatch rounds and offers,
timers, planned notifications), with surrogate ids of platform rows replaced.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.dsl.diagnostics import render_text
from dispatchflow.errors import ConflictError, DispatchflowError, NotFoundError
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.dispatch.explain import available_actions
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.runtime.queue import InlineQueue
from dispatchflow.platform.runtime.runner import take_action
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.store.db import (
    audit_log,
    dispatch_rounds,
    files,
    flow_instances,
    notifications,
    offers,
    outbox,
    timeline,
    timers,
)
from dispatchflow.platform.store.versions import publish

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "examples" / "field-service"
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: The scenario starts on Monday 2 March 2026, 09:00 in Shanghai (working hours, and
#: inside the customers' contact hours, so no notification is held for quiet hours).
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)

CATEGORIES = ("plumbing", "electrical", "aircon", "appliance", "water_heater", "hvac",
              "elevator")

#: Minutes after T0 at which each phase of the script happens.
PHASES = {
    "create": 0, "accept": 1, "first_expiry": 11, "accept_second": 12,
    "expiry_2": 21, "expiry_3": 31, "expiry_4": 41, "set_assignee": 55, "assign": 56,
    "depart": 60, "arrive": 75, "start_service": 80, "request_parts": 85,
    "parts_received": 100, "complete": 120, "confirm": 130, "rate": 140, "end": 150,
}


# ---------------------------------------------------------------- runtime

class ScenarioClock:
    """The runtime's clock: a fixed instant that only the driver moves (:func:`clock_of`)."""

    def __init__(self, start: datetime) -> None:
        self.cell = [start]

    def __call__(self) -> datetime:
        return self.cell[0]

    def set(self, value: datetime) -> None:
        self.cell[0] = value


@functools.cache
def reference_app() -> App:
    """The compiled reference bundle (once per session)."""
    result = compile_bundle(BUNDLE)
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


def make_runtime(database_url: str, redis_url: str | None, home: Path) -> Runtime:
    """A runtime on ``database_url`` with the reference bundle published and a
    :class:`ScenarioClock`; RQ when ``redis_url`` is given, inline otherwise."""
    settings = Settings.from_env(home=home, database_url=database_url, redis_url=redis_url,
                                 secret_key="integration-test-secret-key")
    clock = ScenarioClock(T0)
    rt = Runtime(settings, clock=clock)
    _CLOCKS[rt] = clock
    publish(rt.engine, reference_app(), created_by="test", now=T0)
    rt.refresh()
    return rt


_CLOCKS: weakref.WeakKeyDictionary[Runtime, ScenarioClock] = weakref.WeakKeyDictionary()


def clock_of(rt: Runtime) -> ScenarioClock:
    """The :class:`ScenarioClock` of a runtime made by :func:`make_runtime`."""
    clock = _CLOCKS.get(rt)
    assert clock is not None, "the runtime was not made by make_runtime"
    return clock


def inline_settle(rt: Runtime) -> Callable[[], None]:
    """Settle for the inline queue: everything ran already; fail if anything is left."""
    from sqlalchemy import func

    def settle() -> None:
        assert isinstance(rt.queue, InlineQueue)
        with rt.engine.connect() as conn:
            left = conn.execute(select(outbox.c.id, outbox.c.entity, outbox.c.record_id,
                                       outbox.c.event, outbox.c.last_error)
                                .where(outbox.c.processed_at.is_(None))
                                .order_by(outbox.c.id).limit(5)).all()
            rounds = conn.execute(select(func.count()).select_from(dispatch_rounds)
                                  .where(dispatch_rounds.c.status == "pending")).scalar_one()
        assert rt.queue.failures == 0 and not left and not rounds, (
            f"inline jobs failed ({rt.queue.failures}); unprocessed events: {left}; "
            f"pending dispatch rounds: {rounds}")
    return settle


# ---------------------------------------------------------------- the script

@dataclass
class Order:
    """One work order of the script and what should become of it."""

    index: int  # 1-based
    category: str
    priority: str
    lat: float
    lng: float
    kind: str  # normal | timeout | escalate
    parts: bool
    customer: int = 0
    technicians: list[int] = field(default_factory=list)
    id: int = 0
    parts_taken: list[str] = field(default_factory=list)

    @property
    def expected_assignee(self) -> int:
        """Normal and escalated orders go to the nearest technician; timeouts to the 2nd."""
        return self.technicians[1] if self.kind == "timeout" else self.technicians[0]


def plan_orders(n: int) -> list[Order]:
    """``n`` orders on a grid 0.4 deg lat x 0.5 deg lng apart (>= 44 km)."""
    out = []
    for i in range(1, n + 1):
        k = i - 1
        kind = "escalate" if i % 10 == 0 else "timeout" if i % 5 == 0 else "normal"
        out.append(Order(i, CATEGORIES[k % len(CATEGORIES)], "P2" if i % 2 == 0 else "P3",
                         round(22.0 + 0.4 * (k // 10), 4), round(100.0 + 0.5 * (k % 10), 4),
                         kind, parts=i % 3 == 0))
    return out


def technician_actor(tech_id: int) -> Actor:
    return Actor(f"tech{tech_id}", f"technician {tech_id}", roles=("technician",),
                 attributes={"technician": tech_id})


def customer_actor(customer_id: int) -> Actor:
    return Actor(f"cust{customer_id}", f"customer {customer_id}", roles=("customer",),
                 attributes={"customer": customer_id})


DISPATCHER = Actor("dispatcher1", "dispatcher", roles=("dispatcher",),
                   attributes={"regions": []})


def _photo_id(order: Order) -> str:
    """A deterministic file id (store_file makes random ones; ids must match across runs)."""
    return f"it-photo-{order.index:04d}-0000000"


def _actions(rt: Runtime, actor: Actor, order: Order) -> set[str]:
    return {a["action"] for a in available_actions(rt, actor, "work_order", order.id)}


def _act(rt: Runtime, actor: Actor, order: Order, action: str,
         form: dict[str, Any] | None = None) -> tuple[str, ...]:
    try:
        return take_action(rt, actor, "work_order", order.id, action, form).states
    except DispatchflowError as exc:
        offered = _actions(rt, actor, order)
        pytest.fail(f"order #{order.index} (work_order {order.id}, {order.kind}): "
                    f"{actor.user_id} cannot take '{action}': {exc!r}; offered now: "
                    f"{sorted(offered)}; status: {_status(rt, order)}", pytrace=False)


def _status(rt: Runtime, order: Order) -> str:
    table = rt.tables["work_order"]
    with rt.engine.connect() as conn:
        return str(conn.execute(select(table.c.status).where(table.c.id == order.id)).scalar())


def create_orders(rt: Runtime, plan: list[Order],
                  hook: Callable[[str, int], None] | None = None) -> None:
    """Customers, technicians (each order has its own) and the work orders of ``plan``."""
    hook = hook or (lambda phase, i: None)
    for o in plan:
        o.customer = rt.records.create(SYSTEM_ACTOR, "customer", {
            "name": f"客户{o.index}", "phone": f"138{o.index:08d}", "tier": "normal",
            "address": f"测试路{o.index}号", "location": {"lat": o.lat, "lng": o.lng}})["id"]
    for o in plan:
        count = {"normal": 1, "timeout": 2, "escalate": 4}[o.kind]
        for j in range(count):  # 1, 2, 3, 4 km north of the order: the nearest is first
            o.technicians.append(rt.records.create(SYSTEM_ACTOR, "technician", {
                "name": f"技师{o.index}-{j + 1}", "phone": f"139{o.index:05d}{j:03d}",
                "skills": [o.category], "level": 5, "on_duty": True,
                "location": {"lat": round(o.lat + 0.009 * (j + 1), 4), "lng": o.lng}})["id"])
    with rt.engine.begin() as conn:  # completion photos, with ids that match across runs
        conn.execute(files.insert(), [{
            "id": _photo_id(o), "sha256": "0" * 64, "filename": f"after-{o.index}.jpg",
            "content_type": "image/jpeg", "size": 4, "data": b"\xff\xd8\xff\xd9",
            "created_at": rt.clock(),
            # the technician who completes the order uploads its photo
            "created_by": technician_actor(o.expected_assignee).user_id} for o in plan])
    for o in plan:
        o.id = rt.records.create(SYSTEM_ACTOR, "work_order", {
            "title": f"{o.category} 故障 #{o.index}", "description": "设备无法正常工作，请上门检修",
            "category": o.category, "priority": o.priority, "customer": o.customer,
            "location": {"lat": o.lat, "lng": o.lng}, "address": f"测试路{o.index}号",
            "channel": "phone"})["id"]
        hook("created", o.index)


def run_scenario(rt: Runtime, settle: Callable[[], None], *, orders: int = 100,
                 on_step: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Run the script (see module docs) and return the normalized :func:`snapshot`.

    ``settle()`` is called after every driver step and must return only when
    all work caused so far is done. ``on_step(phase, i)`` is called at the start
    of every phase (``i`` = 0) and after the driver's step on order ``i`` in it
    (phase ``"created"`` for the creation), for tests that inject faults.
    """
    clock = clock_of(rt)
    hook = on_step or (lambda phase, i: None)
    plan = plan_orders(orders)

    def phase(name: str, step: Callable[[Order], object] | None = None,
              which: Callable[[Order], bool] = lambda o: True) -> None:
        clock.set(T0 + timedelta(minutes=PHASES[name]))
        hook(name, 0)
        tick(rt)  # what a scheduler does at this time: due timers, sweep, deliveries
        settle()
        if step is None:
            return
        for o in plan:
            if which(o):
                step(o)
                hook(name, o.index)
        settle()

    # -- create: customers, technicians (each order has its own), work orders
    phase("create")
    create_orders(rt, plan, hook)
    settle()
    for o in plan:
        assert _status(rt, o) == "offered", \
            f"order #{o.index} (work_order {o.id}) was not offered: {_status(rt, o)}"

    # -- the nearest technician accepts (every 5th one never answers)
    def accept(o: Order) -> None:
        assert _act(rt, technician_actor(o.expected_assignee), o, "accept") == ("accepted",)

    phase("accept", accept, lambda o: o.kind == "normal")

    # -- first offers expire; the engine re-offers to the next candidate, who accepts
    def accept_second(o: Order) -> None:
        with pytest.raises((NotFoundError, ConflictError)):  # the expired offer is gone
            take_action(rt, technician_actor(o.technicians[0]), "work_order", o.id, "accept")
        accept(o)

    phase("first_expiry")
    phase("accept_second", accept_second, lambda o: o.kind == "timeout")

    # -- nobody answers every 10th order: four rounds expire, then it is escalated and a
    #    dispatcher assigns it by hand (``assign`` needs an assignee first)
    def set_assignee(o: Order) -> None:
        assert _status(rt, o) == "exception", \
            f"order #{o.index} (work_order {o.id}) was not escalated: {_status(rt, o)}"
        rt.records.update(DISPATCHER, "work_order", o.id, {"assignee": o.technicians[0]},
                          expected_version=None)

    escalated = lambda o: o.kind == "escalate"  # noqa: E731
    phase("expiry_2")
    phase("expiry_3")
    phase("expiry_4")
    phase("set_assignee", set_assignee, escalated)
    phase("assign", lambda o: _act(rt, DISPATCHER, o, "assign"), escalated)

    # -- on site, service (every 3rd order also waits for spare parts, in parallel)
    def technician(action: str, form: Callable[[Order], dict[str, Any]] | None = None
                   ) -> Callable[[Order], object]:
        return lambda o: _act(rt, technician_actor(o.expected_assignee), o, action,
                              form(o) if form else None)

    def parts(action: str) -> Callable[[Order], None]:
        def step(o: Order) -> None:
            if action in _actions(rt, technician_actor(o.expected_assignee), o):
                technician(action)(o)
                o.parts_taken.append(action)
        return step

    for name in ("depart", "arrive", "start_service"):
        phase(name, technician(name))
    phase("request_parts", parts("request_parts"), lambda o: o.parts)
    phase("parts_received", parts("parts_received"), lambda o: o.parts)
    phase("complete", technician("complete", lambda o: {
        "resolution": f"更换损坏部件，测试正常（#{o.index}）", "photos": [_photo_id(o)],
        "asset_code": f"EQ-{o.index:05d}", "customer_absent": True}))

    # -- the customer (odd orders) or a dispatcher (even) confirms; the customer rates
    def confirm(o: Order) -> None:
        actor = customer_actor(o.customer) if o.index % 2 else DISPATCHER
        assert _act(rt, actor, o, "confirm_completion") == ("feedback",)

    def rate(o: Order) -> None:
        rt.records.update(customer_actor(o.customer), "work_order", o.id,
                          {"rating": 5, "feedback": "师傅很专业"}, expected_version=None)

    phase("confirm", confirm)
    phase("rate", rate)
    phase("end")

    check_outcome(rt, plan)
    return snapshot(rt)


# ---------------------------------------------------------------- what must hold

def check_outcome(rt: Runtime, plan: list[Order]) -> None:
    """What the script must lead to, whatever the mode (readable messages)."""
    wo = rt.tables["work_order"]
    with rt.engine.connect() as conn:
        rows = {r["id"]: r for r in conn.execute(select(wo)).mappings()}
        inst = {r["record_id"]: r for r in conn.execute(
            select(flow_instances).where(flow_instances.c.entity == "work_order")).mappings()}
        made = conn.execute(select(offers.c.record_id, offers.c.candidate_id, offers.c.state)
                            .where(offers.c.entity == "work_order")).all()
        events = conn.execute(select(outbox.c.entity, outbox.c.record_id, outbox.c.event,
                                     outbox.c.processed_at, outbox.c.failed_at,
                                     outbox.c.last_error)).all()
    flow = rt.flows_of(rt.version_number).flows["work_order"]
    has_parts = any(t.action == "request_parts" for t in flow.transitions())
    problems: list[str] = []
    lost = [e for e in events if e.processed_at is None]
    if lost:
        problems.append(f"{len(lost)} outbox events never processed, e.g. {lost[:5]}")
    # nothing in the script is an error: a failed attempt (e.g. a deadlock between two
    # workers) is a bug even when a retry hid it
    errors = [e for e in events if e.last_error is not None]
    if errors:
        problems.append(f"{len(errors)} outbox events failed at least once, e.g. "
                        + "; ".join(f"{e.entity} {e.record_id} {e.event}: {e.last_error}"
                                    for e in errors[:3]))
    accepted = Counter(r.record_id for r in made if r.state == "accepted")
    double = {k: v for k, v in accepted.items() if v > 1}
    if double:
        problems.append(f"orders with more than one accepted offer: {double}")
    for o in plan:
        row, fi = rows[o.id], inst.get(o.id)
        where = f"order #{o.index} (work_order {o.id}, {o.kind}{', parts' if o.parts else ''})"
        if row["status"] != "closed":
            problems.append(f"{where}: status {row['status']}, expected closed")
        if fi is None or fi["state"]["active"] != [["closed"]] or not fi["ended"]:
            problems.append(f"{where}: flow instance {fi and fi['state']}")
        if row["assignee"] != o.expected_assignee:
            problems.append(f"{where}: assignee {row['assignee']}, expected "
                            f"{o.expected_assignee} of {o.technicians}")
        states = Counter(r.state for r in made if r.record_id == o.id)
        want = {"normal": {"accepted": 1}, "timeout": {"expired": 1, "accepted": 1},
                "escalate": {"expired": 4}}[o.kind]
        if dict(states) != want:
            problems.append(f"{where}: offers {dict(states)}, expected {want}")
        entered = [s for h in (fi["history"] if fi else []) for s in h.get("entered", [])]
        if o.parts and has_parts and o.parts_taken != ["request_parts", "parts_received"]:
            problems.append(f"{where}: parts branch not offered: took {o.parts_taken}")
        if o.parts_taken and "waiting_parts" not in entered:
            problems.append(f"{where}: never waited for parts: {entered}")
        if o.kind == "escalate" and "exception" not in entered:
            problems.append(f"{where}: never in exception: {entered}")
    assert not problems, "\n".join(problems[:40])


# ---------------------------------------------------------------- snapshots

#: Surrogate ids of platform rows in texts ("offer 12 accepted", "retry after round 7").
_ID_IN_TEXT = re.compile(r"\b(offers?|rounds?|deliver(?:y|ies)|timers?|events?|instances?)"
                         r"( #?)\d+")
#: Detail/payload keys whose values are surrogate ids of platform rows.
_ID_KEYS = {"offer", "round", "deliveries", "delivery", "instance", "timer", "event_id",
            "digest_parent"}


def _ids_only(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, list) and all(_ids_only(v) for v in value)


def normalize(value: Any) -> Any:
    """JSON-ready ``value`` with surrogate ids of platform rows removed (see module docs)."""
    if isinstance(value, dict):
        return {str(k): _timer_key(v) if k == "key" and isinstance(v, str) else normalize(v)
                for k, v in value.items() if not (k in _ID_KEYS and _ids_only(v))}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        return _ID_IN_TEXT.sub(lambda m: f"{m.group(1)} #", value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)) \
            .astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 9)
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)


def _canon(value: Any) -> str:
    return json.dumps(normalize(value), sort_keys=True, ensure_ascii=False)


def _timer_key(key: str) -> str:
    """A timer key without the instance or offer id it starts with (``12:response:warn``)."""
    return re.sub(r"^\d+(?=:|$)", "#", key)


def snapshot(rt: Runtime) -> dict[str, Any]:
    """Everything recorded per record, keyed ``entity:id``, normalized (see module docs).

    ``timeline`` is sorted (a dispatch round runs on its own queue, so its lines
    may land between an event's lines in another order); ``sequence`` keeps the
    stored order of what must happen in order: flow steps, rules, actions, SLA.
    """
    out: dict[str, dict[str, Any]] = {}

    def rec(entity: str, record_id: int) -> dict[str, Any]:
        return out.setdefault(f"{entity}:{record_id}", {
            "record": {}, "flow": [], "timeline": [], "sequence": [], "audit": [],
            "events": [], "rounds": [], "offers": [], "timers": [], "notifications": []})

    with rt.engine.connect() as conn:
        for entity in ("work_order", "technician"):
            table = rt.tables[entity]
            for r in conn.execute(select(table).order_by(table.c.id)).mappings():
                fields = {k: v for k, v in r.items()
                          if k not in ("created_at", "updated_at", "id")}
                rec(entity, r["id"])["record"] = normalize(fields)
        for r in conn.execute(select(flow_instances).order_by(flow_instances.c.id)).mappings():
            rec(r["entity"], r["record_id"])["flow"].append(normalize({
                k: r[k] for k in ("flow", "version_number", "state", "history", "sla",
                                  "ended")}))
        for r in conn.execute(select(timeline).order_by(timeline.c.id)).mappings():
            if r["entity"] not in ("work_order", "technician"):
                continue
            item = rec(r["entity"], r["record_id"])
            line = [normalize(r["at"]), r["kind"], normalize(r["summary"]), _canon(r["detail"])]
            item["timeline"].append(line)
            if r["kind"] in ("flow", "rule", "action", "sla"):
                item["sequence"].append(line[:3])
        for r in conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings():
            if r["entity"] in ("work_order", "technician"):
                # the channel is cut at 50 characters *after* an offer id was written
                # into it, so compare what is left of it whatever the id's length
                rec(r["entity"], r["record_id"])["audit"].append(
                    [normalize(r["at"]), r["action"], r["actor"],
                     normalize(r["channel"] or "")[:40], _canon(r["changes"])])
        for r in conn.execute(select(outbox).order_by(outbox.c.id)).mappings():
            if r["entity"] in ("work_order", "technician"):
                rec(r["entity"], r["record_id"])["events"].append(
                    [normalize(r["created_at"]), r["event"], _canon(r["payload"]),
                     r["processed_at"] is not None, r["failed_at"] is not None])
        for r in conn.execute(select(dispatch_rounds)).mappings():
            rec(r["entity"], r["record_id"])["rounds"].append(
                [normalize(r["requested_at"]), r["attempt"], r["policy"], r["status"],
                 normalize(r["decided_at"]), _canon(r["decision"])])
        for r in conn.execute(select(offers)).mappings():
            rec(r["entity"], r["record_id"])["offers"].append(
                [normalize(r["created_at"]), r["rank"], r["candidate_id"], r["mode"],
                 r["state"], normalize(r["expires_at"]), normalize(r["answered_at"]),
                 normalize(r["reason"]), _canon(r["score"])])
        for r in conn.execute(select(timers)).mappings():
            rec(r["entity"], r["record_id"])["timers"].append(
                [r["kind"], _timer_key(r["key"]), normalize(r["fire_at"]), r["status"],
                 normalize(r["fired_at"]), _canon(r["payload"])])
        for r in conn.execute(select(notifications)).mappings():
            rec(r["entity"], r["record_id"])["notifications"].append(
                [normalize(r["created_at"]), r["notification"], r["channel"], r["recipient"],
                 r["severity"], r["status"], normalize(r["cause"]), normalize(r["subject"])])
    for item in out.values():
        for key in ("timeline", "audit", "events", "rounds", "offers", "timers",
                    "notifications"):
            item[key].sort(key=_canon)
    return out


def assert_same(expected: dict[str, Any], actual: dict[str, Any],
                labels: tuple[str, str] = ("inline", "rq")) -> None:
    """Equal snapshots, or a failure showing the first difference as a readable diff."""
    if expected == actual:
        return
    missing = sorted(set(expected) ^ set(actual))
    if missing:
        pytest.fail(f"records only in one run: {missing[:20]}", pytrace=False)
    differing = [k for k in expected if expected[k] != actual[k]]
    key = min(differing, key=lambda k: (k.split(":")[0] != "work_order",
                                        int(k.split(":")[1])))
    section = next(s for s in expected[key] if expected[key][s] != actual[key][s])

    def lines(snap: dict[str, Any]) -> list[str]:
        value = snap[key][section]
        if isinstance(value, list):
            return [json.dumps(v, ensure_ascii=False, sort_keys=True) for v in value]
        return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1).splitlines()

    diff = list(difflib.unified_diff(lines(expected), lines(actual), labels[0], labels[1],
                                     lineterm="", n=2))
    pytest.fail(f"{len(differing)} record(s) differ between {labels[0]} and {labels[1]}, "
                f"e.g. {differing[:8]}; first: {key}, section '{section}':\n"
                + "\n".join(diff[:80]), pytrace=False)


# ---------------------------------------------------------------- the test

def rq_settle(rt: Runtime, procs: Any, quiescence: Callable[..., None],
              nudge: Callable[[], None] | None = None) -> Callable[[], None]:
    """Settle for RQ: wait until the database, the queues and the live workers are idle."""
    def settle() -> None:
        quiescence(rt.engine, redis=rt.queue.redis, procs=procs, nudge=nudge)
    return settle


def test_lifecycle_inline_and_rq_give_the_same_result(
        fresh_database: Callable[[], str], private_redis: Any, processes: Any,
        quiescence: Callable[..., None], tmp_path: Path) -> None:
    started = time.monotonic()
    inline = make_runtime(fresh_database(), None, tmp_path / "inline")
    try:
        expected = run_scenario(inline, inline_settle(inline))
    finally:
        inline.close()
    inline_seconds = time.monotonic() - started

    database_url = fresh_database()
    rq = make_runtime(database_url, private_redis.url, tmp_path / "rq")
    try:
        procs = processes(database_url, private_redis.url)
        procs.start_workers(2)
        actual = run_scenario(rq, rq_settle(rq, procs, quiescence))
    finally:
        rq.close()
    print(f"inline run {inline_seconds:.1f} s, RQ run "
          f"{time.monotonic() - started - inline_seconds:.1f} s")
    assert len([k for k in expected if k.startswith("work_order:")]) == 100
    assert_same(expected, actual)
