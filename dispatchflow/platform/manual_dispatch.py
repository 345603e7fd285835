"""Manual override: a dispatcher assigns or reassigns a record by hand, with a reason.

:func:`assign_by_hand` needs the ``assign`` permission on the record (default
deny) and a non-empty reason. In one transaction under the record's lock it
withdraws pending offers, moves the open task from the previous assignee (if
any) to the new one, sets the assignee, takes the flow's ``assign`` action
when the flow offers it now (e.g. from ``triaged``, ``dispatching`` or
``exception``), and writes a ``reassign`` timeline entry with who, whom, from
whom and why. A change of an existing assignee counts as a transfer in reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..errors import NotFoundError, ValidationError
from ..forms.validation import FieldError
from . import instances
from .actors import Actor
from .dispatching import assignee_field, update_profile, withdraw_pending
from .step import Step

if TYPE_CHECKING:
    from .runtime import Runtime

#: Timeline kind of a manual assignment (reports count transfers by it).
REASSIGN = "reassign"


def assign_by_hand(rt: Runtime, actor: Actor, entity: str, record_id: int, candidate: int,
                   reason: str) -> dict[str, Any]:
    """Assign ``candidate`` to the record (see module docs); returns what was done.

    Raises PermissionDenied (no ``assign`` permission), NotFoundError (record
    not visible, or no such candidate), ValidationError (no reason; the record
    has no reference to the dispatch pool), ConflictError (the flow refuses).
    """
    rt.authz.require(actor, entity, "assign")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("a reason is required", errors=[FieldError(
            "reason", "required", "say why you assign by hand (it is kept on the record)")])
    rt.records.get(actor, entity, record_id)  # visible to the actor, or NotFoundError
    jobs: list[Any] = []
    with rt.engine.begin() as conn:
        step = Step.open(rt, conn, entity, record_id, rt.clock())
        if step is None:
            raise NotFoundError(f"no {entity} {record_id}")
        field = assignee_field(step)
        if field is None:
            raise ValidationError(f"{entity} has no reference to a dispatch pool")
        pool = rt.app.entities[entity].fields[field].reference
        assert pool is not None
        table = rt.tables[pool]
        exists = conn.execute(select(table.c.id).where(table.c.id == candidate)
                              .where(table.c.deleted_at.is_(None))).first()
        if exists is None:
            raise NotFoundError(f"no {pool} {candidate}")
        previous = step.stored.get(field)
        withdraw_pending(step, f"assigned by hand by {actor.user_id}")
        step.set_field(field, candidate, f"assigned by {actor.user_id}")
        step.record[field] = step.facts.expand(pool, step.facts.row(pool, candidate) or {}, 1)
        if previous != candidate:
            if previous is not None:
                update_profile(step, int(previous), open_tasks=-1)
            update_profile(step, candidate, open_tasks=1)
        flow_moved = None
        if any(o["action"] == "assign" for o in _options(step, actor)):
            outcome = instances.take_action(step, None, "assign", frozenset(actor.roles), None)
            flow_moved = list(outcome.state.states) if outcome.ok else None
        transfer = previous is not None and previous != candidate
        step.note(REASSIGN, f"{actor.user_id}: assigned {pool} {candidate} by hand"
                  + (f" (was {previous})" if transfer else "") + f": {reason}",
                  {"actor": actor.user_id, "candidate": candidate, "previous": previous,
                   "reason": reason, "transfer": transfer})
        step.flush()
        jobs = step.jobs
    rt.queue.enqueue_many(jobs)
    return {"assignee": candidate, "previous": previous, "transfer": transfer,
            "states": flow_moved}


def _options(step: Step, actor: Actor) -> list[dict[str, Any]]:
    from ..flows import actions_available

    out = []
    for inst in instances.instances_of(step):
        for option in actions_available(instances.compiled(step, inst), inst.state,
                                        frozenset(actor.roles), step.record, step.now):
            out.append({"action": option.action})
    return out
