"""Who may take a flow action on a record now: the one authorization decision for actions.

:func:`check_action` is used by :func:`~.runner.take_action` (before anything is
written) and, through :func:`may_take`, by
:func:`~.explain.available_actions`, so the list of buttons and the attempt
always agree. The decision, for ``actor``, ``action`` and the record as stored
*now*:

1. a role of the actor must allow the action on the entity (``allow``), else
   PermissionDenied;
2. an *offer action* (:data:`~.dispatching.OFFER_ACTIONS`: ``accept``,
   ``reject``) on a record the dispatch engine has offered is allowed only to a
   holder of a *pending* offer of it. Someone whose offer ended (expired,
   rejected, withdrawn, lost to another claim) gets a conflict ("no longer
   offered to you"), someone never offered it "not found" unless the row rules
   of the action let them act on it anyway (then the conflict);
3. every other action (and an offer action on a record never offered) needs
   the row rules of the roles that allow the action to let the actor act on
   the record now; a pending or past offer grants nothing here. An actor who
   can read the record but not act on it gets PermissionDenied, one who cannot
   read it "not found" (the two are indistinguishable from a missing record).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import ConflictError, DispatchflowError, NotFoundError, PermissionDenied
from ..records.actors import Actor
from ..runtime.step import Step
from .rounds import OFFER_ACTIONS, offer_standing


@dataclass(frozen=True)
class Standing:
    """What an actor holds on one record now (computed once per request).

    ``visible``: the role rows let the actor read it; ``offered``: the record was
    ever offered by the dispatch engine; ``pending``: the actor has a pending
    offer of it; ``was_offered``: the actor was offered it at some time.
    """

    visible: bool
    offered: bool
    pending: bool
    was_offered: bool


def standing_of(step: Step, actor: Actor) -> Standing:
    """The actor's :class:`Standing` on the step's record."""
    offered, pending, was_offered = offer_standing(step, actor)
    return Standing(_row_allows(step, actor, "read"), offered, pending, was_offered)


def check_action(step: Step, actor: Actor, action: str, standing: Standing) -> None:
    """Raise unless ``actor`` may take ``action`` on the step's record now (module docs).

    Raises PermissionDenied (no role allows the action; or the record is
    readable but the action's row rules exclude it), NotFoundError (the actor
    can neither read nor act on the record), ConflictError (an offer action
    without a pending offer on an offered record).
    """
    rt, entity = step.rt, step.entity
    rt.authz.require(actor, entity, action)
    if action in OFFER_ACTIONS and standing.offered:
        if standing.pending:
            return
        if standing.was_offered or _row_allows(step, actor, action):
            raise ConflictError("this order is no longer offered to you",
                                hint="another technician took it, or the offer expired "
                                     "or was withdrawn")
        raise NotFoundError(f"no {entity} {step.record_id}")
    if _row_allows(step, actor, action):
        return
    if standing.visible:
        raise PermissionDenied(f"you may not {action} this {entity} record",
                               hint="the rules of your role exclude this record now")
    raise NotFoundError(f"no {entity} {step.record_id}")


def check_action_now(step: Step, actor: Actor, action: str) -> None:
    """:func:`check_action` with the actor's :func:`standing_of` on the record now."""
    check_action(step, actor, action, standing_of(step, actor))


def may_take(step: Step, actor: Actor, action: str, standing: Standing) -> bool:
    """Whether :func:`check_action` lets ``actor`` take ``action`` now (no exception)."""
    try:
        check_action(step, actor, action, standing)
    except DispatchflowError:
        return False
    return True


def _row_allows(step: Step, actor: Actor, action: str) -> bool:
    return step.rt.authz.row_allowed(actor, step.entity, action, step.stored,
                                     resolve=_resolver(step), now=step.now)


def _resolver(step: Step) -> Callable[[str, Any], dict[str, Any] | None]:
    def resolve(entity: str, record_id: Any) -> dict[str, Any] | None:
        if record_id is None or entity not in step.rt.tables:
            return None
        return step.facts.row(entity, int(record_id))
    return resolve
