"""Compile a checked flow (``App.flows[name]``) into a :class:`CompiledFlow`.

Runs once per app version: every guard, ``when``, timer and ``set`` value
becomes a generated function ``fn(record, now)`` (``dsl/codegen.py``), effects
become ready effect tuples, and transitions are indexed by event and action so
the transition function never scans a state's list. Decision tables over the
flow's entity are readable (``surcharges.amount``) through
:class:`~dispatchflow.rules.table_access.GenericTable`, evaluated by the rules
:class:`~dispatchflow.rules.engine.Engine` of the same app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..dsl import ast
from ..dsl.ast import parse_duration
from ..dsl.codegen import NOW, Emitter, compile_function, root_param
from ..dsl.compiler import App
from ..dsl.items import CheckedItem
from ..dsl.yaml_loader import value_at
from ..rules import effects as fx
from ..rules.engine import Engine
from ..rules.table_access import GenericTable
from .model import (
    CompiledClock,
    CompiledExpr,
    CompiledFlow,
    EffectTemplate,
    EscalationDef,
    EscalationLevel,
    FlowError,
    RegionDef,
    SetTemplate,
    StateDef,
    TimerDef,
    TransitionDef,
    YamlPath,
)
from .sla import SlaClockDef

#: ``evaluate(table, record, now)``: a decision table's outputs as a dict, or None.
TableEvaluator = Callable[[str, dict[str, Any], datetime], dict[str, Any] | None]

#: The field a flow keeps equal to its top-level state, when the entity has it as an enum.
STATUS_FIELD = "status"


def compile_flows(app: App, version: int = 0,
                  tables: TableEvaluator | None = None) -> dict[str, CompiledFlow]:
    """Every flow of ``app``, compiled for published version ``version``.

    ``tables`` evaluates decision tables read by flow expressions; by default a
    rules :class:`Engine` of ``app`` (pass the runner's own engine's
    ``table_outputs`` to share its compiled tables). Raises :class:`FlowError`
    like :func:`compile_flow`.
    """
    evaluate = tables or Engine(app).table_outputs
    return {name: compile_flow(app, name, version=version, tables=evaluate)
            for name in app.flows}


def compile_flow(app: App, name: str, *, version: int = 0,
                 tables: TableEvaluator | None = None) -> CompiledFlow:
    """Compile the flow ``name`` of a checked ``app`` (one without errors).

    ``version`` is the published app version number stamped on instances.
    Raises :class:`FlowError` when the app has no such flow or the flow uses a
    state name twice (targets would be ambiguous).
    """
    item = app.flows.get(name)
    if item is None:
        raise FlowError(f"app has no flow '{name}'",
                        hint=f"flows: {', '.join(sorted(app.flows)) or '(none)'}")
    return _FlowCompiler(app, item, version, tables or Engine(app).table_outputs).build()


class _FlowCompiler:
    def __init__(self, app: App, item: CheckedItem, version: int,
                 tables: TableEvaluator) -> None:
        self.app, self.item, self.version = app, item, version
        self.flow: str = item.data["flow"]
        self.entity: str = item.data["entity"]
        self.bindings = {t.name: GenericTable(t, tables) for t in app.tables.values()
                         if t.entity == self.entity and t.name != self.entity}
        self.states: dict[str, StateDef] = {}
        self.timers: dict[str, TimerDef] = {}
        self.order = 0

    def build(self) -> CompiledFlow:
        data = self.item.data
        self._walk(data["states"], ("states",), ())
        globals_ = tuple(self._transition(t, ("global_transitions", i), None)
                         for i, t in enumerate(data.get("global_transitions") or []))
        self._check_targets(globals_)
        status_field, status_values = self._status()
        on_event, on_action, automatic = _index(globals_)
        return CompiledFlow(
            name=self.flow, entity=self.entity, file=self.item.file, version=self.version,
            initial=data["initial"], states=self.states, global_transitions=globals_,
            timers=self.timers, status_field=status_field, status_values=status_values,
            label=_label(data.get("label")), global_on_event=on_event,
            global_on_action=on_action, global_automatic=automatic,
            automatic=bool(automatic) or any(s.automatic or s.join for s in
                                             self.states.values()),
            sla_clocks=self._clocks(), escalations=self._escalations())

    def _clocks(self) -> dict[str, CompiledClock]:
        clocks = {}
        for name, config in (self.item.data.get("sla_clocks") or {}).items():
            target = self._expr(("sla_clocks", name, "target")) if "target" in config else None
            clocks[name] = CompiledClock(SlaClockDef.from_config(name, config), target)
        return clocks

    def _escalations(self) -> dict[str, EscalationDef]:
        out = {}
        for name, spec in (self.item.data.get("escalations") or {}).items():
            path: YamlPath = ("escalations", name)
            levels = []
            for i, level in enumerate(spec["levels"]):
                if "after" in level:
                    offset = parse_duration(str(level["after"]))
                else:
                    offset = -parse_duration(str(level["before"]))
                emit = level.get("emit")
                levels.append(EscalationLevel(
                    number=i + 1, offset=offset, notify=level.get("notify"),
                    emit=None if emit is None else emit.rpartition(".")[2],
                    path=path + ("levels", i)))
            out[name] = EscalationDef(
                name=name, path=path, label=_label(spec.get("label")),
                while_in=frozenset(spec.get("while_in") or ()), clock=spec.get("clock"),
                levels=tuple(levels))
        return out

    # -- states
    def _walk(self, states: dict[str, Any], base: YamlPath, region_node: tuple[str, ...]) -> None:
        for sname, spec in states.items():
            path = base + (sname,)
            if sname in self.states:
                raise FlowError(f"state '{sname}' is defined twice in flow {self.flow}",
                                file=self.item.file, path=_dotted(path),
                                hint="state names are unique across a flow, regions "
                                     "included; rename one of them")
            node = region_node + (sname,)
            order = self.order
            self.order += 1
            self.states[sname] = _placeholder(sname)  # reserves the name and file order
            regions = []
            for rname, region in (spec.get("regions") or {}).items():
                rpath = path + ("regions", rname)
                regions.append(RegionDef(rname, node + (rname,), rpath, region["initial"],
                                         tuple(region["states"])))
                self._walk(region["states"], rpath + ("states",), node + (rname,))
            transitions = tuple(self._transition(t, path + ("transitions", i), sname)
                                for i, t in enumerate(spec.get("transitions") or []))
            timers = tuple(self._timer(sname, t, path + ("timers", i), i)
                           for i, t in enumerate(spec.get("timers") or []))
            on_event, on_action, automatic = _index(transitions)
            self.states[sname] = StateDef(
                name=sname, node=node, path=path, order=order,
                final=bool(spec.get("final", False)), label=_label(spec.get("label")),
                on_enter=self._effects(path + ("on_enter",), f"flow {self.flow}: enter {sname}"),
                on_exit=self._effects(path + ("on_exit",), f"flow {self.flow}: exit {sname}"),
                transitions=transitions, timers=timers, regions=tuple(regions),
                join=spec.get("join"), on_event=on_event, on_action=on_action,
                automatic=automatic)

    def _transition(self, spec: dict[str, Any], path: YamlPath,
                    source: str | None) -> TransitionDef:
        event = spec.get("on")
        if event is not None and "." not in event:
            event = f"{self.entity}.{event}"
        form = spec.get("form")
        trigger = (f"on {event}" if event else f"action {spec['action']}" if "action" in spec
                   else "when")
        rule = f"flow {self.flow}: {source or '*'} -> {spec['to']} ({trigger})"
        return TransitionDef(
            path=path, source=source, target=spec["to"], event=event,
            action=spec.get("action"), roles=frozenset(spec.get("roles") or ()),
            guard=self._expr(path + ("guard",), boolean=True) if "guard" in spec else None,
            when=self._expr(path + ("when",), boolean=True) if "when" in spec else None,
            form=form, form_fields=self._form_fields(form),
            effects=self._effects(path + ("effects",), rule, spec.get("effects")),
            label=_label(spec.get("label")), rule=rule)

    def _timer(self, state: str, spec: dict[str, Any], path: YamlPath, index: int) -> TimerDef:
        timer_id = f"{state}/timers/{index}"
        rule = f"flow {self.flow}: timer {spec.get('name') or timer_id}"
        effects = list(self._effects(path + ("effects",), rule, spec.get("effects")))
        if "emit" in spec:
            effects.append(self._emit(spec["emit"], rule))
        timer = TimerDef(
            id=timer_id, state=state, path=path, name=spec.get("name"),
            after=self._expr(path + ("after",)) if "after" in spec else None,
            at=self._expr(path + ("at",)) if "at" in spec else None,
            target=spec.get("to"), effects=tuple(effects), rule=rule)
        self.timers[timer_id] = timer
        return timer

    def _check_targets(self, globals_: tuple[TransitionDef, ...]) -> None:
        """Every named state exists; a region's initial state lies inside the region."""
        def known(name: str | None, path: YamlPath) -> None:
            if name is not None and name not in self.states:
                raise FlowError(f"flow {self.flow} names an unknown state '{name}'",
                                file=self.item.file, path=_dotted(path),
                                hint="compile flows only from an app compiled without errors")
        known(self.item.data["initial"], ("initial",))
        for s in self.states.values():
            known(s.join, s.path + ("join",))
            for t in s.transitions:
                known(t.target, t.path + ("to",))
            for timer in s.timers:
                known(timer.target, timer.path + ("to",))
            for r in s.regions:
                known(r.initial, r.path + ("initial",))
                if self.states[r.initial].node[:len(r.node)] != r.node:
                    raise FlowError(f"initial state '{r.initial}' of region {r.name} is not "
                                    "one of the region's states", file=self.item.file,
                                    path=_dotted(r.path + ("initial",)),
                                    hint=f"pick one of: {', '.join(r.states)}")
        for t in globals_:
            known(t.target, t.path + ("to",))

    # -- effects and expressions
    def _effects(self, path: YamlPath, rule: str,
                 specs: list[dict[str, Any]] | None = None) -> tuple[EffectTemplate, ...]:
        if specs is None:
            specs = value_at(self.item.data, path) or []
        out: list[EffectTemplate] = []
        for i, spec in enumerate(specs):
            (key, value), = spec.items()
            out.extend(_EFFECTS[key](self, path + (i, key), value, rule))
        return tuple(out)

    def _set(self, path: YamlPath, fields: dict[str, str], rule: str) -> list[EffectTemplate]:
        return [SetTemplate(self.entity, fname, self._expr(path + (fname,)), rule)
                for fname in fields]

    def _emit(self, name: str, rule: str) -> fx.EmitEvent:
        entity, _, event = name.rpartition(".")
        return fx.EmitEvent(entity or self.entity, event, rule)

    def _expr(self, path: YamlPath, boolean: bool = False) -> CompiledExpr:
        node = self.item.exprs.get(path)
        if node is None:
            raise FlowError(f"expression at {_dotted(path)} was not checked",
                            file=self.item.file, path=_dotted(path),
                            hint="compile flows only from an app compiled without errors")
        emitter = Emitter(tables=dict(self.bindings))
        src = emitter.truthy(node) if boolean else emitter.emit(node)
        fn = compile_function(f"_flow_{self.flow}", [root_param(self.entity), NOW],
                              [f"return {src}"], emitter,
                              f"<flow {self.flow} {_dotted(path)} in {self.item.file}>")
        text = value_at(self.item.data, path)
        return CompiledExpr(fn, path, str(text), _line(node))

    def _form_fields(self, form: str | None) -> frozenset[str]:
        if form is None or form not in self.app.forms:
            return frozenset()
        return frozenset(f["field"] for section in self.app.forms[form].data["sections"]
                         for f in section["fields"])

    def _status(self) -> tuple[str | None, frozenset[str]]:
        entity = self.app.entities.get(self.entity)
        fdef = entity.fields.get(STATUS_FIELD) if entity else None
        if fdef is None or fdef.kind != "enum":
            return None, frozenset()
        return fdef.name, frozenset(v.value for v in fdef.enum_values)


