"""What the transition function derives from a compiled flow once, and reuses per event.

A :class:`TransitionPlan` is built the first time :mod:`.transition` runs a
flow and is kept on the flow object (:func:`plan_of`), so later events of
every instance of that app version skip the work.
"""

from __future__ import annotations

from ..rules import effects as fx
from .model import CompiledFlow, TransitionDef
from .outcome import Taken


class TransitionPlan:
    """What the transition function derives from a flow once: built on first use.

    ``leaf``: the names of the non-parallel states; ``status``: for each
    top-level state that sets the entity's ``status`` on entry, the effect
    doing so; ``joins``: the parallel states with a ``join``; ``when``: whether
    any state or global transition is a ``when`` transition; ``taken``: by
    ``id()`` of each state transition, the transition and its :class:`Taken`
    record (immutable, so every outcome may share it).
    """

    __slots__ = ("leaf", "status", "joins", "when", "taken")

    def __init__(self, flow: CompiledFlow) -> None:
        states = flow.states
        self.leaf = frozenset(n for n, s in states.items() if not s.regions)
        field_ = flow.status_field
        self.status: dict[str, fx.SetField] = {
            n: fx.SetField(flow.entity, field_, n, f"flow {flow.name}: enter {n}")
            for n, s in states.items()
            if field_ and len(s.node) == 1 and n in flow.status_values}
        self.joins = frozenset(n for n, s in states.items() if s.join is not None)
        self.when = bool(flow.global_automatic) or any(s.automatic for s in states.values())
        self.taken: dict[int, tuple[TransitionDef, Taken]] = {
            id(t): (t, Taken(t.source, t.target, t.trigger, t.path))
            for s in states.values() for t in s.transitions if t.source}


#: The attribute of a compiled flow that holds its plan.
PLAN_ATTRIBUTE = "_transition_plan"


def plan_of(flow: CompiledFlow) -> TransitionPlan:
    """The plan of ``flow``, built and kept on the flow the first time it is asked for."""
    # Kept on the flow object (never changed after compiling, one per app version)
    # so every event after the first reuses it; not a dataclass field, so eq,
    # repr and dataclasses.replace ignore it.
    plan: TransitionPlan | None = flow.__dict__.get(PLAN_ATTRIBUTE)
    if plan is None:
        plan = TransitionPlan(flow)
        object.__setattr__(flow, PLAN_ATTRIBUTE, plan)
    return plan
