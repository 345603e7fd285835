"""The pure transition function: (flow, instance state, event, record, now) -> outcome.

:func:`start` enters a flow's initial state; :func:`apply` feeds one event to a
running instance. Both return an :class:`Outcome`: the new (small, immutable)
:class:`InstanceState`, the effects to apply (``rules.effects`` tuples), the
timers to set and to cancel, and the transitions taken. Nothing here reads a
clock, a random source or a database: the same inputs always give the same
outcome, so replaying an instance's event log rebuilds its state. The values
it takes and returns live beside it (:mod:`.instance`, :mod:`.events`,
:mod:`.outcome`), and what it derives once per flow in :mod:`.plan`.

Semantics, in the order they apply (docs/bundle.md, flows):

- **Events are offered to every active state.** For each active leaf state in
  file order, the first enabled transition of the leaf or, failing that, of
  its nearest enclosing parallel state is selected. A selected transition
  whose exits overlap an earlier selection's is dropped (the earlier one in
  file order wins); all selections are made before any is taken, so their
  guards see the record as the event found it. Global transitions are tried
  only when no state transition is enabled, from the active top-level
  state, never from their own target state (a second ``escalated`` while in
  ``exception`` is a no-op).
- **A transition** exits every active state below the nearest region (or the
  flow) containing both its source and its target, innermost first, running
  ``on_exit`` effects and disarming those states' timers; then its own
  effects; then it enters the states down to the target, outermost first,
  running ``on_enter`` and arming timers. Entering a parallel state enters
  every region's initial state (or the region holding the target). A
  transition to its own source exits and re-enters it (timers restart).
- **Automatic steps** follow until nothing changes: a parallel state whose
  regions all sit in final states moves to its ``join`` target, then ``when``
  transitions are selected like events. More than :data:`MAX_MICROSTEPS`
  steps for one event is an error outcome (the ``when`` conditions loop).
- **Final states** take no transitions; once the active top-level state is
  final, the instance has ended and every event is rejected.
- **Timers** are armed with the step counter of the event that armed them; a
  :class:`TimerFired` carrying another step, or for a timer no longer armed,
  is stale and rejected. A timer fires once. With a ``to`` it is a
  transition whose own effects are the timer's ``effects`` then its ``emit``;
  without one, just those effects, and its state stays active.
- **Rejections** (no transition, a role not allowed, a false guard, a stale
  timer, an ended flow) change nothing: the outcome carries the input state
  and no effects. So does an **error** (an expression failing on the record).
- **Actions** need a role of the actor among the transition's ``roles`` and a
  true guard. Form values given with an action must be fields of the
  transition's form; they are merged into the record before the guard is
  evaluated and come first in the effects (``set``, rule ``form NAME``).
- ``set`` effects update a working copy of the record, so later guards,
  ``when`` conditions, timer expressions and ``set`` values of the same event
  see them. When the entity has an enum field ``status``, entering a
  top-level state sets it to the state's name (if it is one of the values and
  the record does not already hold it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from ..errors import EvaluationError
from ..rules import effects as fx
from .events import ActionTaken, Event, EventOccurred, RecordChanged, TimerFired
from .instance import InstanceState
from .model import (
    CompiledExpr,
    CompiledFlow,
    EffectTemplate,
    FlowError,
    NodePath,
    SetTemplate,
    StateDef,
    TransitionDef,
)
from .outcome import ActionOption, Outcome, Taken, TimerRequest, new_outcome, new_state
from .plan import PLAN_ATTRIBUTE, plan_of

#: Most transitions (the event's own, joins and ``when`` steps) one event may cause.
MAX_MICROSTEPS = 100

_EVAL_ERRORS = (TypeError, AttributeError, KeyError, ValueError, ArithmeticError, re.error,
                EvaluationError)


# ---------------------------------------------------------------- public functions

def start(flow: CompiledFlow, record: Mapping[str, Any], now: datetime) -> Outcome:
    """Start an instance: enter the initial state, then run automatic steps.

    ``now`` must be timezone-aware (FlowError otherwise); it is the time of the
    event that starts the flow and the ``now()`` of every expression.
    """
    _check_now(now)
    blank = InstanceState(flow.name, flow.version, ())
    run = _Run(flow, blank, record, now, step=0)
    try:
        target = flow.state(flow.initial)
        run.taken.append(Taken(None, target.name, "start", ("initial",)))
        run.enter(target.node, 0)
        run.settle()
    except _Failure as failure:
        return Outcome(blank, error=str(failure))
    return run.outcome()


def apply(flow: CompiledFlow, state: InstanceState, event: Event,
          record: Mapping[str, Any], now: datetime) -> Outcome:
    """Apply one event to an instance of ``flow`` (see the module docs for the rules).

    ``record`` is the instance's record as stored (a dict of runtime values),
    ``now`` the aware time of the event. Raises FlowError if ``state`` belongs
    to another flow or version, or ``now`` is naive; everything the record or
    the event can cause comes back in the :class:`Outcome`.
    """
    _check_now(now)
    if state.flow != flow.name or state.version != flow.version:
        raise FlowError(f"instance of flow {state.flow} version {state.version} given to "
                        f"flow {flow.name} version {flow.version}",
                        hint="run an instance with the flow of the app version it started on")
    if not state.active:
        raise FlowError(f"instance of flow {flow.name} has not started",
                        hint="start it with flows.start() and keep the state it returns")
    if state.final:
        return _reject(state, "ended", f"flow {flow.name} has ended (state "
                       f"{', '.join(state.states)})")
    run = _Run(flow, state, record, now, step=state.step + 1)
    try:
        rejection = run.dispatch(event)
        if rejection is not None:
            return _reject(state, *rejection)
        if flow.automatic:
            run.settle()
    except _Failure as failure:
        return Outcome(state, error=str(failure))
    return run.outcome()


def actions_available(flow: CompiledFlow, state: InstanceState, roles: frozenset[str],
                      record: Mapping[str, Any], now: datetime) -> list[ActionOption]:
    """The actions ``roles`` may take now (role allowed and guard true), first one per name.

    For buttons; a guard that fails to evaluate counts as false here.
    """
    if state.final:
        return []
    run = _Run(flow, state, record, now, step=state.step)
    seen: dict[str, ActionOption] = {}
    candidates = [t for s in run.chains() for ts in s.on_action.values() for t in ts]
    candidates.extend(t for t in flow.global_transitions
                      if t.action is not None and t.target != run.top())
    for t in candidates:
        assert t.action is not None
        if t.action in seen or not (t.roles & roles):
            continue
        try:
            if t.guard is None or run.test(t.guard):
                seen[t.action] = ActionOption(t.action, t.label, t.form, t.target)
        except _Failure:
            continue
    return list(seen.values())


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise FlowError("'now' must be a timezone-aware datetime",
                        hint="take it from the platform clock, e.g. datetime.now(UTC)")


def _reject(state: InstanceState, code: str, reason: str) -> Outcome:
    return new_outcome(state, [], [], [], [], reason, code, None)


class _Failure(Exception):
    """An expression failed or automatic steps did not settle (becomes Outcome.error)."""


# ---------------------------------------------------------------- one run

class _Run:
    """The working state of one ``start`` / ``apply``: configuration, record, results."""

    __slots__ = ("flow", "plan", "state", "now", "step", "record", "own_record", "active",
                 "pending", "armed", "cancelled", "effects", "taken", "microsteps", "_leaves")

    def __init__(self, flow: CompiledFlow, state: InstanceState, record: Mapping[str, Any],
                 now: datetime, step: int) -> None:
        self.flow, self.state, self.now, self.step = flow, state, now, step
        self.plan = flow.__dict__.get(PLAN_ATTRIBUTE) or plan_of(flow)
        self.record: dict[str, Any] = record if isinstance(record, dict) else dict(record)
        self.own_record = False
        states = flow.states
        self.active: set[str] = set()
        self._leaves: list[StateDef] | None = None
        nodes = state.active
        if len(nodes) == 1 and len(nodes[0]) == 1:  # one top-level state: the common case
            name = nodes[0][0]
            if name not in states:
                flow.state(name)  # raises FlowError naming the unknown state
            self.active.add(name)
            if name in self.plan.leaf:
                self._leaves = [states[name]]
        else:
            for node in nodes:
                for name in node[::2]:
                    if name not in states:
                        flow.state(name)
                    self.active.add(name)
        self.pending: dict[str, int] = dict(state.timers)
        self.armed: dict[str, TimerRequest] = {}
        self.cancelled: list[str] = []
        self.effects: list[fx.Effect] = []
        self.taken: list[Taken] = []
        self.microsteps = 0

    # -- configuration
    def leaves(self) -> list[StateDef]:
        """Active leaf states in file order (cached until a state is entered or exited)."""
        leaves = self._leaves
        if leaves is None:
            states = self.flow.states
            leaf = self.plan.leaf
            if len(self.active) == 1:  # one top-level state: nothing to sort
                name = next(iter(self.active))
                leaves = [states[name]] if name in leaf else []
            else:
                leaves = sorted((states[n] for n in self.active if n in leaf), key=_order)
            self._leaves = leaves
        return leaves

    def top(self) -> str:
        return next(iter(self.leaves())).node[0]

    def chains(self) -> list[StateDef]:
        """Active non-final states, each leaf then its enclosing states (no repeats)."""
        states = self.flow.states
        seen: set[str] = set()
        out = []
        for leaf in self.leaves():
            for name in reversed(leaf.node[::2]):
                s = states[name]
                if name not in seen and not s.final:
                    seen.add(name)
                    out.append(s)
        return out

    # -- events
    def dispatch(self, event: Event) -> tuple[str, str] | None:
        """Take the transitions ``event`` triggers; a (code, reason) rejection otherwise."""
        if isinstance(event, EventOccurred):
            name = event.name if "." in event.name else f"{self.flow.entity}.{event.name}"
            chosen = self.select(lambda s: s.on_event.get(name, ()),
                                 self.flow.global_on_event.get(name, ()))
            if not chosen:
                return "no_transition", f"no transition on {name} in state {self.where()}"
            self.take_all(chosen)
            return None
        if isinstance(event, ActionTaken):
            return self.action(event)
        if isinstance(event, TimerFired):
            return self.timer(event)
        if isinstance(event, RecordChanged):
            if not self.automatic_step():
                return "no_transition", f"no automatic transition applies in state " \
                                        f"{self.where()}"
            return None
        raise FlowError(f"not a flow event: {event!r}",
                        hint="use EventOccurred, ActionTaken, TimerFired or RecordChanged")

    def action(self, event: ActionTaken) -> tuple[str, str] | None:
        if isinstance(event.actor_roles, str):
            raise FlowError("actor_roles must be a collection of role names, not one string",
                            hint=f"write ActionTaken({event.action!r}, "
                                 f"frozenset({{{event.actor_roles!r}}}))")
        roles = frozenset(event.actor_roles)
        values = dict(event.form_values) if event.form_values else {}
        if values:
            self.merge(values)
        seen: list[TransitionDef] = []
        role_ok: list[TransitionDef] = []

        def enabled(t: TransitionDef) -> bool:
            seen.append(t)
            if t.roles.isdisjoint(roles):
                return False
            role_ok.append(t)  # only the guard can still stop it
            return t.guard is None or self.test(t.guard)
        chosen = self.select(lambda s: s.on_action.get(event.action, ()),
                             self.flow.global_on_action.get(event.action, ()), enabled)
        if not chosen:
            if role_ok:
                t = role_ok[0]
                guard = t.guard.source if t.guard else ""
                return "guard", f"action '{event.action}' is not possible now: its guard " \
                                f"`{guard}` is false"
            if seen:
                allowed = sorted(set().union(*(t.roles for t in seen)))
                return "forbidden", f"role {', '.join(sorted(roles)) or '(none)'} may not " \
                                    f"take action '{event.action}' (allowed: " \
                                    f"{', '.join(allowed)})"
            return "no_transition", f"no action '{event.action}' in state {self.where()}"
        if values:
            fields = frozenset().union(*(t.form_fields for t, _ in chosen))
            forms = [t.form for t, _ in chosen if t.form]
            if not forms:
                return "form", f"action '{event.action}' takes no form; send no values"
            extra = sorted(set(values) - fields)
            if extra:
                return "form", f"form {forms[0]} has no field {', '.join(extra)}"
            rule = f"flow {self.flow.name}: form {forms[0]}"
            self.effects.extend(fx.SetField(self.flow.entity, k, v, rule)
                                for k, v in values.items())
        self.take_all(chosen)
        return None

    def timer(self, event: TimerFired) -> tuple[str, str] | None:
        timer = self.flow.timers.get(event.timer_id)
        if timer is None or self.pending.get(event.timer_id) != event.step_set:
            return "stale_timer", f"timer {event.timer_id} set at step {event.step_set} " \
                                  "is no longer armed"
        del self.pending[event.timer_id]  # fires once; not "cancelled" by leaving its state
        source = self.flow.states[timer.state]
        trigger = f"timer {timer.name or timer.id}"
        if timer.target is None:
            self.taken.append(Taken(source.name, None, trigger, timer.path))
            self.run_effects(timer.effects)
        else:
            self.transition(source, self.flow.states[timer.target], timer.effects,
                            Taken(source.name, timer.target, trigger, timer.path))
        return None

    # -- selection
    def select(self, pick: Callable[[StateDef], tuple[TransitionDef, ...]],
               global_ts: tuple[TransitionDef, ...],
               enabled: Callable[[TransitionDef], bool] | None = None
               ) -> list[tuple[TransitionDef, StateDef]]:
        """Enabled transitions, one per active leaf, without conflicts (module docs)."""
        check = enabled or self.enabled
        states = self.flow.states
        chosen: list[tuple[TransitionDef, StateDef]] = []
        exits: set[str] = set()
        leaves = self.leaves()
        if len(leaves) == 1 and len(leaves[0].node) == 1:  # the common case: no regions
            top = leaves[0]
            if not top.final:
                for first in pick(top):
                    if check(first):
                        return [(first, top)]
            for first in global_ts:
                if first.target != top.name and check(first):
                    return [(first, top)]
            return []
        for leaf in leaves:
            for name in reversed(leaf.node[::2]):
                s = states[name]
                if s.final:
                    continue
                for t in pick(s):
                    if check(t):
                        break
                else:
                    continue
                if not any(c is t for c, _ in chosen):
                    out = self.exit_set(s, states[t.target])
                    if not out & exits:
                        chosen.append((t, s))
                        exits |= out
                break
        if not chosen and global_ts:
            top = states[self.top()]
            for first in global_ts:
                if first.target != top.name and check(first):
                    chosen.append((first, top))
                    break
        return chosen

    def enabled(self, t: TransitionDef) -> bool:
        return (t.when is None or self.test(t.when)) and (t.guard is None or
                                                           self.test(t.guard))

    def take_all(self, chosen: list[tuple[TransitionDef, StateDef]]) -> None:
        states, prebuilt = self.flow.states, self.plan.taken
        for t, source in chosen:
            known = prebuilt.get(id(t))
            # the identity check keeps a copied flow (deepcopy carries the plan) correct
            taken = known[1] if known is not None and known[0] is t else \
                Taken(t.source or source.name, t.target, t.trigger, t.path)
            self.transition(source, states[t.target], t.effects, taken)

    # -- automatic steps
    def settle(self) -> None:
        while self.automatic_step():
            pass

    def automatic_step(self) -> bool:
        """One join or one round of ``when`` transitions; False when there was none."""
        flow = self.flow
        if not flow.automatic:
            return False
        leaves = self._leaves if self._leaves is not None else self.leaves()
        if flow.states[next(iter(leaves)).node[0]].final:  # the top-level state
            return False
        plan = self.plan
        if not plan.joins.isdisjoint(self.active):
            join = self.due_join()
            if join is not None:
                assert join.join is not None
                self.transition(join, self.flow.states[join.join], (),
                                Taken(join.name, join.join, "join", join.path + ("join",)))
                return True
        if not plan.when:  # nothing for select() to find
            return False
        chosen = self.select(lambda s: s.automatic, self.flow.global_automatic)
        self.take_all(chosen)
        return bool(chosen)

    def due_join(self) -> StateDef | None:
        states = self.flow.states
        due = [s for n in self.active if (s := states[n]).join is not None and
               all(self.region_done(r.states) for r in s.regions)]
        return max(due, key=lambda s: s.order) if due else None

    def region_done(self, names: tuple[str, ...]) -> bool:
        return any(n in self.active and self.flow.states[n].final for n in names)

    # -- one transition
    def transition(self, source: StateDef, target: StateDef,
                   effects: tuple[EffectTemplate, ...], taken: Taken) -> None:
        self.microsteps += 1
        if self.microsteps > MAX_MICROSTEPS:
            raise _Failure(f"flow {self.flow.name}: more than {MAX_MICROSTEPS} transitions "
                           f"for one event (last: {taken.source} -> {taken.target}); "
                           "automatic 'when' transitions keep firing each other")
        self.taken.append(taken)
        above, below = source.node, target.node
        depth = 0 if len(above) < 3 or len(below) < 3 else _domain(above, below)
        states = self.flow.states
        if len(self.active) == 1:  # one top-level state: it is exited or nothing is
            state = states[next(iter(self.active))]
            if len(state.node) > depth and state.node[depth] == above[depth]:
                self.exit(state)
        else:
            for state in sorted((states[n] for n in self._exits(above[depth], depth)),
                                key=_order, reverse=True):  # innermost first
                self.exit(state)
        if effects:
            self.run_effects(effects)
        self.enter(target.node, depth)

    def exit_set(self, source: StateDef, target: StateDef) -> set[str]:
        depth = _domain(source.node, target.node)
        return self._exits(source.node[depth], depth)

    def _exits(self, root: str, depth: int) -> set[str]:
        """Active states whose path has ``root`` at ``depth`` (it and its descendants)."""
        states = self.flow.states
        return {n for n in self.active
                if len(node := states[n].node) > depth and node[depth] == root}

    def exit(self, state: StateDef) -> None:
        if state.on_exit:
            self.run_effects(state.on_exit)
        if state.timers:
            pending, armed = self.pending, self.armed
            for timer in state.timers:
                if pending.pop(timer.id, None) is not None:
                    if armed.pop(timer.id, None) is None:
                        self.cancelled.append(timer.id)
        self.active.discard(state.name)
        self._leaves = None

    def enter(self, towards: NodePath, depth: int) -> None:
        """Enter the state at ``towards[depth]`` and its descendants down to ``towards``."""
        flow = self.flow
        state = flow.states[towards[depth]]
        name = state.name
        active = self.active
        active.add(name)
        # a top-level state without regions, alone: the leaves are known without sorting
        self._leaves = [state] if len(active) == 1 and not state.regions else None
        status = self.plan.status.get(name)
        if status is not None and self.record.get(status.field) != name:
            self.set_field(status)
        if state.on_enter:
            self.run_effects(state.on_enter)
        if state.timers and not state.final:
            for timer in state.timers:
                fire_at = self.fire_at(timer.after, timer.at)
                if fire_at is not None:
                    self.pending[timer.id] = self.step
                    self.armed[timer.id] = TimerRequest(timer.id, fire_at, self.step)
        for region in state.regions:
            if len(towards) > depth + 2 and towards[depth + 1] == region.name:
                self.enter(towards, depth + 2)
            else:
                self.enter(flow.states[region.initial].node, depth + 2)

    def fire_at(self, after: CompiledExpr | None, at: CompiledExpr | None) -> datetime | None:
        if after is not None:
            duration = self.value(after)
            return None if duration is None else self.now + _duration(duration, after)
        assert at is not None
        when = self.value(at)
        if when is not None and not isinstance(when, datetime):
            raise _Failure(self.describe(at, f"gave {when!r}, not a date-time"))
        return when

    # -- effects and expressions
    def run_effects(self, templates: tuple[EffectTemplate, ...]) -> None:
        for template in templates:
            if isinstance(template, SetTemplate):
                self.set_field(fx.SetField(template.entity, template.field,
                                           self.value(template.value), template.rule))
            else:
                self.effects.append(template)

    def set_field(self, effect: fx.SetField) -> None:
        self.effects.append(effect)
        if not self.own_record:
            self.record = dict(self.record)
            self.own_record = True
        self.record[effect.field] = effect.value

    def merge(self, values: Mapping[str, Any]) -> None:
        if not self.own_record:
            self.record = dict(self.record)
            self.own_record = True
        self.record.update(values)

    def value(self, expr: CompiledExpr) -> Any:
        try:
            return expr.fn(self.record, self.now)
        except _EVAL_ERRORS as exc:
            raise _Failure(self.describe(expr, f"failed: {exc}")) from exc

    def test(self, expr: CompiledExpr) -> bool:
        return self.value(expr) is True

    def describe(self, expr: CompiledExpr, problem: str) -> str:
        where = f"{self.flow.file}:{expr.line}: " if expr.line else f"{self.flow.file}: "
        path = ".".join(str(p) for p in expr.path)
        return f"{where}flow {self.flow.name} {path} `{expr.source}` {problem}"

    def where(self) -> str:
        return ", ".join(s.name for s in self.leaves())

    # -- result
    def outcome(self) -> Outcome:
        leaves = self._leaves if self._leaves is not None else self.leaves()
        if len(leaves) == 1:
            leaf = leaves[0]
            node = leaf.node
            active: tuple[NodePath, ...] = (node,)
            if len(node) == 1:
                completed: tuple[NodePath, ...] = ()
                final = leaf.final
            else:
                completed = (node[:-1],) if leaf.final else ()
                final = self.flow.states[node[0]].final
        else:
            active = tuple(s.node for s in leaves)
            completed = tuple(s.node[:-1] for s in leaves if s.final and len(s.node) > 1)
            final = self.flow.states[active[0][0]].final
        pending = self.pending
        timers = tuple(sorted(pending.items())) if pending else ()
        new = new_state(self.flow.name, self.flow.version, active, completed, final,
                         self.step, timers)
        return new_outcome(new, self.effects, list(self.armed.values()), self.cancelled,
                            self.taken, None, None, None)


_order: Callable[[StateDef], int] = attrgetter("order")


def _domain(source: NodePath, target: NodePath) -> int:
    """Depth of the first state below the innermost region containing both paths.

    Paths alternate state and region names, so regions end at even lengths; a
    region containing a state is a proper prefix of its path. ``0``: the flow
    itself is that region (top-level states are exited).
    """
    depth = 0
    limit = min(len(source), len(target)) - 1
    while depth + 2 <= limit and source[:depth + 2] == target[:depth + 2]:
        depth += 2
    return depth


def _duration(value: Any, expr: CompiledExpr) -> timedelta:
    if not isinstance(value, timedelta):
        raise _Failure(f"timer 'after' `{expr.source}` gave {value!r}, not a duration")
    return value
