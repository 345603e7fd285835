"""Which forms create records and which act on an existing one, and when they are offered.

A form acts on an existing record (it is *bound*) when a flow transition names
it (``form:``: submitting it takes that action) or when it says
``acts_on: existing`` (submitting it updates the record, e.g. a customer's
rating). A bound form is never offered as a create form: it opens from its
record, and only while its ``available_if`` holds for that record (and, for an
action form, while the flow offers the action; the platform decides that).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..dsl.codegen import compile_expression
from ..dsl.compiler import App
from .conditions import Condition, holds
from .schema import version_cached


@dataclass(frozen=True)
class FormUse:
    """How one form is used: ``action``/``flow`` are set for a flow action's form."""

    form: str
    entity: str
    bound: bool
    action: str | None = None
    flow: str | None = None


def form_uses(app: App) -> dict[str, FormUse]:
    """Every form of the app by name (built once per app version)."""
    return version_cached(app, ("form_uses",), lambda: _build(app))


def form_use(app: App, name: str) -> FormUse | None:
    """How the form ``name`` is used, or None if there is no such form."""
    return form_uses(app).get(name)


def create_forms(app: App) -> list[str]:
    """Names of the forms that create records, in bundle order."""
    return [n for n, u in form_uses(app).items() if not u.bound]


def bound_forms(app: App, entity: str) -> list[FormUse]:
    """The forms that act on an existing record of ``entity``, in bundle order."""
    return [u for u in form_uses(app).values() if u.bound and u.entity == entity]


def form_offered(app: App, name: str, record: Mapping[str, Any], now: datetime) -> bool:
    """Whether the bound form's ``available_if`` holds for ``record`` (true without one).

    A condition that cannot be evaluated counts as false: a form is offered
    only when the bundle's condition says so.
    """
    condition = version_cached(app, ("available_if", name), lambda: _condition(app, name))
    if condition is None:
        return True
    return holds(condition, record, now) is True


def _condition(app: App, name: str) -> Condition | None:
    item = app.forms[name]
    expr = item.exprs.get(("available_if",))
    if expr is None:
        return None
    return compile_expression(expr, [item.data["entity"]], f"<form {name}.available_if>",
                              boolean=True)


def _build(app: App) -> dict[str, FormUse]:
    actions: dict[str, tuple[str | None, str | None]] = {}
    for flow, item in app.flows.items():
        for transition in transitions(item.data):
            form = transition.get("form")
            if form and transition.get("action"):
                actions.setdefault(form, (flow, transition["action"]))
    out: dict[str, FormUse] = {}
    for name, item in app.forms.items():
        used_by, action = actions.get(name, (None, None))
        out[name] = FormUse(name, item.data["entity"],
                            action is not None or item.data.get("acts_on") == "existing",
                            action, used_by)
    return out


def action_label(app: App, entity: str, action: str) -> Mapping[str, str] | None:
    """The label the entity's flows give the action ``action`` (the first one found)."""
    for flow in app.flows.values():
        if flow.data.get("entity") != entity:
            continue
        for transition in transitions(flow.data):
            if transition.get("action") == action and transition.get("label"):
                label: Mapping[str, str] = transition["label"]
                return label
    return None


def transitions(flow: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every transition of a flow's data: global ones, then each state's (regions too)."""
    yield from flow.get("global_transitions") or []
    yield from _state_transitions(flow.get("states") or {})


def _state_transitions(states: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for state in states.values():
        yield from (state or {}).get("transitions") or []
        for region in ((state or {}).get("regions") or {}).values():
            yield from _state_transitions(region.get("states") or {})
