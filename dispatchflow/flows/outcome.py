"""What the transition function returns: :class:`Outcome` and the records it carries.

An :class:`Outcome` holds the new :class:`~.instance.InstanceState`, the
effects to apply, the timers to set (:class:`TimerRequest`) and to cancel, and
the transitions taken (:class:`Taken`); :class:`ActionOption` is one action a
user may take now (:func:`.transition.actions_available`). :func:`new_state`
and :func:`new_outcome` build the two frozen dataclasses on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple

from ..rules import effects as fx
from .instance import InstanceState
from .model import NodePath, YamlPath


class TimerRequest(NamedTuple):
    """Set timer ``timer_id`` to fire at ``fire_at`` (aware); echo ``state_step`` back."""

    timer_id: str
    fire_at: datetime
    state_step: int


class Taken(NamedTuple):
    """One transition taken: from ``source`` to ``target`` (None: a timer without ``to``)."""

    source: str | None
    target: str | None
    trigger: str  # "on work_order.created", "action accept", "when", "timer x", "join", "start"
    path: YamlPath


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of :func:`.transition.start` or :func:`.transition.apply`.

    The shell cancels ``timers_to_cancel`` before setting ``timers_to_set`` (a
    re-entered state's timer appears in both). When ``rejected`` (a reason,
    with ``rejected_code`` one of ``ended``, ``no_transition``, ``forbidden``,
    ``guard``, ``form``, ``stale_timer``) or ``error`` is set, nothing changed:
    ``state`` is the input state (for ``start``, an empty not-started one)
    and the lists are empty.
    """

    state: InstanceState
    effects: list[fx.Effect] = field(default_factory=list)
    timers_to_set: list[TimerRequest] = field(default_factory=list)
    timers_to_cancel: list[str] = field(default_factory=list)
    taken: list[Taken] = field(default_factory=list)
    rejected: str | None = None
    rejected_code: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the event was accepted (not rejected, no error)."""
        return self.rejected is None and self.error is None


class ActionOption(NamedTuple):
    """An action a user with some roles may take now (a button)."""

    action: str
    label: dict[str, str]
    form: str | None
    target: str


# The transition function builds one InstanceState and one Outcome per event. A
# frozen dataclass's __init__ sets every field through object.__setattr__; these
# makers fill the same slots directly, which is markedly cheaper on that path.

def _slot_setters(cls: type, names: tuple[str, ...]) -> list[Callable[[object, Any], None]]:
    if tuple(f.name for f in fields(cls)) != names:
        raise AssertionError(f"update the fast constructor of {cls.__name__}: its fields "
                             "changed")
    return [cls.__dict__[name].__set__ for name in names]


def _state_maker() -> Callable[[str, int, tuple[NodePath, ...], tuple[NodePath, ...], bool,
                                int, tuple[tuple[str, int], ...]], InstanceState]:
    set_flow, set_version, set_active, set_completed, set_final, set_step, set_timers = \
        _slot_setters(InstanceState, ("flow", "version", "active", "completed", "final",
                                      "step", "timers"))
    new = object.__new__

    def make(flow: str, version: int, active: tuple[NodePath, ...],
             completed: tuple[NodePath, ...], final: bool, step: int,
             timers: tuple[tuple[str, int], ...]) -> InstanceState:
        state = new(InstanceState)
        set_flow(state, flow)
        set_version(state, version)
        set_active(state, active)
        set_completed(state, completed)
        set_final(state, final)
        set_step(state, step)
        set_timers(state, timers)
        return state
    return make


def _outcome_maker() -> Callable[[InstanceState, list[fx.Effect], list[TimerRequest],
                                  list[str], list[Taken], str | None, str | None,
                                  str | None], Outcome]:
    set_state, set_effects, set_to_set, set_to_cancel, set_taken, set_rejected, set_code, \
        set_error = _slot_setters(Outcome, ("state", "effects", "timers_to_set",
                                            "timers_to_cancel", "taken", "rejected",
                                            "rejected_code", "error"))
    new = object.__new__

    def make(state: InstanceState, effects: list[fx.Effect], to_set: list[TimerRequest],
             to_cancel: list[str], taken: list[Taken], rejected: str | None,
             rejected_code: str | None, error: str | None) -> Outcome:
        outcome = new(Outcome)
        set_state(outcome, state)
        set_effects(outcome, effects)
        set_to_set(outcome, to_set)
        set_to_cancel(outcome, to_cancel)
        set_taken(outcome, taken)
        set_rejected(outcome, rejected)
        set_code(outcome, rejected_code)
        set_error(outcome, error)
        return outcome
    return make


#: ``new_state(flow, version, active, completed, final, step, timers)``: an
#: :class:`InstanceState` built without its ``__init__`` (the transition function's path).
new_state = _state_maker()
#: ``new_outcome(state, effects, to_set, to_cancel, taken, rejected, rejected_code,
#: error)``: an :class:`Outcome` built without its ``__init__``.
new_outcome = _outcome_maker()
