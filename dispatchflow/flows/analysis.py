"""Graph checks on a compiled flow, for ``dispatchflow check`` and the designer.

Each finding is a :class:`FlowProblem` with a diagnostic code, the flow file and
the YAML path of the offending item, so the caller can look the position up in
the source (``YamlDocument.span(path)``) and report it like any diagnostic:

- ``W8001`` a state no run can reach from ``initial`` (through transitions,
  timers, joins, global transitions and the regions a parallel state enters);
- ``E8002`` a non-final state nothing leads out of: no transition, timer with
  ``to``, ``join`` or global transition to another state, from it or from a
  parallel state enclosing it, so an instance entering it is stuck for good;
- ``W8003`` a final state with transitions or timers, which are never taken;
- ``W8004`` a ``join`` that can never happen because a region has no final state.

Reachability over-approximates (every guard and ``when`` may hold), so a state
reported unreachable is unreachable on every record.
"""

from __future__ import annotations

from typing import NamedTuple

from ..dsl.compiler import App
from ..dsl.diagnostics import Diagnostic, DiagnosticBag, Severity
from ..dsl.source import SourceFile
from ..dsl.yaml_loader import load_yaml
from ..errors import DispatchflowError
from .compile import compile_flow
from .model import CompiledFlow, StateDef, YamlPath


class FlowProblem(NamedTuple):
    """One finding: ``code`` (E = error, W = warning), text, and where it is."""

    code: str
    message: str
    file: str
    path: YamlPath
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.code.startswith("E")


def analyse_flow(flow: CompiledFlow) -> list[FlowProblem]:
    """Every graph problem of ``flow``, in file order of the states concerned."""
    problems: list[FlowProblem] = []
    reachable = reachable_states(flow)
    for state in flow.states.values():
        if state.name not in reachable:
            problems.append(FlowProblem(
                "W8001", f"state '{state.name}' can never be reached from "
                f"'{flow.initial}'", flow.file, state.path,
                "add a transition to it, or remove it"))
        if not state.final and not _has_way_out(flow, state):
            problems.append(FlowProblem(
                "E8002", f"state '{state.name}' is not final but nothing leads out of it",
                flow.file, state.path,
                "add a transition or a timer with 'to', or mark it final: true"))
        if state.final and (state.transitions or state.timers):
            key = "transitions" if state.transitions else "timers"
            problems.append(FlowProblem(
                "W8003", f"final state '{state.name}' has {key}; they are never taken",
                flow.file, state.path + (key,),
                "remove them, or drop final: true if the flow goes on from here"))
        if state.join is not None:
            for region in state.regions:
                if not any(flow.states[n].final for n in _subtree_names(flow, region.states)):
                    problems.append(FlowProblem(
                        "W8004", f"region {region.name} of '{state.name}' has no final "
                        f"state, so the join to '{state.join}' never happens", flow.file,
                        region.path, "mark the region's last state final: true"))
    return problems


def reachable_states(flow: CompiledFlow) -> set[str]:
    """Names of the states some run can enter, assuming every guard may hold."""
    states = flow.states
    seen: set[str] = set()
    todo: list[str] = []

    def reach(target: str) -> None:
        for name in _entered(flow, target):
            if name not in seen:
                seen.add(name)
                todo.append(name)

    reach(flow.initial)
    while todo:
        state = states[todo.pop()]
        if state.final:
            continue
        for target in _targets(state):
            reach(target)
        if len(state.node) == 1:
            # Global transitions leave any non-final top-level state but their target.
            for t in flow.global_transitions:
                if t.target != state.name:
                    reach(t.target)
    return seen


def _entered(flow: CompiledFlow, target: str) -> list[str]:
    """States entered when ``target`` is entered from the top (ancestors, default regions)."""
    states = flow.states
    node = states[target].node
    out: list[str] = []

    def enter(name: str, towards: tuple[str, ...] | None) -> None:
        state = states[name]
        out.append(name)
        depth = len(state.node)
        for region in state.regions:
            if towards is not None and len(towards) > depth and towards[depth] == region.name:
                enter(towards[depth + 1], towards)
            else:
                enter(region.initial, None)
    enter(node[0], node)
    return out


def _targets(state: StateDef) -> list[str]:
    out = [t.target for t in state.transitions]
    out.extend(timer.target for timer in state.timers if timer.target is not None)
    if state.join is not None:
        out.append(state.join)
    return out


def _has_way_out(flow: CompiledFlow, state: StateDef) -> bool:
    """Whether something moves an instance out of ``state`` (see module docs)."""
    states = flow.states
    top = state.node[0]
    if any(t.target != top for t in flow.global_transitions):
        return True
    for name in reversed(state.node[::2]):  # the state, then enclosing parallel states
        inside = _subtree_names(flow, (name,))
        if any(target not in inside for target in _targets(states[name])):
            return True
        # A parallel state is also left by a transition of a state in its regions.
        if any(target not in inside for n in inside if n != name
               for target in _targets(states[n]) if not states[n].final):
            return True
    return False


def _subtree_names(flow: CompiledFlow, roots: tuple[str, ...]) -> set[str]:
    """``roots`` and every state inside their regions."""
    out: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        out.add(name)
        for region in flow.states[name].regions:
            todo.extend(region.states)
    return out


def flow_diagnostics(app: App) -> list[Diagnostic]:
    """The graph problems of every flow of ``app`` as diagnostics with positions.

    ``dispatchflow check`` adds these to the compiler's (the ``dsl`` layer cannot
    import ``flows``). A flow that does not compile is reported as E8005 at
    the flow's file.
    """
    bag = DiagnosticBag()
    for name, item in app.flows.items():
        source = SourceFile(item.file, app.sources.get(item.file, ""))
        doc = load_yaml(source, DiagnosticBag())
        bag.add_source(source)
        try:
            flow = compile_flow(app, name)
        except DispatchflowError as exc:
            bag.error("E8005", f"flow {name} cannot be compiled: {exc.message}", item.file,
                      hint=exc.hint)
            continue
        for problem in analyse_flow(flow):
            severity = Severity.ERROR if problem.code.startswith("E") else Severity.WARNING
            span = doc.key_span(problem.path) if doc is not None else None
            bag.add(severity, problem.code, problem.message, problem.file, span, problem.hint)
    return bag.sorted()
