"""SLA clocks (时效): a clock's state computed from its event log and a business calendar.

A clock is never stored as a running counter; :func:`compute_clock` replays the
clock's events (``start``, ``pause``, ``resume``, ``target_changed``, ``stop``)
up to ``now``, so the same log always gives the same state and a record's
history can be re-evaluated at any past instant. :func:`clock_events_from_history`
derives those events from a record's events and state changes using the clock's
``start_on``, ``stop_on`` and ``pause_in``.

Semantics:

* Events are applied in time order (the given order among equal instants);
  events after ``now`` are ignored. All events at one instant are applied before
  the clock is judged at that instant.
* Only ``start`` begins a clock; a second ``start`` is ignored, and a stopped
  clock stays stopped. ``pause``/``resume`` before the start decide whether the
  clock starts paused. A repeated ``pause`` (or ``resume``) is ignored.
* Elapsed time is working time of the clock's calendar, summed over the running
  stretches; a pause stops it.
* The **deadline** is the instant at which elapsed time reaches the target,
  counted from the same start: a ``target_changed`` (a priority change) keeps the
  elapsed time and recomputes the deadline, which may then lie in the past.
  While the clock is paused the deadline is projected as if it resumed at
  ``now``; for a stopped clock, as if it had resumed at the stop.
* ``warn_at`` is the same for ``warn_at × target`` of the clock definition.
* The clock is **breached** at the first instant at which elapsed time reaches
  the target then in force, unless a ``stop`` happens at or before that instant
  (stopping exactly at the deadline meets it). When a lower target is already
  exceeded, the breach happens at the change. A breach is a fact: raising the
  target afterwards moves the deadline but does not undo it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import groupby
from operator import itemgetter
from typing import Any, Literal, NamedTuple, get_args

from ..dsl.suggest import did_you_mean
from ..errors import DispatchflowError
from .calendar import BusinessCalendar

ClockEventKind = Literal["start", "stop", "pause", "resume", "target_changed"]
ClockStatus = Literal["not_started", "running", "paused", "breached", "stopped"]
_KINDS = frozenset(get_args(ClockEventKind))
_ZERO = timedelta(0)


class SlaClockError(DispatchflowError):
    """An SLA clock definition or its events are invalid."""


@dataclass(frozen=True)
class SlaClockDef:
    """One entry of a flow's ``sla_clocks``, parsed.

    ``target`` is the DSL expression text; the caller evaluates it and passes the
    resulting durations in the clock's events. ``calendar`` None means around
    the clock; ``warn_at`` is a fraction of the target (0-1) or None.
    """

    name: str
    start_on: str
    stop_on: frozenset[str]
    pause_in: frozenset[str] = frozenset()
    target: str | None = None
    calendar: str | None = None
    warn_at: float | None = None
    label: Any = None

    def __post_init__(self) -> None:
        if self.warn_at is not None and not 0 <= self.warn_at <= 1:
            raise SlaClockError(f"warn_at of SLA clock '{self.name}' must be between 0 and 1",
                                path=f"sla_clocks.{self.name}.warn_at",
                                hint="write a fraction of the target, e.g. 0.8")

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> SlaClockDef:
        """Parse ``sla_clocks: {name: config}`` of a flow file (already schema-checked).

        Raises :class:`SlaClockError` when ``start_on`` or ``stop_on`` is missing
        or ``warn_at`` is not a fraction.
        """
        where = f"sla_clocks.{name}"
        start_on, stop_on = config.get("start_on"), config.get("stop_on")
        if not isinstance(start_on, str) or not stop_on:
            raise SlaClockError(f"SLA clock '{name}' needs start_on and stop_on", path=where,
                                hint="e.g. start_on: work_order.created, "
                                     "stop_on: [work_order.completed]")
        warn = config.get("warn_at")
        return cls(name, start_on, frozenset(stop_on),
                   pause_in=frozenset(config.get("pause_in") or ()),
                   target=config.get("target"), calendar=config.get("calendar"),
                   warn_at=None if warn is None else float(warn), label=config.get("label"))

    @property
    def entity(self) -> str:
        """The entity whose events drive the clock (``work_order`` of ``work_order.created``)."""
        return self.start_on.split(".", 1)[0]


@dataclass(frozen=True)
class ClockEvent:
    """Something that happened to a clock at ``at`` (aware).

    ``target`` is the clock's target from then on: optional on ``start``,
    required on ``target_changed``, ignored otherwise.
    """

    at: datetime
    kind: ClockEventKind
    target: timedelta | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise SlaClockError(f"unknown clock event kind '{self.kind}'",
                                hint=did_you_mean(self.kind, _KINDS))
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise SlaClockError(f"clock event '{self.kind}' at {self.at} has no time zone",
                                hint="pass aware datetimes, e.g. with tzinfo=ZoneInfo(...)")
        if self.kind == "target_changed" and self.target is None:
            raise SlaClockError("a target_changed clock event needs the new target")
        if self.target is not None and self.target < _ZERO:
            raise SlaClockError(f"SLA target {self.target} is negative")


@dataclass(frozen=True)
class ClockState:
    """An SLA clock as of ``now``; datetimes are in the calendar's time zone.

    ``elapsed_working`` is working time counted so far (pauses excluded);
    ``deadline`` and ``warn_at`` are projected (see the module docstring);
    ``breached_at`` is when the target was first reached without a stop.
    """

    clock: str
    status: ClockStatus
    started_at: datetime | None = None
    elapsed_working: timedelta = _ZERO
    target: timedelta | None = None
    deadline: datetime | None = None
    warn_at: datetime | None = None
    breached_at: datetime | None = None
    paused_since: datetime | None = None
    stopped_at: datetime | None = None

    @property
    def met(self) -> bool | None:
        """For a stopped clock with a target: whether it stopped in time; else None."""
        if self.status != "stopped" or self.target is None:
            return None
        return self.breached_at is None

    @property
    def remaining_working(self) -> timedelta | None:
        """Working time left before the target (negative once exceeded), or None without one."""
        return None if self.target is None else self.target - self.elapsed_working


@dataclass
class _Replay:
    """Mutable state while replaying one clock's events (private to :func:`compute_clock`)."""

    calendar: BusinessCalendar
    started_at: datetime | None = None
    running_since: datetime | None = None
    paused_since: datetime | None = None
    paused_before_start: bool = False
    stopped_at: datetime | None = None
    target: timedelta | None = None
    closed: timedelta = _ZERO  # working time of the finished running stretches
    stretches: list[tuple[datetime, timedelta]] = field(default_factory=list)
    breached_at: datetime | None = None

    def elapsed_at(self, at: datetime) -> timedelta:
        if self.running_since is None:
            return self.closed
        return self.closed + self.calendar.working_time_between(self.running_since, at)

    def close_stretch(self, at: datetime) -> None:
        if self.running_since is not None:
            work = self.calendar.working_time_between(self.running_since, at)
            self.stretches.append((self.running_since, work))
            self.closed += work
            self.running_since = None

    def apply(self, at: datetime, event: ClockEvent) -> None:
        kind = event.kind
        if kind == "target_changed" or (kind == "start" and event.target is not None
                                        and self.started_at is None):
            self.target = event.target
        if self.started_at is None:
            if kind == "start":
                self.started_at = at
                if self.paused_before_start:
                    self.paused_since = at
                else:
                    self.running_since = at
            elif kind in ("pause", "resume"):
                self.paused_before_start = kind == "pause"
        elif kind == "pause" and self.running_since is not None:
            self.close_stretch(at)
            self.paused_since = at
        elif kind == "resume" and self.paused_since is not None:
            self.running_since, self.paused_since = at, None
        elif kind == "stop":
            self.close_stretch(at)
            self.stopped_at, self.paused_since = at, None

    def judge_until(self, before: datetime, inclusive: bool) -> None:
        """Record a breach while running up to ``before`` (strictly before unless ``inclusive``)."""
        if (self.breached_at is not None or self.target is None
                or self.running_since is None or self.closed >= self.target):
            return
        due = self.add(self.running_since, self.target - self.closed)
        if due < before or (inclusive and due == before):
            self.breached_at = due

    def judge_at(self, at: datetime) -> None:
        """Record a breach at ``at`` itself, after the events of that instant."""
        if (self.breached_at is None and self.target is not None and self.stopped_at is None
                and self.elapsed_at(at) >= self.target):
            self.breached_at = at

    def reached(self, amount: timedelta, resume_at: datetime) -> datetime:
        """When elapsed time reaches ``amount``, running on from ``resume_at`` if not yet."""
        counted = _ZERO
        for since, work in self.stretches:
            if counted + work >= amount:
                return self.add(since, amount - counted)
            counted += work
        origin = self.running_since or resume_at
        return self.add(origin, max(amount - counted, _ZERO))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        # Kept in UTC: comparing two datetimes of one zone ignores ``fold`` (PEP 495),
        # which would misorder instants in a DST fall-back hour.
        return self.calendar.add_working_time(start, duration).astimezone(UTC)


