"""Flow benchmark: dispatchflow's pure flow transition function vs SpiffWorkflow (BPMN).

Run::

    python bench/flows_bench.py [--n N] [--repeat R] [--seed S] [--quick]

What it measures (see bench/README.md for how to read the output):

1. ``dispatchflow``: N work orders driven through the reference flow
   (``examples/field-service/flows/work_order.yaml``) by the pure functions
   ``flows.start`` and ``flows.apply``, the record updated with the ``set`` effects of
   every outcome and the armed timers tracked, as the platform does. Each order takes
   work_order.created, .dispatch_requested, .offered, (every 5th order: the
   accept_timeout timer fires with the step it was armed at, then .offered again),
   accept, depart, arrive, start_service, complete (with completion-report values),
   work_order.repair_done, confirm_completion and work_order.feedback_received, and
   ends in ``closed``.
2. ``SpiffWorkflow``: the same N orders through the equivalent BPMN process
   (``bench/work_order.bpmn``): signal catch events for the outside events, READY user
   tasks completed with their data for the actions, and an exclusive gateway on
   ``offer_response`` for accept vs expired offer.

Both sides are checked before any timing counts: every instance must reach its end
state (``closed``; a completed Spiff workflow through the ``closed`` end event), with
the expected data and, for every 5th order, the expired offer taken. Every timed pass
checks again that every instance ended. The time of a pass includes starting the N
instances; only the events are counted (instance starts are not). The best of
``--repeat`` passes counts, for the end-to-end rows too (every pass is printed).

The last line is ``events_per_s=E ratio_vs_spiff=X``: X = dispatchflow events/s divided
by SpiffWorkflow events/s on the same events (target >= 10). E is the end-to-end rate
through the platform with 2 RQ workers (``platform_load.py``: fresh PostgreSQL database,
private Redis, ``--platform-n`` orders through their whole lifecycle; events are outbox
events processed plus actions taken, over the wall time until nothing is left to do).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dispatchflow.dsl.compiler import compile_bundle  # noqa: E402
from dispatchflow.dsl.diagnostics import render_text  # noqa: E402
from dispatchflow.flows import (  # noqa: E402
    ActionTaken,
    CompiledFlow,
    Event,
    EventOccurred,
    InstanceState,
    TimerFired,
    TimerRequest,
    apply,
    compile_flows,
    start,
)
from dispatchflow.rules.effects import SetField  # noqa: E402

REFERENCE_BUNDLE = REPO / "examples" / "field-service"
BPMN_FILE = Path(__file__).resolve().parent / "work_order.bpmn"
BPMN_PROCESS = "work_order"
FLOW = "work_order"
TIMEOUT_TIMER = "accept_timeout"  # the flow's timer on state `offered`
EXPIRE_EVERY = 5  # every 5th order lets its first offer expire
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)  # a Monday morning

# --------------------------------------------------------------------------- workload


class Step(NamedTuple):
    """One event of an order's life, engine-neutral.

    ``kind`` is ``"event"`` (``name`` is the event, e.g. ``work_order.offered``),
    ``"action"`` (``name`` the action, taken by a user with ``roles``, with ``form``
    values or None) or ``"timer"`` (``name`` the flow timer's name; it fires at its
    due time with the step it was armed at).
    """

    kind: str
    name: str
    roles: frozenset[str] = frozenset()
    form: dict[str, Any] | None = None


@dataclass(frozen=True)
class Workload:
    """N orders and, for each, the steps that take it from ``new`` to ``closed``."""

    orders: list[dict[str, Any]]
    steps: list[tuple[Step, ...]]

    @property
    def events(self) -> int:
        """Events over all orders (instance starts not included)."""
        return sum(len(s) for s in self.steps)

    @property
    def expired(self) -> int:
        """Orders whose first offer expires."""
        return sum(any(st.kind == "timer" for st in s) for s in self.steps)


TECHNICIAN = frozenset({"technician"})
RESOLUTIONS = ["换了阀门", "更换密封圈", "replaced the thermostat", "清洗滤网",
               "tightened the fitting"]
TITLES = ["卫生间水管爆裂漏水", "空调不制冷", "热水器打不着火", "Elevator stuck on floor 3",
          "Leak under the kitchen sink", "插座跳闸", "门锁损坏"]


def lifecycle(expire_offer: bool, resolution: str, customer_absent: bool) -> tuple[Step, ...]:
    """The reference flow's path from ``new`` to ``closed`` (through the parallel
    ``in_service`` state, without a spare-parts request)."""
    offer = [Step("event", "work_order.offered")]
    if expire_offer:
        offer = [Step("event", "work_order.offered"), Step("timer", TIMEOUT_TIMER),
                 Step("event", "work_order.offered")]
    return (Step("event", "work_order.created"),
            Step("event", "work_order.dispatch_requested"),
            *offer,
            Step("action", "accept", TECHNICIAN),
            Step("action", "depart", TECHNICIAN),
            Step("action", "arrive", TECHNICIAN),
            Step("action", "start_service", TECHNICIAN),
            Step("action", "complete", TECHNICIAN,
                 {"resolution": resolution, "customer_absent": customer_absent}),
            # in_service is parallel (repair | spare parts): the repair's own event ends
            # the parts branch when no parts were requested, and the join completes
            Step("event", "work_order.repair_done"),
            Step("action", "confirm_completion", frozenset({"customer"})),
            Step("event", "work_order.feedback_received"))


def build_workload(n: int, seed: int) -> Workload:
    """N work orders (seeded), every :data:`EXPIRE_EVERY`-th with an expired first offer."""
    rng = random.Random(seed)
    orders, steps = [], []
    for i in range(n):
        scheduled = None
        if rng.random() < 0.3:
            scheduled = NOW + timedelta(hours=rng.randrange(1, 72))
        orders.append({"title": rng.choice(TITLES),
                       "priority": rng.choice(["P1", "P2", "P3", "P4"]), "status": "new",
                       "assignee": None, "urgent": rng.random() < 0.2,
                       "scheduled_at": scheduled})
        steps.append(lifecycle(i % EXPIRE_EVERY == EXPIRE_EVERY - 1, rng.choice(RESOLUTIONS),
                               rng.random() < 0.1))
    return Workload(orders, steps)


# --------------------------------------------------------------------------- dispatchflow


def load_flow() -> CompiledFlow:
    """The reference bundle's work-order flow, compiled as app version 1."""
    result = compile_bundle(REFERENCE_BUNDLE)
    if result.app is None or not result.ok:
        raise SystemExit(f"{REFERENCE_BUNDLE} does not compile:\n"
                         f"{render_text(result.diagnostics)}")
    flows = compile_flows(result.app, 1)
    if FLOW not in flows:
        raise SystemExit(f"the reference bundle has no flow {FLOW!r} (flows: {sorted(flows)})")
    return flows[FLOW]