# One builder per effect key (schema: an effect is a mapping with one key).
_EffectBuilder = Callable[[_FlowCompiler, YamlPath, Any, str], list[EffectTemplate]]
_EFFECTS: dict[str, _EffectBuilder] = {
    "set": lambda c, path, value, rule: c._set(path, value, rule),
    "tag": lambda c, path, value, rule: [fx.AddTag(c.entity, value, rule)],
    "untag": lambda c, path, value, rule: [fx.RemoveTag(c.entity, value, rule)],
    "emit": lambda c, path, value, rule: [c._emit(value, rule)],
    "notify": lambda c, path, value, rule: [fx.Notify(value, rule)],
    "request_dispatch": lambda c, path, value, rule: [fx.RequestDispatch(value, rule)],
    "start_flow": lambda c, path, value, rule: [fx.StartFlow(value, rule)],
}


def _index(transitions: tuple[TransitionDef, ...]) -> tuple[
        dict[str, tuple[TransitionDef, ...]], dict[str, tuple[TransitionDef, ...]],
        tuple[TransitionDef, ...]]:
    """Transitions by event, by action, and the automatic ones; declared order kept."""
    on_event: dict[str, list[TransitionDef]] = {}
    on_action: dict[str, list[TransitionDef]] = {}
    for t in transitions:
        if t.event is not None:
            on_event.setdefault(t.event, []).append(t)
        elif t.action is not None:
            on_action.setdefault(t.action, []).append(t)
    return ({k: tuple(v) for k, v in on_event.items()},
            {k: tuple(v) for k, v in on_action.items()},
            tuple(t for t in transitions if t.when is not None and t.event is None
                  and t.action is None))


def _placeholder(name: str) -> StateDef:
    return StateDef(name, (name,), (), -1, False, {}, (), (), (), (), (), None)


def _label(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    return dict(value) if isinstance(value, dict) else {"zh": value, "en": value}


def _line(node: ast.Expr) -> int:
    span = getattr(node, "span", None)
    return span.line if span is not None else 0


def _dotted(path: YamlPath) -> str:
    return ".".join(str(p) for p in path)
