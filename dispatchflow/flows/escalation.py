"""Escalation ladders, pure: when each level of a ladder fires, and whether a ladder runs.

A ladder (:class:`~.model.EscalationDef`) has an *anchor*: for a ``while_in``
ladder the instant the instance entered its stalled states, for a ``clock``
ladder the SLA clock's current deadline. Each level fires at
``anchor + offset`` (``after`` is a positive offset, ``before`` a negative one;
plain time, not working time: the notification's quiet hours hold messages
outside working hours). The durable side — timers, acknowledgement, what was
already sent — lives in :mod:`dispatchflow.platform.runtime.escalation`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from .instance import InstanceState
from .model import EscalationDef
from .sla import ClockState


def ladder_times(ladder: EscalationDef, anchor: datetime) -> list[tuple[int, datetime]]:
    """``(level_index, fire_at)`` for every level of ``ladder`` counted from ``anchor``.

    ``level_index`` counts from 0 in file order (the level's ``number`` is one
    more); the list is in time order because ``check`` requires the levels to
    be. Raises ValueError for a naive ``anchor``.
    """
    if anchor.tzinfo is None or anchor.utcoffset() is None:
        raise ValueError("ladder_times needs an aware anchor")
    return [(i, anchor + level.offset) for i, level in enumerate(ladder.levels)]


def in_stalled_state(ladder: EscalationDef, state: InstanceState) -> bool:
    """Whether a ``while_in`` ladder runs for an instance in ``state``.

    True while the instance has not ended and one of the ladder's states is
    active (as a leaf or as an enclosing parallel state). Always False for a
    ``clock`` ladder.
    """
    return not state.final and any(state.is_in(name) for name in ladder.while_in)


def clock_anchor(clock: ClockState | None) -> datetime | None:
    """The deadline a ``clock`` ladder counts from, or None while it must not run.

    A ladder runs while its clock counts: running, or breached and not paused
    (levels after the deadline still fire); a clock that has not started, is
    paused or has stopped has no anchor.
    """
    if clock is None or clock.deadline is None or clock.paused_since is not None:
        return None
    if clock.status not in ("running", "breached"):
        return None
    return clock.deadline


def plan_levels(ladder: EscalationDef, anchor: datetime, fired: Collection[int],
                now: datetime) -> tuple[list[tuple[int, datetime]], set[int]]:
    """The levels to arm for ``anchor`` at ``now``, and the levels still counted as fired.

    ``fired`` holds level numbers (from 1) already fired for an earlier anchor
    of the same stay. A fired level stays fired while its time under the new
    anchor has passed (a deadline moved earlier does not repeat an alert); if
    the new time lies ahead (the deadline moved later), it is armed again.
    Unfired levels are armed at their time, or at ``now`` when it has passed
    (they fire at once). Returns ``([(level_number, fire_at), ...], fired)``.
    """
    arm: list[tuple[int, datetime]] = []
    still: set[int] = set()
    for index, at in ladder_times(ladder, anchor):
        number = ladder.levels[index].number
        if number in fired and at <= now:
            still.add(number)
        else:
            arm.append((number, max(at, now)))
    return arm, still


__all__ = ["clock_anchor", "in_stalled_state", "ladder_times", "plan_levels"]
