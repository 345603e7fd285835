"""SLA clocks at run time: computed from an instance's history, alerted through timers.

After every step of a flow instance, :func:`update_clocks` replays each clock
of the flow from the instance's history (the pure :func:`~dispatchflow.flows.sla.compute_clock`
with the clock's business calendar) and arms two timers per running clock: one
at the warning instant (``warn_at`` of the target) and one at the deadline. A
priority change that changes the target moves them; a pause or a stop cancels
them. When such a timer fires, :func:`fire_clock_timer` replays the clock at the
timer's instant and, if the warning or the breach really happened and was not
raised before, emits ``<entity>.sla_warning`` or ``<entity>.sla_breached`` with
the clock's name; each is raised at most once per clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ...flows import CompiledFlow
from ...flows.sla import (
    ClockState,
    HistoryEntry,
    clock_calendar,
    clock_events_from_history,
    compute_clock,
)
from ..store.db import flow_instances

if TYPE_CHECKING:
    from .step import Step

#: Events the platform emits for SLA clocks (bare names: events of the clock's entity).
WARNING_EVENT = "sla_warning"
BREACH_EVENT = "sla_breached"


def clock_states(step: Step, flow: CompiledFlow, history: list[dict[str, Any]],
                 now: datetime) -> dict[str, ClockState]:
    """Every SLA clock of ``flow`` as of ``now``, from an instance's ``history``."""
    if not flow.sla_clocks:
        return {}
    calendars = step.rt.flows_of(flow.version).calendars
    parsed = [(datetime.fromisoformat(item["at"]), item.get("event"),
               list(item.get("entered") or []), item.get("targets") or {})
              for item in history]
    out = {}
    for name, clock in flow.sla_clocks.items():
        entries = []
        for at, event, entered, targets in parsed:
            seconds = targets.get(name)
            target = None if seconds is None else timedelta(seconds=seconds)
            entries.append(HistoryEntry(at, event, entered[0] if entered else None, target))
            entries.extend(HistoryEntry(at, None, s) for s in entered[1:])
        events = clock_events_from_history(clock.definition, entries)
        calendar = clock_calendar(clock.definition, calendars, step.rt.tz)
        out[name] = compute_clock(clock.definition, events, calendar, now)
    return out


def update_clocks(step: Step, instance_id: int, version: int, flow: CompiledFlow,
                  history: list[dict[str, Any]], raised: Mapping[str, list[str]]
                  ) -> dict[str, ClockState]:
    """Re-arm the warning and deadline timers of every clock (see module docs); returns
    the clocks' states now (escalation ladders follow them)."""
    if not flow.sla_clocks:
        return {}
    wanted: dict[str, tuple[datetime, dict[str, Any]]] = {}
    states = clock_states(step, flow, history, step.now)
    for name, state in states.items():
        if state.status != "running":
            continue
        done = raised.get(name, [])
        for alert, at in (("warn", state.warn_at), ("breach", state.deadline)):
            if at is not None and alert not in done:
                wanted[f"{instance_id}:{name}:{alert}"] = (
                    max(at, step.now), {"instance": instance_id, "clock": name, "alert": alert})
    step.timers.arm("sla", wanted, step.now, version_number=version, prefix=f"{instance_id}:")
    return states


def fire_clock_timer(step: Step, payload: Mapping[str, Any]) -> None:
    """An SLA timer came due: raise the warning or breach if it really happened."""
    from .instance_rows import compiled, instances_of, save

    for inst in instances_of(step):
        if inst.id != payload.get("instance"):
            continue
        flow = compiled(step, inst)
        name, alert = str(payload["clock"]), str(payload["alert"])
        if name not in flow.sla_clocks or alert in inst.sla.get(name, []):
            return
        state = clock_states(step, flow, inst.history, step.now)[name]
        due = state.warn_at if alert == "warn" else state.breached_at
        if state.status not in ("running", "breached") or due is None or due > step.now:
            update_clocks(step, inst.id, inst.version, flow, inst.history, inst.sla)
            return
        inst.sla = {**inst.sla, name: [*inst.sla.get(name, []), alert]}
        save(step, inst)
        event = WARNING_EVENT if alert == "warn" else BREACH_EVENT
        detail = {"clock": name, "deadline": state.deadline, "elapsed": state.elapsed_working,
                  "target": state.target}
        step.note("sla", f"SLA clock {name}: {'warning' if alert == 'warn' else 'breached'}",
                  detail)
        step.emit(event, f"SLA clock {name}", {"clock": name})
        return


def clocks_for_record(step: Step) -> dict[str, dict[str, Any]]:
    """Every SLA clock of the record's instances now, as JSON-ready dicts (board, API)."""
    from .instance_rows import compiled

    rows = step.conn.execute(select(flow_instances).where(
        flow_instances.c.entity == step.entity).where(
        flow_instances.c.record_id == step.record_id)).mappings().all()
    out: dict[str, dict[str, Any]] = {}
    from ...flows import InstanceState
    from .instance_rows import Instance

    for r in rows:
        inst = Instance(r["id"], r["flow"], r["version_number"],
                        InstanceState.from_dict(r["state"]), list(r["history"] or []),
                        dict(r["sla"] or {}))
        flow = compiled(step, inst)
        for name, state in clock_states(step, flow, inst.history, step.now).items():
            out[name] = {"status": state.status, "deadline": state.deadline,
                         "warn_at": state.warn_at, "elapsed": state.elapsed_working,
                         "target": state.target, "breached_at": state.breached_at}
    return out
