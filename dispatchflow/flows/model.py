"""The compiled flow graph: immutable IR built once per app version.

A :class:`CompiledFlow` is what the transition function and the graph checks
read; nothing downstream touches the flow's YAML. States form a tree: the
top-level states of the flow, and inside a state with ``regions`` (a parallel
state) one small state machine per region. Every state has a *node path*
naming it from the top: ``("offered",)`` for a top-level state,
``("repair_and_parts", "repair", "working")`` for state ``working`` of region
``repair`` of the parallel state ``repair_and_parts``. State names are unique
across a flow (``to:`` names a state, not a path), so a name identifies a state.

Every item keeps its YAML path (``("states", "offered", "timers", 0)``) so a
finding or a runtime error can be placed in the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import DispatchflowError
from ..rules import effects as fx
from .sla import SlaClockDef

YamlPath = tuple[str | int, ...]
NodePath = tuple[str, ...]


class FlowError(DispatchflowError):
    """A flow cannot be compiled, or a caller misused the transition function.

    Raised for programming and configuration mistakes (an unknown flow name, an
    instance state of another flow, a naive ``now``). Problems caused by a
    record at run time (an expression failing, ``when`` transitions looping)
    are not raised: they come back as an error :class:`~.outcome.Outcome`.
    """


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    """A checked DSL expression compiled to ``fn(record, now)``.

    ``path`` is its YAML path in the flow file, ``source`` the text as written
    (for error messages), ``line`` its line in the file (0 when unknown).
    """

    fn: Callable[[dict[str, Any], datetime], Any]
    path: YamlPath
    source: str
    line: int = 0


@dataclass(frozen=True, slots=True)
class SetTemplate:
    """A ``set`` effect whose value is computed when the effect happens."""

    entity: str
    field: str
    value: CompiledExpr
    rule: str


#: One effect of a flow item: a ready effect tuple (tag, emit, notify, ...), or
#: a ``set`` whose value is evaluated against the record at that moment.
EffectTemplate = fx.Effect | SetTemplate


@dataclass(frozen=True, slots=True)
class TransitionDef:
    """One transition: what triggers it, who may take it, where it goes.

    ``source`` is the declaring state (None for a global transition). Exactly
    one of ``event`` (an ``entity.event`` name), ``action`` or ``when`` is set.
    ``form_fields`` lists the fields of the action's form (values given with
    the action must be among them).
    """

    path: YamlPath
    source: str | None
    target: str
    event: str | None
    action: str | None
    roles: frozenset[str]
    guard: CompiledExpr | None
    when: CompiledExpr | None
    form: str | None
    form_fields: frozenset[str]
    effects: tuple[EffectTemplate, ...]
    label: dict[str, str]
    rule: str  # how effects and the timeline name this transition

    @property
    def trigger(self) -> str:
        """``on EVENT``, ``action NAME`` or ``when``: the trigger as written."""
        if self.event is not None:
            return f"on {self.event}"
        if self.action is not None:
            return f"action {self.action}"
        return "when"


@dataclass(frozen=True, slots=True)
class TimerDef:
    """A timer of a state: armed on entry, disarmed on exit, fires at most once.

    ``id`` is stable within an app version: ``"<state>/timers/<index>"``.
    Exactly one of ``after`` (a duration) and ``at`` (a date-time) is set.
    """

    id: str
    state: str
    path: YamlPath
    name: str | None
    after: CompiledExpr | None
    at: CompiledExpr | None
    target: str | None
    effects: tuple[EffectTemplate, ...]  # ``effects`` then ``emit``, as declared
    rule: str


@dataclass(frozen=True, slots=True)
class RegionDef:
    """A parallel region: its node path, initial state and states (in file order)."""

    name: str
    node: NodePath
    path: YamlPath
    initial: str
    states: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StateDef:
    """One state, with its transitions indexed by trigger.

    ``order`` is the state's position in a pre-order walk of the file (parents
    before children, file order among siblings); it fixes every ordering the
    transition function makes, so outcomes never depend on set or hash order.
    ``on_event`` / ``on_action`` keep the declared order of the transitions
    with that trigger; ``automatic`` holds the ``when`` transitions.
    """

    name: str
    node: NodePath
    path: YamlPath
    order: int
    final: bool
    label: dict[str, str]
    on_enter: tuple[EffectTemplate, ...]
    on_exit: tuple[EffectTemplate, ...]
    transitions: tuple[TransitionDef, ...]
    timers: tuple[TimerDef, ...]
    regions: tuple[RegionDef, ...]
    join: str | None
    on_event: dict[str, tuple[TransitionDef, ...]] = field(default_factory=dict)
    on_action: dict[str, tuple[TransitionDef, ...]] = field(default_factory=dict)
    automatic: tuple[TransitionDef, ...] = ()

    @property
    def parallel(self) -> bool:
        return bool(self.regions)

    @property
    def parent(self) -> str | None:
        """The parallel state this state's region belongs to (None at the top)."""
        return self.node[-3] if len(self.node) > 1 else None