DfEvent = EventOccurred | ActionTaken | str  # a str: the id of a timer to fire when due


def dispatchflow_scripts(flow: CompiledFlow, workload: Workload) -> list[tuple[DfEvent, ...]]:
    """The workload's steps as dispatchflow events (built once, outside the timing)."""
    timer_ids = {t.name: t.id for t in flow.timers.values() if t.name}
    if TIMEOUT_TIMER not in timer_ids:
        raise SystemExit(f"flow {FLOW} has no timer named {TIMEOUT_TIMER!r}")
    def convert(step: Step) -> DfEvent:
        if step.kind == "event":
            return EventOccurred(step.name)
        if step.kind == "timer":
            return timer_ids[step.name]
        return ActionTaken(step.name, step.roles, step.form)

    return [tuple(convert(st) for st in steps) for steps in workload.steps]


def run_dispatchflow(flow: CompiledFlow, orders: list[dict[str, Any]],
                     scripts: list[tuple[DfEvent, ...]]
                     ) -> tuple[list[tuple[InstanceState, dict[str, Any]]], int]:
    """Drive every order through its script as the platform would; (final states, transitions).

    The record is updated with each accepted outcome's ``set`` effects; armed timers are
    kept (cancelled ones dropped) so a timer fires at its due time with the step it was
    armed at. A rejected event or an error outcome stops the run.
    """
    results = []
    transitions = 0
    for order, script in zip(orders, scripts, strict=True):
        record = dict(order)
        outcome = start(flow, record, NOW)
        timers: dict[str, TimerRequest] = {}
        at = NOW
        for step in (None, *script):
            event: Event | None = None
            if step is not None:
                if isinstance(step, str):
                    request = timers[step]
                    at = request.fire_at
                    event = TimerFired(step, request.state_step)
                else:
                    event = step
                outcome = apply(flow, outcome.state, event, record, at)
            if not outcome.ok:
                raise SystemExit(f"dispatchflow rejected {event!r} in state "
                                 f"{outcome.state.states}: {outcome.rejected or outcome.error}")
            transitions += len(outcome.taken)
            for effect in outcome.effects:
                if isinstance(effect, SetField):
                    record[effect.field] = effect.value
            for timer_id in outcome.timers_to_cancel:
                del timers[timer_id]
            for request in outcome.timers_to_set:
                timers[request.timer_id] = request
        results.append((outcome.state, record))
    return results, transitions