def compute_clock(clock_def: SlaClockDef, events: Iterable[ClockEvent],
                  calendar: BusinessCalendar | None, now: datetime) -> ClockState:
    """The state of ``clock_def``'s clock at ``now`` after replaying ``events``.

    ``calendar`` None counts plain time (UTC). Pure and deterministic: no wall
    clock is read. Raises ``ValueError`` for a naive ``now``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("compute_clock needs an aware 'now'")
    cal = calendar or BusinessCalendar.round_the_clock(UTC)
    replay = _Replay(cal)
    now = now.astimezone(UTC)
    timed = ((event.at.astimezone(UTC), event) for event in events)
    ordered = sorted((pair for pair in timed if pair[0] <= now), key=itemgetter(0))
    for at, group in groupby(ordered, key=itemgetter(0)):
        if replay.stopped_at is not None:
            break
        replay.judge_until(at, inclusive=False)
        for _, event in group:
            replay.apply(at, event)
        if replay.started_at is not None:
            replay.judge_at(at)
    tz = cal.tz
    if replay.started_at is None:
        return ClockState(clock_def.name, "not_started", target=replay.target)
    if replay.stopped_at is None:
        replay.judge_until(now, inclusive=True)
    end = replay.stopped_at or now
    elapsed = replay.elapsed_at(end)
    target = replay.target
    deadline = warn_at = None
    if target is not None:
        deadline = replay.reached(target, end)
        if clock_def.warn_at is not None:
            warn_at = replay.reached(target * clock_def.warn_at, end)
    status: ClockStatus
    if replay.stopped_at is not None:
        status = "stopped"
    elif replay.breached_at is not None:
        status = "breached"
    elif replay.paused_since is not None:
        status = "paused"
    else:
        status = "running"
    return ClockState(
        clock_def.name, status, started_at=_local(replay.started_at, tz),
        elapsed_working=elapsed, target=target, deadline=_local(deadline, tz),
        warn_at=_local(warn_at, tz), breached_at=_local(replay.breached_at, tz),
        paused_since=_local(replay.paused_since, tz), stopped_at=_local(replay.stopped_at, tz))


class HistoryEntry(NamedTuple):
    """One step of a record's history, as :func:`clock_events_from_history` reads it.

    ``event`` is the event's name (``work_order.accepted``; a bare ``accepted``
    means an event of the clock's entity) or None; ``state_entered`` the flow
    state entered by this step, if any; ``target`` the clock's target as
    evaluated after this step, when the caller knows it (None = unchanged).
    """

    at: datetime
    event: str | None
    state_entered: str | None = None
    target: timedelta | None = None


def clock_events_from_history(clock_def: SlaClockDef,
                              history: Iterable[Sequence[Any]]) -> list[ClockEvent]:
    """Translate a record's history into the clock's events, in history order.

    Each item is a :class:`HistoryEntry` or a plain ``(at, event, state_entered)``
    / ``(at, event, state_entered, target)`` tuple. An event named by
    ``start_on`` gives ``start`` (carrying the entry's target); a new target
    gives ``target_changed``; entering a ``pause_in`` state from outside gives
    ``pause``, leaving the ``pause_in`` states gives ``resume`` (moving between
    two of them gives nothing); an event in ``stop_on`` gives ``stop``. Within
    one entry they come in that order. A repeated ``start_on`` event gives no
    second ``start`` (only its new target, if any).
    """
    out: list[ClockEvent] = []
    paused = started = False
    target: timedelta | None = None
    prefix = clock_def.entity + "."
    for raw in history:
        entry = HistoryEntry(*raw)
        name = entry.event
        if name is not None and "." not in name:
            name = prefix + name
        new_target = entry.target if entry.target is not None and entry.target != target \
            else None
        if name == clock_def.start_on and not started:
            out.append(ClockEvent(entry.at, "start", entry.target))
            started = True
        elif new_target is not None:
            out.append(ClockEvent(entry.at, "target_changed", new_target))
        if entry.target is not None:
            target = entry.target
        if entry.state_entered is not None:
            now_paused = entry.state_entered in clock_def.pause_in
            if now_paused != paused:
                out.append(ClockEvent(entry.at, "pause" if now_paused else "resume"))
            paused = now_paused
        if name in clock_def.stop_on:
            out.append(ClockEvent(entry.at, "stop"))
    return out


def clock_calendar(clock_def: SlaClockDef, calendars: Mapping[str, BusinessCalendar],
                   default_tz: str | tzinfo = UTC) -> BusinessCalendar:
    """The calendar a clock counts in: its named calendar, or round the clock in ``default_tz``.

    Raises :class:`SlaClockError` (with a "did you mean") for an unknown name.
    """
    if clock_def.calendar is None:
        return BusinessCalendar.round_the_clock(default_tz)
    try:
        return calendars[clock_def.calendar]
    except KeyError:
        raise SlaClockError(
            f"SLA clock '{clock_def.name}' uses unknown calendar '{clock_def.calendar}'",
            path=f"sla_clocks.{clock_def.name}.calendar",
            hint=did_you_mean(clock_def.calendar, calendars) or
            "declare it under calendars in app.yaml") from None


def _local(at: datetime | None, tz: tzinfo) -> datetime | None:
    return None if at is None else at.astimezone(tz)
