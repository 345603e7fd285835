"""Fixtures of the flow tests: the reference flow, small flows, and a driver.

:class:`Driver` plays the shell's part in a test: it keeps an instance's state
and record, applies the ``set`` effects of every accepted outcome to the record
(as the platform would) and remembers the armed timers, so a test reads as a
sequence of events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.dsl.diagnostics import render_text
from dispatchflow.flows import (
    ActionTaken,
    CompiledFlow,
    Event,
    EventOccurred,
    InstanceState,
    Outcome,
    TimerFired,
    TimerRequest,
    apply,
    compile_flow,
    start,
)
from dispatchflow.rules import effects as fx

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"

#: A flow with parallel regions and a join: repair and spare-part requisition side by side.
PARALLEL = """\
flow: repair
entity: work_order
initial: open
states:
  open:
    transitions:
      - {on: work_order.started, to: repair_and_parts}
      - {on: work_order.parts_preordered, to: waiting_parts}
  repair_and_parts:
    on_enter: [{tag: in_parallel}]
    on_exit: [{untag: in_parallel}]
    regions:
      repair:
        initial: diagnosing
        states:
          diagnosing:
            on_exit: [{emit: diagnosed}]
            transitions:
              - {action: diagnose, roles: [dispatcher], to: working}
              - {on: work_order.fast_track, to: working}
              - {on: work_order.abort, to: open}
          working:
            timers:
              - {name: nudge, after: 2h, emit: work_order.repair_slow}
            transitions:
              - {on: work_order.repaired, to: repaired}
          repaired:
            final: true
            on_enter: [{tag: repaired}]
      parts:
        initial: requesting
        states:
          requesting:
            transitions:
              - {on: work_order.parts_approved, to: waiting_parts}
              - {on: work_order.fast_track, to: waiting_parts}
              - {on: work_order.parts_refused, to: no_parts}
              - {on: work_order.abort, to: no_parts}
          waiting_parts:
            transitions:
              - {on: work_order.parts_arrived, to: parts_done}
          parts_done: {final: true}
          no_parts: {final: true}
    join: acceptance
    transitions:
      - {on: work_order.customer_gone, to: open}
  acceptance:
    transitions:
      - {action: accept, roles: [supervisor], to: done}
  done: {final: true}
  cancelled: {final: true}
global_transitions:
  - {action: cancel, roles: [dispatcher], to: cancelled}
"""


@pytest.fixture(scope="session")
def reference_app() -> App:
    result = compile_bundle(REFERENCE)
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


@pytest.fixture(scope="session")
def work_order_flow(reference_app: App) -> CompiledFlow:
    """The reference work-order flow, compiled as app version 1."""
    return compile_flow(reference_app, "work_order", version=1)


@pytest.fixture
def make_flow(compile_ok: Callable[..., App]) -> Callable[..., CompiledFlow]:
    """``make_flow(yaml, extra_files=None)``: the flow in ``yaml``, compiled in the base bundle."""
    def make(text: str, extra: dict[str, str] | None = None) -> CompiledFlow:
        app = compile_ok({"flows/under_test.yaml": text, **(extra or {})})
        name = next(n for n, item in app.flows.items() if item.file == "flows/under_test.yaml")
        return compile_flow(app, name, version=1)
    return make


@pytest.fixture
def repair_flow(make_flow: Callable[..., CompiledFlow]) -> CompiledFlow:
    """:data:`PARALLEL` compiled in the base bundle."""
    return make_flow(PARALLEL)


@pytest.fixture
def shell() -> Callable[[dict[str, Any], list[fx.Effect]], dict[str, Any]]:
    """:func:`record_after`, for tests that drive outcomes by hand."""
    return record_after


def record_after(record: dict[str, Any], effects: list[fx.Effect]) -> dict[str, Any]:
    """``record`` with the ``set`` effects applied (what the shell stores)."""
    out = dict(record)
    for effect in effects:
        if isinstance(effect, fx.SetField):
            out[effect.field] = effect.value
    return out


@dataclass
class Driver:
    """One instance moved through a flow the way the platform would move it."""

    flow: CompiledFlow
    record: dict[str, Any]
    now: datetime
    state: InstanceState | None = None
    timers: dict[str, TimerRequest] = field(default_factory=dict)
    history: list[Outcome] = field(default_factory=list)

    def start(self) -> Outcome:
        return self._keep(start(self.flow, self.record, self.now))

    def send(self, event: Event | str) -> Outcome:
        if isinstance(event, str):
            event = EventOccurred(event)
        assert self.state is not None, "start the instance first"
        return self._keep(apply(self.flow, self.state, event, self.record, self.now))

    def act(self, action: str, *roles: str, **form_values: Any) -> Outcome:
        return self.send(ActionTaken(action, frozenset(roles), form_values or None))

    def fire(self, timer_id: str) -> Outcome:
        """Fire an armed timer at its due time (moving ``now`` there)."""
        request = self.timers[timer_id]
        self.now = request.fire_at
        return self.send(TimerFired(timer_id, request.state_step))

    @property
    def states(self) -> tuple[str, ...]:
        assert self.state is not None
        return self.state.states

    def _keep(self, outcome: Outcome) -> Outcome:
        self.history.append(outcome)
        if outcome.ok:
            self.state = outcome.state
            self.record = record_after(self.record, outcome.effects)
            for timer_id in outcome.timers_to_cancel:
                assert self.timers.pop(timer_id, None) is not None, timer_id
            for request in outcome.timers_to_set:
                self.timers[request.timer_id] = request
            armed = dict(outcome.state.timers)
            # a timer that fired is neither cancelled nor armed any more
            self.timers = {k: v for k, v in self.timers.items() if k in armed}
            assert {k: v.state_step for k, v in self.timers.items()} == armed
        return outcome


@pytest.fixture
def drive(now: datetime) -> Callable[..., Driver]:
    """``drive(flow, record=None, at=now)``: a started :class:`Driver`."""
    def make(flow: CompiledFlow, record: dict[str, Any] | None = None,
             at: datetime | None = None) -> Driver:
        driver = Driver(flow, dict(record or {}), at or now)
        outcome = driver.start()
        assert outcome.ok, outcome
        return driver
    return make