def check_dispatchflow(workload: Workload,
                       results: list[tuple[InstanceState, dict[str, Any]]]) -> None:
    """Every instance ended in ``closed`` with the record the flow and the forms produce."""
    for i, ((state, record), steps) in enumerate(zip(results, workload.steps, strict=True)):
        form = next(st.form for st in steps if st.form)
        problems = []
        if not state.final or state.states != ("closed",):
            problems.append(f"ended in {state.states} (final={state.final})")
        if state.step != len(steps):
            problems.append(f"step {state.step}, expected {len(steps)} accepted events")
        if record.get("status") != "closed":
            problems.append(f"status {record.get('status')!r}")
        if any(record.get(k) != v for k, v in form.items()):
            problems.append("completion-report values missing from the record")
        if not all(isinstance(record.get(k), datetime) for k in ("accepted_at", "completed_at")):
            problems.append("accepted_at / completed_at not set")
        if not isinstance(record.get("cost_surcharge"), int | float):
            problems.append(f"cost_surcharge {record.get('cost_surcharge')!r}")
        if problems:
            raise SystemExit(f"MISMATCH dispatchflow order {i}: {'; '.join(problems)}")


# --------------------------------------------------------------------------- SpiffWorkflow

SpiffStep = tuple[Any, str | None, dict[str, Any] | None]  # (signal, user task, task data)


@dataclass(frozen=True)
class Spiff:
    """The SpiffWorkflow pieces the benchmark uses (imported when the run starts)."""

    version: str
    spec: Any
    workflow: Callable[[Any], Any]
    event: Callable[[Any], Any]
    signal: Callable[[str], Any]
    ready: int
    completed: int


def load_spiff() -> Spiff:
    """Parse :data:`BPMN_FILE` once; SystemExit with an install hint without SpiffWorkflow."""
    try:
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.specs.event_definitions import SignalEventDefinition
        from SpiffWorkflow.bpmn.util import BpmnEvent
        from SpiffWorkflow.util.task import TaskState
    except ImportError as exc:
        raise SystemExit(f"SpiffWorkflow is not installed ({exc}): "
                         "pip install -e '.[test]' (or pip install 'SpiffWorkflow>=3.0,<4')"
                         ) from exc
    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN_FILE))
    return Spiff(metadata.version("SpiffWorkflow"), parser.get_spec(BPMN_PROCESS),
                 BpmnWorkflow, BpmnEvent, SignalEventDefinition, TaskState.READY,
                 TaskState.COMPLETED)


def spiff_scripts(spiff: Spiff, workload: Workload) -> list[tuple[SpiffStep, ...]]:
    """The workload's steps as (signal definition, user task, data) (built outside the timing).

    An action is the READY user task of the same name, completed with its form values;
    accept and the accept timer both answer the user task ``offer``, with
    ``offer_response`` "accept" or "expired" (the BPMN's exclusive gateway reads it).
    """
    signals: dict[str, Any] = {}

    def convert(step: Step) -> SpiffStep:
        if step.kind == "event":
            return signals.setdefault(step.name, spiff.signal(step.name)), None, None
        if step.kind == "timer":
            return None, "offer", {"offer_response": "expired"}
        if step.name == "accept":
            return None, "offer", {"offer_response": "accept"}
        return None, step.name, step.form

    return [tuple(convert(st) for st in steps) for steps in workload.steps]


