"""Effects: what rules ask the platform to do, as plain immutable data.

Named tuples (cheap to build on the hot path, easy to serialise). ``rule`` is
the name of the rule that produced the effect, for the record's timeline.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class SetField(NamedTuple):
    entity: str
    field: str
    value: Any
    rule: str


class AddTag(NamedTuple):
    entity: str
    tag: str
    rule: str


class RemoveTag(NamedTuple):
    entity: str
    tag: str
    rule: str


class EmitEvent(NamedTuple):
    entity: str
    event: str
    rule: str


class Notify(NamedTuple):
    notification: str
    rule: str


class StartFlow(NamedTuple):
    flow: str
    rule: str


class RequestDispatch(NamedTuple):
    policy: str | None
    rule: str


Effect = SetField | AddTag | RemoveTag | EmitEvent | Notify | StartFlow | RequestDispatch


def describe(effect: Effect) -> str:
    """One line for timelines and ``dispatchflow test`` output."""
    if isinstance(effect, SetField):
        return f"set {effect.entity}.{effect.field} = {effect.value!r}"
    if isinstance(effect, AddTag):
        return f"tag {effect.entity} {effect.tag!r}"
    if isinstance(effect, RemoveTag):
        return f"untag {effect.entity} {effect.tag!r}"
    if isinstance(effect, EmitEvent):
        return f"emit {effect.entity}.{effect.event}"
    if isinstance(effect, Notify):
        return f"notify {effect.notification}"
    if isinstance(effect, StartFlow):
        return f"start flow {effect.flow}"
    return f"request dispatch using {effect.policy or '(default policy)'}"