@dataclass(frozen=True, slots=True)
class CompiledClock:
    """An SLA clock of the flow: its definition and its compiled target (a duration)."""

    definition: SlaClockDef
    target: CompiledExpr | None


@dataclass(frozen=True, slots=True)
class EscalationLevel:
    """One level of an escalation ladder.

    ``number`` counts from 1 in file order (the timeline and the docs say
    "level 2"); ``offset`` is when it fires relative to the ladder's anchor
    (positive for ``after``, negative for ``before``; plain time, not working
    time); ``emit`` is a bare event name of the flow's entity.
    """

    number: int
    offset: timedelta
    notify: str | None
    emit: str | None
    path: YamlPath


@dataclass(frozen=True, slots=True)
class EscalationDef:
    """An escalation ladder (``escalations:`` of a flow file).

    Exactly one of ``while_in`` (the ladder runs while the instance is in one
    of these states; the anchor is when it entered them) and ``clock`` (an SLA
    clock of the flow; the anchor is its deadline) is set. ``levels`` are in
    time order (``check`` enforces it).
    """

    name: str
    path: YamlPath
    label: dict[str, str]
    while_in: frozenset[str]
    clock: str | None
    levels: tuple[EscalationLevel, ...]


@dataclass(frozen=True)
class CompiledFlow:
    """A flow of one app version, ready for :func:`~.transition.start` and ``apply``.

    ``version`` is the published app version number the flow was compiled
    for; instance states carry it so an instance is never run by another
    version's flow. ``status_field`` is the entity's ``status`` enum field when
    it has one: the flow keeps it equal to the active top-level state
    (``status_values`` are its allowed values).
    """

    name: str
    entity: str
    file: str
    version: int
    initial: str
    states: dict[str, StateDef]
    global_transitions: tuple[TransitionDef, ...]
    timers: dict[str, TimerDef]
    status_field: str | None = None
    status_values: frozenset[str] = frozenset()
    label: dict[str, str] = field(default_factory=dict)
    global_on_event: dict[str, tuple[TransitionDef, ...]] = field(default_factory=dict)
    global_on_action: dict[str, tuple[TransitionDef, ...]] = field(default_factory=dict)
    global_automatic: tuple[TransitionDef, ...] = ()
    automatic: bool = True  # False: no 'when' and no 'join' anywhere, nothing to settle
    sla_clocks: dict[str, CompiledClock] = field(default_factory=dict)
    escalations: dict[str, EscalationDef] = field(default_factory=dict)

    def state(self, name: str) -> StateDef:
        """The state called ``name``; FlowError if the flow has none."""
        try:
            return self.states[name]
        except KeyError:
            raise FlowError(f"flow {self.name} has no state '{name}'", file=self.file,
                            hint="the instance may belong to another version of the "
                                 "flow") from None

    def transitions(self) -> list[TransitionDef]:
        """Every transition of the flow (states in file order, then global ones)."""
        out = [t for s in self.states.values() for t in s.transitions]
        out.extend(self.global_transitions)
        return out