def run_spiff(spiff: Spiff, orders: list[dict[str, Any]], scripts: list[tuple[SpiffStep, ...]],
              keep: bool = False) -> list[Any]:
    """Drive every order through its script: one BpmnWorkflow per order.

    Returns each workflow when ``keep`` (for the checks), else whether it completed.
    A signal nobody waits for or a user task that is not READY stops the run.
    """
    spec, new, event, ready = spiff.spec, spiff.workflow, spiff.event, spiff.ready
    results: list[Any] = []
    for order, script in zip(orders, scripts, strict=True):
        wf = new(spec)
        wf.get_next_task(state=ready).set_data(**order)
        wf.do_engine_steps()
        for signal, task_name, data in script:
            if signal is not None:
                wf.send_event(event(signal))  # WorkflowException if nothing waits for it
            else:
                task = wf.get_next_task(state=ready, spec_name=task_name)
                if task is None:
                    raise SystemExit(f"SpiffWorkflow: user task {task_name!r} is not READY")
                if data:
                    task.set_data(**data)
                task.run()
            wf.do_engine_steps()
        results.append(wf if keep else wf.is_completed())
    return results


def check_spiff(spiff: Spiff, workload: Workload, workflows: list[Any]) -> None:
    """Every workflow completed through the ``closed`` end event with the expected data."""
    for i, (wf, steps) in enumerate(zip(workflows, workload.steps, strict=True)):
        done = [t.task_spec.name for t in wf.get_tasks(state=spiff.completed)]
        form = next(st.form for st in steps if st.form)
        offers = 1 + sum(st.kind == "timer" for st in steps)
        problems = []
        if not wf.is_completed() or "closed" not in done:
            problems.append("did not complete through the end event 'closed'")
        if done.count("offer") != offers:
            problems.append(f"offer answered {done.count('offer')} times, expected {offers}")
        if wf.data.get("offer_response") != "accept" or \
                any(wf.data.get(k) != v for k, v in form.items()):
            problems.append(f"unexpected data {wf.data!r}")
        if problems:
            raise SystemExit(f"MISMATCH SpiffWorkflow order {i}: {'; '.join(problems)}")


# --------------------------------------------------------------------------- end to end
#
# Events/s through the whole platform (bench/platform_load.py), inline and on RQ workers
# with PostgreSQL and Redis. Each measurement returns events/s; the last row that returns
# a rate becomes `events_per_s` on the last line (the headline: 2 RQ workers).

EndToEnd = Callable[[Workload, argparse.Namespace], float | None]


def platform_inline(workload: Workload, args: argparse.Namespace) -> float | None:
    """Events/s through the whole platform, jobs inline, on a fresh PostgreSQL database."""
    import platform_load

    return _best_pass("platform inline", args.repeat,
                      lambda: platform_load.measure(args.platform_n))


def platform_rq(workload: Workload, args: argparse.Namespace) -> float | None:
    """Events/s with 2 RQ worker processes over a private Redis, on fresh PostgreSQL."""
    import platform_load

    def one_pass() -> Any:
        with platform_load.private_redis() as url:
            return platform_load.measure(args.platform_n, redis_url=url,
                                         worker_count=args.workers)

    return _best_pass(f"platform on RQ, {args.workers} workers", args.repeat, one_pass)


def _best_pass(label: str, repeat: int, measure: Callable[[], Any]) -> float:
    """The best rate of ``repeat`` end-to-end passes (each on a fresh database), every
    pass printed: like the pure passes, the best one counts (this VM's noise only ever
    slows a pass down)."""
    rates = []
    for _ in range(repeat):
        result = measure()
        rates.append(result.rate)
        print(f"{label}: {result.orders} orders, {result.events} events + "
              f"{result.actions} actions in {result.seconds:.1f} s = {result.rate:.0f} "
              "events/s")
    return max(rates)


#: (label, measurement) rows run after the pure part, in order.
END_TO_END: list[tuple[str, EndToEnd]] = [
    ("platform end to end, inline (PostgreSQL)", platform_inline),
    ("platform end to end, 2 RQ workers (PostgreSQL, Redis)", platform_rq),
]


# --------------------------------------------------------------------------- timing


def best_of(repeat: int, runs: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Per name: (best wall time in seconds, result of the last pass) over ``repeat`` rounds.

    The passes are interleaved (one of each per round), so a load spike on a shared
    machine hits both sides rather than skewing their ratio.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, Any] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            gc.collect()
            t0 = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - t0)
    return {name: (min(times[name]), results[name]) for name in runs}


