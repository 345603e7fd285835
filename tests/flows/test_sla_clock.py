"""SLA clocks: deadlines, pauses, target changes and breaches a person can check by hand.

Most cases use an office calendar (Mon-Fri 09:00-12:00 and 13:00-18:00 in
Shanghai, National Day 2026-10-01..07 off) and a resolution clock with a 4h
target warning at 75% (3h). The order arrives on Friday 2026-09-04 at 17:30:
30 minutes count on Friday, the clock goes on at Monday 09:00.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.flows.calendar import BusinessCalendar, build_calendars
from dispatchflow.flows.sla import (
    ClockEvent,
    ClockState,
    HistoryEntry,
    SlaClockDef,
    SlaClockError,
    clock_calendar,
    clock_events_from_history,
    compute_clock,
)

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "field-service"
H = timedelta(hours=1)
M = timedelta(minutes=1)

OFFICE = BusinessCalendar.from_config("office", {
    "working_hours": {day: ["09:00-12:00", "13:00-18:00"]
                      for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [f"2026-10-0{d}" for d in range(1, 8)],
    "extra_workdays": ["2026-10-10"],
}, "Asia/Shanghai")
BERLIN_OFFICE = BusinessCalendar.from_config("berlin", {
    "working_hours": {day: ["08:00-12:00", "13:00-17:00"]
                      for day in ("mon", "tue", "wed", "thu", "fri")},
}, "Europe/Berlin")

RESOLUTION = SlaClockDef.from_config("resolution", {
    "label": {"zh": "解决时效", "en": "Resolution"},
    "start_on": "work_order.created",
    "stop_on": ["work_order.completed", "work_order.cancelled"],
    "pause_in": ["waiting_customer", "waiting_parts"],
    "target": "4h",
    "calendar": "office",
    "warn_at": 0.75,
})


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def mon(hour: int, minute: int = 0) -> datetime:
    return sh(2026, 9, 7, hour, minute)


FRI = sh(2026, 9, 4, 17, 30)


def start(at: datetime, target: timedelta | None = 4 * H) -> ClockEvent:
    return ClockEvent(at, "start", target)


def pause(at: datetime) -> ClockEvent:
    return ClockEvent(at, "pause")


def resume(at: datetime) -> ClockEvent:
    return ClockEvent(at, "resume")


def stop(at: datetime) -> ClockEvent:
    return ClockEvent(at, "stop")


def changed(at: datetime, target: timedelta) -> ClockEvent:
    return ClockEvent(at, "target_changed", target)


def office_clock(events: list[ClockEvent], now: datetime) -> ClockState:
    return compute_clock(RESOLUTION, events, OFFICE, now)


@pytest.fixture(scope="module")
def example_app() -> App:
    result = compile_bundle(EXAMPLE)
    assert result.app is not None, result.diagnostics
    return result.app


# ------------------------------------------------------------------ hand-checked clocks


def test_clock_runs_over_the_weekend() -> None:
    state = office_clock([start(FRI)], now=mon(9, 15))
    assert state.status == "running"
    assert state.started_at == FRI
    assert state.elapsed_working == 45 * M            # Fri 17:30-18:00 + Mon 09:00-09:15
    assert state.deadline == mon(13, 30)              # 0.5h + 3h morning + 0.5h after lunch
    assert state.warn_at == mon(11, 30)               # 3h: 0.5h + Mon 09:00-11:30
    assert state.remaining_working == 3 * H + 15 * M
    assert state.breached_at is None and state.paused_since is None and state.met is None
    assert state.deadline.tzinfo is SH


def test_a_pause_moves_a_three_hour_deadline_past_lunch() -> None:
    # 0.5h Friday + Mon 09:00-11:30.
    assert office_clock([start(FRI, 3 * H)], now=mon(9, 0)).deadline == mon(11, 30)
    # Paused 10:00-11:00: 1.5h counted by 10:00, 1.5h left from 11:00 -> 11-12, 13-13:30.
    state = office_clock([start(FRI, 3 * H), pause(mon(10)), resume(mon(11))], now=mon(11, 5))
    assert state.deadline == mon(13, 30)
    # 3h30m uses up Monday morning exactly: due at 12:00, not at 13:00.
    assert office_clock([start(FRI, 210 * M)], now=mon(9, 0)).deadline == mon(12, 0)


def test_pause_pushes_the_deadline() -> None:
    events = [start(FRI), pause(mon(10)), resume(mon(11))]
    state = office_clock(events, now=mon(11, 30))
    assert state.status == "running"
    assert state.elapsed_working == 2 * H             # 0.5 + 1 (09-10) + 0.5 (11-11:30)
    assert state.deadline == mon(14, 30)              # 2h left: 11:30-12:00, 13:00-14:30
    assert state.warn_at == mon(13, 30)               # 3h: 1.5h by 10:00, 1.5h from 11:00


def test_paused_clock_projects_as_if_resumed_now() -> None:
    state = office_clock([start(FRI), pause(mon(10))], now=mon(10, 30))
    assert state.status == "paused"
    assert state.paused_since == mon(10)
    assert state.elapsed_working == 90 * M
    assert state.deadline == mon(14, 0)               # 2.5h from 10:30: 10:30-12:00, 13:00-14:00
    assert state.warn_at == mon(12, 0)                # 1.5h from 10:30 uses up the morning


def test_priority_change_recomputes_from_the_same_start() -> None:
    events = [start(FRI), changed(mon(9, 30), 2 * H)]
    state = office_clock(events, now=mon(9, 45))
    assert state.status == "running"
    assert state.elapsed_working == 75 * M
    assert state.target == 2 * H
    assert state.deadline == mon(10, 30)              # 0.5h Friday + 1.5h Monday
    assert state.warn_at == mon(10, 0)                # 1.5h
    breached = office_clock(events, now=mon(10, 30))
    assert breached.status == "breached" and breached.breached_at == mon(10, 30)


def test_stopping_exactly_at_the_deadline_meets_it() -> None:
    events = [start(FRI), changed(mon(9, 30), 2 * H)]
    met = office_clock([*events, stop(mon(10, 30))], now=mon(12))
    assert met.status == "stopped" and met.met is True
    assert met.breached_at is None and met.stopped_at == mon(10, 30)
    assert met.elapsed_working == 2 * H
    late = office_clock([*events, stop(mon(10, 31))], now=mon(12))
    assert late.status == "stopped" and late.met is False
    assert late.breached_at == mon(10, 30)
    assert late.elapsed_working == 2 * H + M


def test_lower_target_already_exceeded_breaches_at_the_change() -> None:
    state = office_clock([start(FRI), changed(mon(11), 2 * H)], now=mon(11, 5))
    assert state.status == "breached"
    assert state.deadline == mon(10, 30)              # from the same start, in the past
    assert state.breached_at == mon(11)               # the clock could not breach earlier


def test_raising_the_target_does_not_undo_a_breach() -> None:
    state = office_clock([start(FRI, 2 * H), changed(mon(11), 8 * H)], now=mon(11, 5))
    assert state.breached_at == mon(10, 30)
    assert state.status == "breached"
    assert state.deadline == mon(17, 30)              # 0.5h + 3h + 13:00-17:30


def test_order_during_the_holiday_counts_from_the_next_workday() -> None:
    created = sh(2026, 10, 2, 10, 0)                  # National Day
    state = office_clock([start(created)], now=sh(2026, 10, 5, 12, 0))
    assert state.status == "running"
    assert state.started_at == created
    assert state.elapsed_working == timedelta(0)
    assert state.deadline == sh(2026, 10, 8, 14, 0)   # Thu 09-12 and 13-14
    assert state.warn_at == sh(2026, 10, 8, 12, 0)    # 3h end with the morning


def test_round_the_clock_response(example_app: App) -> None:
    clocks = example_app.flows["work_order"].data["sla_clocks"]
    response = SlaClockDef.from_config("response", clocks["response"])
    calendars = build_calendars(example_app.calendars, example_app.timezone)
    cal = clock_calendar(response, calendars)
    created = sh(2026, 10, 1, 22, 0)                  # a holiday does not matter 24x7
    state = compute_clock(response, [start(created)], cal, now=sh(2026, 10, 2, 1, 0))
    assert state.deadline == sh(2026, 10, 2, 2, 0)
    assert state.warn_at == sh(2026, 10, 2, 1, 12)    # 80% of 4h = 3h12m
    at_deadline = compute_clock(response, [start(created)], cal, now=sh(2026, 10, 2, 2, 0))
    assert at_deadline.status == "breached" and at_deadline.breached_at == sh(2026, 10, 2, 2)
    plain = compute_clock(response, [start(created)], None, now=sh(2026, 10, 2, 1, 0))
    assert plain.deadline == state.deadline and plain.deadline.tzinfo is UTC


def test_example_resolution_clock_with_make_up_day_and_pause(example_app: App) -> None:
    clock = SlaClockDef.from_config(
        "resolution", example_app.flows["work_order"].data["sla_clocks"]["resolution"])
    assert clock.pause_in == {"exception", "waiting_parts"} and clock.calendar == "standard"
    standard = clock_calendar(clock, build_calendars(example_app.calendars, "Asia/Shanghai"))
    created = sh(2026, 9, 19, 19, 0)                  # Saturday evening
    history = [
        (created, "work_order.created", "new", 24 * H),
        (sh(2026, 9, 21, 8, 0), "work_order.exception_reported", "exception"),
        (sh(2026, 9, 21, 13, 0), "work_order.exception_resolved", "in_service"),
    ]
    events = clock_events_from_history(clock, history)
    state = compute_clock(clock, events, standard, now=sh(2026, 9, 21, 13, 0))
    # Sat 19-20 (1h) + make-up Sun 09-20 with Monday's hours (11h) = 12h; paused all
    # Monday morning; 12h left from Mon 13:00: Mon 13-20 (7h), Tue 08-12 (4h), Tue 13-14.
    assert state.elapsed_working == 12 * H
    assert state.deadline == sh(2026, 9, 22, 14, 0)


# ------------------------------------------------------------------ history -> events


def test_history_becomes_clock_events() -> None:
    history = [
        HistoryEntry(FRI, "work_order.created", "new", 4 * H),
        HistoryEntry(sh(2026, 9, 4, 17, 40), "work_order.triaged", "triaged"),
        HistoryEntry(mon(10), "work_order.customer_unreachable", "waiting_customer"),
        HistoryEntry(mon(10, 20), None, "waiting_parts"),       # pause to pause: nothing
        (mon(11), "customer_replied", "in_service"),              # bare name, plain tuple
        (mon(14, 30), "work_order.completed", "completed"),
        (mon(15), "work_order.closed", "closed"),
    ]
    events = clock_events_from_history(RESOLUTION, history)
    assert events == [start(FRI), pause(mon(10)), resume(mon(11)), stop(mon(14, 30))]
    state = office_clock(events, now=mon(16))
    # 4h counted by 14:30 exactly (0.5 + 1 + 1 + 1.5): stopped at the deadline, met.
    assert state.status == "stopped" and state.met is True
    assert state.elapsed_working == 4 * H and state.deadline == mon(14, 30)


def test_history_target_changes_and_repeated_start() -> None:
    history = [
        (FRI, "work_order.created", "new", 4 * H),
        (mon(9, 30), "work_order.priority_changed", None, 2 * H),
        (mon(9, 40), "work_order.updated", None, 2 * H),          # same target: nothing
        (mon(9, 50), "work_order.created", None, 3 * H),          # no second start
    ]
    assert clock_events_from_history(RESOLUTION, history) == [
        start(FRI), changed(mon(9, 30), 2 * H), changed(mon(9, 50), 3 * H)]


def test_clock_created_in_a_pause_state_starts_paused() -> None:
    history = [(FRI, "work_order.created", "waiting_customer", 4 * H),
               (mon(9), "work_order.customer_replied", "triaged")]
    events = clock_events_from_history(RESOLUTION, history)
    assert events == [start(FRI), pause(FRI), resume(mon(9))]
    state = office_clock(events, now=mon(10))
    assert state.elapsed_working == H
    assert state.deadline == mon(14, 0)               # 09-12, 13-14


# ------------------------------------------------------------------ replay rules


def test_not_started() -> None:
    assert office_clock([], now=mon(9)).status == "not_started"
    early = office_clock([pause(FRI), changed(FRI, 2 * H)], now=mon(9))
    assert early.status == "not_started" and early.target == 2 * H
    assert office_clock([start(mon(10))], now=mon(9)).status == "not_started"


def test_redundant_and_late_events_change_nothing() -> None:
    base = [start(FRI), pause(mon(10)), resume(mon(11))]
    noisy = [start(FRI), pause(mon(10)), pause(mon(10, 15)), resume(mon(11)),
             resume(mon(11, 10)), start(mon(11, 20), 1 * H), stop(sh(2026, 9, 8, 9))]
    assert office_clock(noisy, now=mon(11, 30)) == office_clock(base, now=mon(11, 30))
    after_stop = [*base, stop(mon(12)), resume(mon(13)), start(mon(14))]
    assert office_clock(after_stop, now=mon(15)) == office_clock([*base, stop(mon(12))],
                                                                 now=mon(15))


def test_order_of_the_input_does_not_matter() -> None:
    events = [start(FRI), pause(mon(10)), resume(mon(11)), changed(mon(11, 30), 5 * H)]
    shuffled = list(events)
    random.Random(4).shuffle(shuffled)
    assert office_clock(shuffled, now=mon(12)) == office_clock(events, now=mon(12))
    # The same instants in another zone give the same clock.
    in_utc = [ClockEvent(e.at.astimezone(UTC), e.kind, e.target) for e in events]
    assert office_clock(in_utc, now=mon(12)) == office_clock(events, now=mon(12))


def test_zero_target_breaches_at_the_start() -> None:
    state = office_clock([start(FRI, timedelta(0))], now=FRI)
    assert state.status == "breached" and state.breached_at == FRI


def test_no_target_never_breaches() -> None:
    state = office_clock([start(FRI, None)], now=sh(2026, 12, 1, 9))
    assert state.status == "running" and state.deadline is None and state.warn_at is None


# ------------------------------------------------------------------ daylight saving time


def test_berlin_clock_across_the_spring_change() -> None:
    created = datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN)        # Friday, CET
    state = compute_clock(RESOLUTION, [start(created, 2 * H)], BERLIN_OFFICE,
                          now=datetime(2026, 3, 30, 8, 30, tzinfo=BERLIN))
    assert state.elapsed_working == 90 * M                        # Fri 16-17, Mon 08-08:30
    assert state.deadline == datetime(2026, 3, 30, 9, 0, tzinfo=BERLIN)
    assert state.deadline.utcoffset() == 2 * H                    # CEST


def test_breach_inside_the_repeated_autumn_hour() -> None:
    always = BusinessCalendar.round_the_clock("Europe/Berlin")
    created = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)         # 22:00 UTC, CEST
    events = [start(created, 150 * M)]                            # due 02:30 CEST (first pass)
    first_pass = datetime(2026, 10, 25, 2, 15, tzinfo=BERLIN)     # 00:15 UTC
    second_pass = datetime(2026, 10, 25, 2, 15, tzinfo=BERLIN, fold=1)  # 01:15 UTC
    assert compute_clock(RESOLUTION, events, always, first_pass).status == "running"
    late = compute_clock(RESOLUTION, events, always, second_pass)
    assert late.status == "breached"
    assert late.breached_at is not None
    assert late.breached_at.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_pause_around_the_autumn_change_counts_real_time() -> None:
    always = BusinessCalendar.round_the_clock("Europe/Berlin")
    events = [start(datetime(2026, 10, 24, 22, 0, tzinfo=BERLIN), 6 * H),
              pause(datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)),
              resume(datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN))]
    state = compute_clock(RESOLUTION, events, always, datetime(2026, 10, 25, 1, 0,
                                                               tzinfo=BERLIN))
    # 2h before the pause, 4h real time after 01:00 CEST: the clock shows 02:00 twice.
    assert state.deadline == datetime(2026, 10, 25, 4, 0, tzinfo=BERLIN)
    assert state.deadline.utcoffset() == H


# ------------------------------------------------------------------ errors


def test_event_and_definition_errors() -> None:
    with pytest.raises(SlaClockError, match="has no time zone"):
        ClockEvent(datetime(2026, 9, 4, 17, 30), "start")
    with pytest.raises(SlaClockError, match="needs the new target"):
        ClockEvent(FRI, "target_changed")
    with pytest.raises(SlaClockError) as caught:
        ClockEvent(FRI, "paused")  # type: ignore[arg-type]
    assert (caught.value.message, caught.value.hint) == (
        "unknown clock event kind 'paused'", "did you mean 'pause'?")
    with pytest.raises(SlaClockError, match="negative"):
        ClockEvent(FRI, "start", -H)
    with pytest.raises(ValueError, match="aware"):
        compute_clock(RESOLUTION, [], OFFICE, datetime(2026, 9, 7, 9))
    with pytest.raises(SlaClockError) as caught:
        SlaClockDef.from_config("x", {"start_on": "work_order.created",
                                      "stop_on": ["work_order.completed"], "warn_at": 1.5})
    assert caught.value.path == "sla_clocks.x.warn_at"
    with pytest.raises(SlaClockError, match="needs start_on and stop_on"):
        SlaClockDef.from_config("x", {"start_on": "work_order.created"})
    with pytest.raises(SlaClockError) as caught:
        clock_calendar(SlaClockDef("x", "work_order.created", frozenset({"work_order.done"}),
                                   calendar="ofice"), {"office": OFFICE})
    assert str(caught.value) == ("SLA clock 'x' uses unknown calendar 'ofice' "
                                 "(hint: did you mean 'office'?)")


# ------------------------------------------------------------------ properties

OFFSETS = st.lists(st.integers(0, 20 * 24 * 60), min_size=0, max_size=6, unique=True)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300 * 24 * 60), OFFSETS, st.integers(0, 30 * 24 * 60),
       st.integers(1, 60 * 60))
def test_elapsed_time_is_working_time_minus_pauses(start_min: int, marks: list[int],
                                                   now_min: int, target_min: int) -> None:
    begin = datetime(2026, 1, 1, tzinfo=UTC) + start_min * M
    now = begin + now_min * M
    bounds = [begin + m * M for m in sorted(marks)]
    events = [start(begin, target_min * M)]
    running: list[tuple[datetime, datetime]] = []
    since: datetime | None = begin
    for i, at in enumerate(bounds):
        events.append(pause(at) if i % 2 == 0 else resume(at))
        if i % 2 == 0:
            assert since is not None
            running.append((since, at))
            since = None
        else:
            since = at
    if since is not None:
        running.append((since, max(since, now)))
    state = office_clock(events, now)
    expected = sum((OFFICE.working_time_between(a, min(b, now)) for a, b in running
                    if a <= now), timedelta(0))
    assert state.elapsed_working == expected
    target = target_min * M
    assert (state.breached_at is not None) == (expected >= target)
    if state.status in ("running", "paused"):
        assert state.elapsed_working < target and state.deadline is not None
        # With no further pauses, the clock reaches its target exactly at the deadline.
        past = [e for e in events if e.at <= now]
        later = office_clock([*past, resume(now)], max(now, state.deadline))
        assert later.elapsed_working == target and later.status == "breached"
