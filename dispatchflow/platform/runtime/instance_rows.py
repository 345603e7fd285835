"""Stored flow instances of a record: loaded once per transaction, saved back.

The rows of ``df_flow_instances`` as :class:`Instance` objects kept in the
step's memo (:func:`instances_of`, :func:`preload`), the compiled flow each one
runs on (:func:`compiled`, its own version's) and :func:`save`. Advancing them —
starting flows, feeding events, actions and timers — is :mod:`.instances`; SLA
clocks and escalation ladders read and save them through here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...flows import CompiledFlow, InstanceState
from ..store.statements import INSTANCES_OF_MANY, UPDATE_INSTANCE
from .facts import FactLoader
from .step import Step
from .timers import RecordTimers


@dataclass
class Instance:
    """A loaded instance row (see module docs)."""

    id: int
    flow: str
    version: int
    state: InstanceState
    history: list[dict[str, Any]]
    sla: dict[str, list[str]]


def instances_of(step: Step, flow: str | None = None) -> list[Instance]:
    """The record's flow instances (of ``flow`` when given), oldest first.

    Read once per transaction: the same objects are handed out again, and every
    change goes through them (the transaction holds the record's lock).
    """
    key = ("instances", step.entity, step.record_id)
    if key not in step.facts.memo:
        _load(step.facts, step.entity, [step.record_id])
    loaded: list[Instance] = step.facts.memo[key]
    return [i for i in loaded if flow is None or i.flow == flow]


def preload(facts: FactLoader, entity: str, record_ids: list[int]) -> None:
    """Read the flow instances and pending timers of several locked records in two
    queries, for :func:`instances_of` and ``Step.timers`` in this transaction."""
    _load(facts, entity, record_ids)
    for record_id, timers in RecordTimers.load_many(facts.conn, entity, record_ids).items():
        facts.memo[("timers", entity, record_id)] = timers


def _load(facts: FactLoader, entity: str, record_ids: list[int]) -> None:
    """Read the flow instances of locked records into the transaction's memo."""
    loaded: dict[int, list[Instance]] = {int(i): [] for i in record_ids}
    for r in facts.conn.execute(INSTANCES_OF_MANY, {"entity": entity, "ids": list(loaded)}
                                ).mappings():
        loaded[int(r["record_id"])].append(_instance(r))
    for record_id, found in loaded.items():
        facts.memo[("instances", entity, record_id)] = found


def _instance(r: Any) -> Instance:
    return Instance(r["id"], r["flow"], r["version_number"], InstanceState.from_dict(r["state"]),
                    list(r["history"] or []), dict(r["sla"] or {}))


def compiled(step: Step, inst: Instance) -> CompiledFlow:
    """The flow an instance runs on: its own version's."""
    return step.rt.flows_of(inst.version).flows[inst.flow]


def save(step: Step, inst: Instance) -> None:
    """Store an instance's state, history and SLA bookkeeping (at the end of the
    transaction when the step defers its writes)."""
    row = {"where_id": inst.id, "state": inst.state.to_dict(), "history": inst.history,
           "sla": inst.sla, "ended": inst.state.final, "updated_at": step.utc}
    if step.deferred is not None:
        step.deferred.instances[inst.id] = row
    else:
        step.conn.execute(UPDATE_INSTANCE, row)