def main() -> None:
    started = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="work orders per pass (default 2000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes; the best counts")
    ap.add_argument("--seed", type=int, default=20260302)
    ap.add_argument("--platform-n", type=int, default=200,
                    help="work orders driven through the platform (default 200)")
    ap.add_argument("--workers", type=int, default=2, help="RQ workers (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 200 orders, one timed pass")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeat, args.platform_n = 200, 1, 30
    n, repeat = args.n, args.repeat

    t0 = time.perf_counter()
    flow = load_flow()
    t_flow = time.perf_counter() - t0
    t0 = time.perf_counter()
    spiff = load_spiff()
    t_spiff = time.perf_counter() - t0
    workload = build_workload(n, args.seed)
    events = workload.events
    print(f"python {sys.version.split()[0]}, SpiffWorkflow {spiff.version}, {os.cpu_count()} "
          f"CPUs, N={n} work orders ({workload.expired} with an expired offer), {events} "
          f"events, best of {repeat}")
    print(f"flow: {FLOW} ({REFERENCE_BUNDLE.relative_to(REPO)}/{flow.file}, "
          f"{len(flow.states)} states; bundle compiled in {t_flow * 1000:.0f} ms); "
          f"BPMN: process {BPMN_PROCESS} ({BPMN_FILE.relative_to(REPO)}, "
          f"{len(spiff.spec.task_specs)} task specs; parsed in {t_spiff * 1000:.0f} ms)")

    df_scripts = dispatchflow_scripts(flow, workload)
    sp_scripts = spiff_scripts(spiff, workload)

    # ---- equivalence (before any timing)
    df_results, transitions = run_dispatchflow(flow, workload.orders, df_scripts)
    check_dispatchflow(workload, df_results)
    check_spiff(spiff, workload, run_spiff(spiff, workload.orders, sp_scripts, keep=True))
    print(f"equivalence: all {n} instances reach 'closed' on both sides, with the completion "
          f"report in the data and the expired offers taken ({transitions} dispatchflow "
          "transitions): OK")

    # ---- timings
    timed = best_of(repeat, {
        "dispatchflow": lambda: run_dispatchflow(flow, workload.orders, df_scripts),
        "spiff": lambda: run_spiff(spiff, workload.orders, sp_scripts)})
    t_df, df_last = timed["dispatchflow"]
    t_sp, sp_last = timed["spiff"]
    assert all(state.final for state, _ in df_last[0]), "a dispatchflow instance did not end"
    assert all(sp_last), "a SpiffWorkflow instance did not complete"
    df_rate, sp_rate = events / t_df, events / t_sp
    x = df_rate / sp_rate

    rows: list[tuple[str, float | None, float | None, str]] = [
        ("dispatchflow flows.start + flows.apply (pure)", df_rate, n / t_df,
         f"{x:.1f}x SpiffWorkflow"),
        (f"SpiffWorkflow {spiff.version} BpmnWorkflow (signals + user tasks)", sp_rate,
         n / t_sp, "1.00x")]
    headline: float | None = None
    for label, measure in END_TO_END:
        rate = measure(workload, args)
        if rate is None:
            rows.append((label, None, None, "NA"))
            continue
        headline = rate
        rows.append((label, rate, n * rate / events, f"{rate / df_rate:.3f}x pure dispatchflow"))

    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'engine':<{width}} {'events/s':>10} {'orders/s':>9} {'us/event':>9}  ratio")
    for label, rate, per_order, note in rows:
        if rate is None:
            print(f"{label:<{width}} {'NA':>10} {'NA':>9} {'NA':>9}  {note}")
        else:
            print(f"{label:<{width}} {rate:>10,.0f} {per_order:>9,.0f} {1e6 / rate:>9.1f}  {note}")
    print(f"dispatchflow transitions/s: {transitions / t_df:,.0f} ({transitions} transitions "
          f"for {events} events)")
    print()
    print(f"X = dispatchflow events/s / SpiffWorkflow events/s = {x:.1f} (target >= 10)")
    print(f"run time {time.perf_counter() - started:.1f} s")
    e = "NA" if headline is None else f"{headline:.0f}"
    print(f"events_per_s={e} ratio_vs_spiff={x:.2f}")


if __name__ == "__main__":
    main()
