"""The events a flow instance is fed: the input vocabulary of :func:`.transition.apply`.

Something happened to the record (:class:`EventOccurred`), a user took an
action (:class:`ActionTaken`), a timer came due (:class:`TimerFired`), or the
record changed and the automatic transitions should be looked at again
(:class:`RecordChanged`). :data:`Event` is any one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EventOccurred:
    """An event happened to the record (``work_order.accepted``; a bare name is the entity's)."""

    name: str


@dataclass(frozen=True, slots=True)
class ActionTaken:
    """A user took a named action. ``form_values``: the action form's fields, validated."""

    action: str
    actor_roles: frozenset[str] | tuple[str, ...]
    form_values: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer came due.

    ``step_set`` is the :attr:`~.outcome.TimerRequest.state_step` it was set with.
    """

    timer_id: str
    step_set: int


@dataclass(frozen=True, slots=True)
class RecordChanged:
    """The record changed: re-evaluate the automatic (``when``) transitions."""


Event = EventOccurred | ActionTaken | TimerFired | RecordChanged
