"""Manual override: a dispatcher assigns or reassigns a record by hand, with a reason.

:func:`assign_by_hand` needs the ``assign`` permission on the record (default
deny) and a non-empty reason. In one transaction under the record's lock:

1. when the caller says which ``row_version`` it saw, a record changed since is a
   conflict;
2. the candidate is checked against the hard filters (``require``) of the
   record's dispatch policy (that of its latest dispatch round, else the
   entity's only policy): one that fails any is refused with the failing
   filters by label, unless the request says ``override`` (the reason is then
   the reason for overriding);
3. the assignment is the flow's ``assign`` action
   (:data:`~.dispatching.ASSIGN_ACTION`), a transition the bundle declares in
   every state where assigning by hand is allowed (typically to the state an
   accepted offer leads to, so the assignee can go on at once). A record with a
   flow whose current state has no such transition is refused (conflict, with
   the states that have one); a record without flows is only assigned;
4. pending offers are withdrawn and open dispatch rounds end, the open task
   moves from the previous assignee (if any) to the new one, and a ``reassign``
   timeline entry keeps who, whom, from whom, why, and any overridden filters.

A change of an existing assignee counts as a transfer in reports. Nothing is
written when any step refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ...errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from ...forms.validation import FieldError
from ...rules.dispatch import failed_filters
from ..records.actors import Actor
from ..runtime import instance_rows, instances
from ..runtime.runner import check_version
from ..runtime.step import Step
from ..store.db import dispatch_rounds, timeline
from .access import check_action, standing_of
from .rounds import ASSIGN_ACTION, assignee_field, before_action, update_profile

if TYPE_CHECKING:
    from ..assembly import Runtime

#: Timeline kind of a manual assignment (reports count transfers by it).
REASSIGN = "reassign"


def assign_by_hand(rt: Runtime, actor: Actor, entity: str, record_id: int, candidate: int,
                   reason: str, *, override: bool = False, locale: str | None = None,
                   expected_version: int | None = None) -> dict[str, Any]:
    """Assign ``candidate`` to the record (see module docs); returns what was done.

    ``locale`` is the language of the filter labels in a refusal (default: the
    app's); ``expected_version`` the ``row_version`` the caller saw (None: any).
    Who may assign is decided like any action (:func:`~.action_access.check_action`
    for ``assign``). Raises PermissionDenied (no ``assign`` permission, or the
    role's row rules exclude the record), NotFoundError (record not visible, or
    no such candidate), ValidationError (no reason; the record
    has no reference to the dispatch pool), ConflictError (the record changed
    since ``expected_version``; the candidate fails hard filters and there is no
    ``override``, with one error per failing filter; the flow does not allow
    assigning in the record's state, or refuses).
    """
    rt.authz.require(actor, entity, ASSIGN_ACTION)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("a reason is required", errors=[FieldError(
            "reason", "required", "say why you assign by hand (it is kept on the record)")])
    with rt.engine.begin() as conn:
        step = Step.open(rt, conn, entity, record_id, rt.clock())
        if step is None or step.stored.get("deleted_at") is not None:
            raise NotFoundError(f"no {entity} {record_id}")
        check_action(step, actor, ASSIGN_ACTION, standing_of(step, actor))
        check_version(step, expected_version)
        field = assignee_field(step)
        if field is None:
            raise ValidationError(f"{entity} has no reference to a dispatch pool")
        pool = rt.app.entities[entity].fields[field].reference
        assert pool is not None
        row = step.facts.row(pool, candidate)
        if row is None or row.get("deleted_at") is not None:
            raise NotFoundError(f"no {pool} {candidate}")
        chosen = step.facts.expand(pool, row, 1)
        policy, failed = _failed_filters(step, chosen, locale or rt.app.default_locale)
        if failed and not override:
            raise ConflictError(
                f"{pool} {candidate} fails the hard filters of policy {policy}: "
                + "; ".join(failed), errors=[FieldError("candidate", "filter", text)
                                             for text in failed],
                hint='choose another candidate, or send "override": true with the reason')
        previous = step.stored.get(field)
        step.set_field(field, candidate, f"assigned by {actor.user_id}")
        step.record[field] = chosen
        flow_moved = _take_assign(step, actor)
        if previous != candidate:
            if previous is not None:
                update_profile(step, int(previous), open_tasks=-1)
            update_profile(step, candidate, open_tasks=1)
        transfer = previous is not None and previous != candidate
        step.note(REASSIGN, f"{actor.user_id}: assigned {pool} {candidate} by hand"
                  + (f" (was {previous})" if transfer else "")
                  + (f", overriding {'; '.join(failed)}" if failed else "") + f": {reason}",
                  {"actor": actor.user_id, "candidate": candidate, "previous": previous,
                   "reason": reason, "transfer": transfer, "policy": policy,
                   "override": bool(failed), "failed_filters": failed})
        step.flush()
        jobs = step.jobs
    rt.queue.enqueue_many(jobs)
    return {"assignee": candidate, "previous": previous, "transfer": transfer,
            "states": flow_moved, "overridden": failed}


def assignments_of(rt: Runtime, actor: Actor, entity: str, record_id: int
                   ) -> list[dict[str, Any]]:
    """The record's manual assignments, oldest first (who, whom, why, overridden filters),
    for the dispatch history; NotFoundError unless the actor may read the record."""
    rt.records.get(actor, entity, record_id)
    with rt.engine.connect() as conn:
        rows = conn.execute(select(timeline.c.at, timeline.c.detail)
                            .where(timeline.c.entity == entity)
                            .where(timeline.c.record_id == record_id)
                            .where(timeline.c.kind == REASSIGN)
                            .order_by(timeline.c.id)).all()
    return [{"at": at.isoformat() if at is not None else None,
             **{k: (detail or {}).get(k) for k in (
                 "actor", "candidate", "previous", "reason", "transfer", "policy")},
             "override": bool((detail or {}).get("override")),
             "failed_filters": list((detail or {}).get("failed_filters") or [])}
            for at, detail in rows]


def _failed_filters(step: Step, candidate: dict[str, Any], locale: str
                    ) -> tuple[str | None, list[str]]:
    """The record's dispatch policy and the hard filters ``candidate`` fails under it."""
    name = step.conn.execute(select(dispatch_rounds.c.policy)
                             .where(dispatch_rounds.c.entity == step.entity)
                             .where(dispatch_rounds.c.record_id == step.record_id)
                             .order_by(dispatch_rounds.c.id.desc()).limit(1)).scalar()
    if name is None or name not in step.rt.app.policies:
        names = [p.name for p in step.rt.app.policies.values() if p.entity == step.entity]
        name = names[0] if len(names) == 1 else None
    if name is None:
        return None, []
    policy = step.rt.rules.policy(name)
    return name, failed_filters(policy, step.record, candidate, step.now, locale)


def _take_assign(step: Step, actor: Actor) -> list[str] | None:
    """Take the flow's ``assign`` action (module docs, step 3); the states it leads to
    (None for a record without flows). The record's dispatch is closed either way."""
    before_action(step, actor, ASSIGN_ACTION)
    if not instance_rows.instances_of(step):
        return None
    roles = frozenset(actor.roles)
    if instances.action_option(step, None, ASSIGN_ACTION, roles) is None:
        allowed = sorted({t.source or "*" for inst in instance_rows.instances_of(step)
                          for t in instance_rows.compiled(step, inst).transitions()
                          if t.action == ASSIGN_ACTION and t.roles & roles})
        states = ", ".join(s for inst in instance_rows.instances_of(step)
                           for s in inst.state.states)
        if not allowed:
            raise PermissionDenied(f"the flow of this {step.entity} lets none of your roles "
                                   f"assign by hand")
        raise ConflictError(f"this {step.entity} cannot be assigned by hand in state "
                            f"{states}; the flow allows it in: {', '.join(allowed)}",
                            hint="reload the record: its state may have changed")
    outcome = instances.take_action(step, None, ASSIGN_ACTION, roles, None)
    if not outcome.ok:
        raise ConflictError(outcome.rejected or outcome.error or "the flow refused to assign",
                            hint="reload the record: its state may have changed")
    return list(outcome.state.states)
