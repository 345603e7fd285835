"""Business calendars (工作日历): working-time arithmetic in a calendar's time zone.

A calendar is parsed once from ``app.yaml`` (:meth:`BusinessCalendar.from_config`)
and then answers four questions, exactly to the microsecond:

* :meth:`~BusinessCalendar.is_working` -- is this instant inside working hours?
* :meth:`~BusinessCalendar.add_working_time` -- when has ``duration`` of working
  time elapsed after ``start``? (an SLA deadline)
* :meth:`~BusinessCalendar.working_time_between` -- how much working time lies
  between two instants? (an SLA clock's elapsed time)
* :meth:`~BusinessCalendar.next_working_instant` -- when does work (re)start?

Semantics, fixed here once for every caller:

* Working time is **real elapsed time** inside the working ranges. A range is read
  in the calendar's wall-clock time on each date, then turned into two instants;
  across a DST change a range therefore lasts what a clock on the wall would
  show (``01:00-04:00`` on Berlin's spring-forward Sunday is 2 hours, on the
  fall-back Sunday 4 hours). A wall time that does not exist (inside the
  spring-forward gap) is read as the instant the clocks jump; an ambiguous one
  (the fall-back hour) as its first occurrence.
* Ranges are half-open, ``[start, end)``: 09:00 is working time, 12:00 of a
  ``09:00-12:00`` range is not.
* ``add_working_time(start, d)`` is the *earliest* instant at which ``d`` of
  working time has elapsed. A deadline that uses up a range exactly lands on the
  range's end (12:00), not on the next range's start (13:00). A zero duration
  returns ``start`` itself, even outside working hours.
* A date in ``holidays`` has no working time. A date in ``extra_workdays`` that
  would otherwise be closed (调休上班, usually a Sunday) works the hours of
  Monday -- or of the weekday given as ``extra_workday_hours`` to
  :meth:`~BusinessCalendar.from_config`; when that weekday is closed, of the
  first open weekday from Monday on. An extra workday that is open anyway keeps
  its own hours.
* A calendar without ``working_hours`` works around the clock (holidays, if any,
  still close their dates); a calendar with ``working_hours`` but no working time
  in a week is refused, since no deadline could ever be reached in it.

Cost. An ordinary week (no holiday, no extra workday, no UTC-offset change)
holds exactly the weekly pattern's working time, so runs of them are skipped
with one multiplication; other weeks and days are computed once and memoised.
A 30-working-day deadline takes about 0.1 ms the first time and 10-15 us after.
The offset changes of a zone are found once per process and year by sampling the
offset every 5 days and bisecting, which is exact while no two changes lie within
5 days of each other (since 1970 the closest pair in the tz database is 6.96
days apart).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..dsl.compiler import App
from ..dsl.diagnostics import Diagnostic, DiagnosticBag
from ..dsl.source import SourceFile
from ..dsl.yaml_loader import load_yaml
from ..errors import DispatchflowError

#: Weekday keys of ``working_hours``, Monday first (index = ``date.weekday()``).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_SECOND = 1_000_000  # microseconds
_DAY = 86_400 * _SECOND
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_RANGE = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_MEMO_LIMIT = 50_000  # days remembered per calendar (zone-years overall) before a reset
_SAMPLE_STEP = 5 * 86_400  # seconds between UTC-offset samples, see _zone_year
_WHOLE_DAY = ((0, 86_400),)

Hours = tuple[tuple[int, int], ...]
"""One day's working ranges: (start, end) in seconds after local midnight, sorted."""

Span = tuple[int, int]
"""A working interval [start, end) in microseconds since the Unix epoch."""

_CLOSED: tuple[tuple[Span, ...], int] = ((), 0)


class CalendarError(DispatchflowError):
    """A business calendar in ``app.yaml`` is invalid (``path`` says where)."""


@dataclass(frozen=True, eq=False)
class BusinessCalendar:
    """A weekly working-hours pattern with holidays and make-up workdays, in one time zone.

    Build it with :meth:`from_config` (or :meth:`round_the_clock`); the direct
    constructor takes already-parsed values and checks them the same way.
    Immutable apart from an internal memo of per-day working intervals, so one
    instance can serve every request and worker.
    """

    name: str
    tz: tzinfo
    week: tuple[Hours, ...]
    holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    extra_workday_hours: int = 0  # index (0 = Monday) of the weekday extra workdays work
    label: Any = None
    is_round_the_clock: bool = field(init=False)
    _week_total: int = field(init=False, repr=False)  # microseconds in an ordinary week
    _special: tuple[int, ...] = field(init=False, repr=False)  # ordinals of listed dates
    _days: dict[int, tuple[tuple[Span, ...], int]] = field(
        default_factory=dict, init=False, repr=False)
    _weeks: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _runs: dict[int, tuple[int, bool]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        where = f"calendars.{self.name}"
        if len(self.week) != 7:
            raise CalendarError(f"calendar '{self.name}' needs hours for 7 weekdays, "
                                f"got {len(self.week)}", path=where)
        for day, hours in zip(WEEKDAYS, self.week, strict=True):
            _check_hours(hours, f"{where}.working_hours.{day}")
        if not any(self.week):
            raise CalendarError(
                f"calendar '{self.name}' has no working time on any weekday",
                path=f"{where}.working_hours",
                hint="give at least one day a range such as [\"09:00-18:00\"], or leave "
                     "working_hours out for a round-the-clock calendar")
        both = sorted(self.holidays & self.extra_workdays)
        if both:
            raise CalendarError(
                f"calendar '{self.name}': {both[0].isoformat()} is both a holiday and an "
                "extra workday", path=f"{where}.extra_workdays",
                hint="keep the date in only one of the two lists")
        if not 0 <= self.extra_workday_hours < 7:
            raise CalendarError("extra_workday_hours must be a weekday index 0-6", path=where)
        if not self.week[self.extra_workday_hours]:  # a closed day: the first open one instead
            object.__setattr__(self, "extra_workday_hours",
                               next(i for i, hours in enumerate(self.week) if hours))
        plain = all(hours == _WHOLE_DAY for hours in self.week) and not self.holidays
        object.__setattr__(self, "is_round_the_clock", plain)
        object.__setattr__(self, "_week_total",
                           sum(e - s for hours in self.week for s, e in hours) * _SECOND)
        object.__setattr__(self, "_special", tuple(sorted(
            d.toordinal() for d in self.holidays | self.extra_workdays)))

    # ------------------------------------------------------------------ building

    @classmethod
    def from_config(
        cls,
        name: str,
        config: Mapping[str, Any],
        default_tz: str | tzinfo,
        *,
        extra_workday_hours: str = "mon",
    ) -> BusinessCalendar:
        """Parse one calendar of ``app.yaml`` (``calendars: {name: config}``).

        ``default_tz`` is the app's ``timezone`` (used when the calendar names
        none); ``extra_workday_hours`` is the weekday (``mon`` .. ``sun``) whose
        hours a make-up workday works. Dates may be ``date`` objects or
        ``YYYY-MM-DD`` text. Raises :class:`CalendarError` with the offending
        path for an unknown zone, a malformed or overlapping time range, a bad
        date, or a calendar without any working time.
        """
        where = f"calendars.{name}"
        tz = _zone(config.get("timezone") or default_tz, f"{where}.timezone")
        hours_cfg = config.get("working_hours")
        if hours_cfg is None:
            week: tuple[Hours, ...] = (_WHOLE_DAY,) * 7
        elif isinstance(hours_cfg, Mapping):
            unknown = sorted(set(hours_cfg) - set(WEEKDAYS))
            if unknown:
                raise CalendarError(f"unknown weekday '{unknown[0]}' in working_hours",
                                    path=f"{where}.working_hours",
                                    hint="use mon, tue, wed, thu, fri, sat or sun")
            week = tuple(_parse_day(hours_cfg.get(day), f"{where}.working_hours.{day}")
                         for day in WEEKDAYS)
        else:
            raise CalendarError("working_hours must map weekdays to lists of time ranges",
                                path=f"{where}.working_hours")
        if extra_workday_hours not in WEEKDAYS:
            raise CalendarError(f"unknown weekday '{extra_workday_hours}' for extra workdays",
                                path=where, hint="use mon, tue, wed, thu, fri, sat or sun")
        return cls(name, tz, week,
                   holidays=_dates(config.get("holidays"), f"{where}.holidays"),
                   extra_workdays=_dates(config.get("extra_workdays"),
                                         f"{where}.extra_workdays"),
                   extra_workday_hours=WEEKDAYS.index(extra_workday_hours),
                   label=config.get("label"))

    @classmethod
    def round_the_clock(cls, tz: str | tzinfo = UTC,
                        name: str = "round_the_clock") -> BusinessCalendar:
        """A calendar that always works: working time is plain elapsed time."""
        return cls(name, _zone(tz, f"calendars.{name}.timezone"), (_WHOLE_DAY,) * 7)

    # ------------------------------------------------------------------ queries

    def is_working(self, at: datetime) -> bool:
        """Whether the aware instant ``at`` lies inside working time (ranges are [start, end))."""
        t = _to_us(at)
        if self.is_round_the_clock:
            return True
        return any(s <= t < e for s, e in self._day(self._ordinal(t))[0])

    def next_working_instant(self, at: datetime) -> datetime:
        """``at`` itself when it is working time, else the start of the next working range.

        The result is in the calendar's time zone.
        """
        t = _to_us(at)
        if self.is_round_the_clock:
            return _from_us(t, self.tz)
        ordinal = self._ordinal(t)
        while True:
            for s, e in self._day(ordinal)[0]:
                if e > t:
                    return _from_us(max(s, t), self.tz)
            ordinal += 1

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which ``duration`` of working time has elapsed after ``start``.

        ``start`` must be aware; it may lie outside working hours (counting then
        begins at the next working range). The result is in the calendar's time
        zone. Raises ``ValueError`` for a naive ``start`` or a negative duration.
        """
        t = _to_us(start)
        remaining = duration // _ONE_US
        if remaining < 0:
            raise ValueError(f"working time to add must not be negative, got {duration}")
        if remaining == 0 or self.is_round_the_clock:
            return _from_us(t + remaining, self.tz)
        ordinal = self._ordinal(t)
        end, remaining = _consume(self._day(ordinal)[0], t, remaining)
        ordinal += 1
        week_total = self._week_total
        while end is None:
            if _is_monday(ordinal):
                if remaining > week_total:
                    weeks = self._ordinary_weeks(ordinal, (remaining - 1) // week_total)
                    remaining -= weeks * week_total
                    ordinal += 7 * weeks
                week = self._week(ordinal)
                if week < remaining:
                    remaining -= week
                    ordinal += 7
                    continue
            spans, total = self._day(ordinal)
            if total < remaining:
                remaining -= total
                ordinal += 1
            else:
                end, remaining = _consume(spans, spans[0][0], remaining)
        return _from_us(end, self.tz)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time inside [a, b); negative when ``b`` is before ``a``.

        Both instants must be aware (``ValueError`` otherwise).
        """
        ta, tb = _to_us(a), _to_us(b)
        if tb < ta:
            return -self.working_time_between(b, a)
        if self.is_round_the_clock:
            return timedelta(microseconds=tb - ta)
        first, last = self._ordinal(ta), self._ordinal(tb)
        if first == last:
            return timedelta(microseconds=_clipped(self._day(first)[0], ta, tb))
        total = _clipped(self._day(first)[0], ta, tb) + _clipped(self._day(last)[0], ta, tb)
        ordinal = first + 1
        while ordinal < last:
            if _is_monday(ordinal) and ordinal + 7 <= last:
                weeks = self._ordinary_weeks(ordinal, (last - ordinal) // 7)
                total += weeks * self._week_total
                ordinal += 7 * weeks
                if ordinal + 7 <= last:
                    total += self._week(ordinal)
                    ordinal += 7
                    continue
                if ordinal >= last:
                    break
            total += self._day(ordinal)[1]
            ordinal += 1
        return timedelta(microseconds=total)

    # ------------------------------------------------------------------ days

    def hours_on(self, day: date) -> Hours:
        """The working ranges of a local date (seconds after midnight), holidays applied."""
        if day in self.holidays:
            return ()
        hours = self.week[day.weekday()]
        if not hours and day in self.extra_workdays:
            return self.week[self.extra_workday_hours]
        return hours

    def _ordinal(self, t: int) -> int:
        """The proleptic ordinal of the local date holding instant ``t``."""
        return _EPOCH_ORDINAL + (t + _offset_at(self.tz, t)) // _DAY

    def _day(self, ordinal: int) -> tuple[tuple[Span, ...], int]:
        """(working spans, their total) of one local date, in epoch microseconds."""
        cached = self._days.get(ordinal)
        if cached is not None:
            return cached
        hours = self.hours_on(date.fromordinal(ordinal))
        local = (ordinal - _EPOCH_ORDINAL) * _DAY  # the date's midnight read as if in UTC
        if not hours:
            day = _CLOSED
        elif _next_change(self.tz, local - _DAY, local + 2 * _DAY) is None:
            midnight = local - _offset_at(self.tz, local)
            spans = tuple((midnight + s * _SECOND, midnight + e * _SECOND) for s, e in hours)
            day = (spans, sum(e - s for s, e in spans))
        else:  # the UTC offset changes on or next to this date: read each boundary alone
            pairs = ((self._wall(ordinal, s), self._wall(ordinal, e)) for s, e in hours)
            spans = tuple((s, e) for s, e in pairs if s < e)
            day = (spans, sum(e - s for s, e in spans))
        _remember(self._days, ordinal, day)
        return day

    def _week(self, monday: int) -> int:
        """Total working microseconds of the seven dates from ``monday`` on."""
        total = self._weeks.get(monday)
        if total is None:
            local = (monday - _EPOCH_ORDINAL) * _DAY
            if _next_change(self.tz, local - _DAY, local + 9 * _DAY) is None:
                total = sum(e - s for i in range(7)
                            for s, e in self.hours_on(date.fromordinal(monday + i))) * _SECOND
            else:
                total = sum(self._day(monday + i)[1] for i in range(7))
            _remember(self._weeks, monday, total)
        return total

    def _ordinary_weeks(self, monday: int, limit: int) -> int:
        """How many whole weeks from ``monday`` (at most ``limit``) are ordinary.

        An ordinary week has no listed date (holiday or extra workday) and no UTC
        offset change, so it holds exactly the weekly pattern's working time and
        is skipped without looking at its days.
        """
        cached = self._runs.get(monday)
        if cached is not None and (cached[1] or cached[0] >= limit):
            return min(cached[0], limit)
        bound = monday + 7 * limit
        i = bisect_left(self._special, monday)
        if i < len(self._special):
            bound = min(bound, self._special[i])
        local = (monday - _EPOCH_ORDINAL) * _DAY
        change = _next_change(self.tz, local - _DAY,
                              (bound - _EPOCH_ORDINAL) * _DAY + 2 * _DAY)
        if change is not None:  # dates from two days before the change on are not ordinary
            bound = min(bound, _EPOCH_ORDINAL + (change - 2 * _DAY) // _DAY)
        run = max(0, (bound - monday) // 7)
        _remember(self._runs, monday, (run, run < limit))  # complete when cut short
        return run

    def _wall(self, ordinal: int, seconds: int) -> int:
        """The instant (epoch microseconds) of a wall-clock time on a local date."""
        extra_days, rest = divmod(seconds, 86_400)
        day = date.fromordinal(ordinal + extra_days)
        wall = datetime(day.year, day.month, day.day, rest // 3600, rest // 60 % 60, rest % 60,
                        tzinfo=self.tz)
        first, second = _offset_us(wall), _offset_us(wall.replace(fold=1))
        local = (ordinal - _EPOCH_ORDINAL) * _DAY + seconds * _SECOND
        if first >= second:  # an ordinary wall time, or a repeated one: its first occurrence
            return local - first
        # In a spring-forward gap the wall time does not exist (fold=0 reads it with
        # the old offset, fold=1 with the new one): take the instant the clocks jump.
        lo, hi = (local - second) // _SECOND, (local - first) // _SECOND
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _offset_us(datetime.fromtimestamp(mid, self.tz)) == second:
                hi = mid
            else:
                lo = mid
        return hi * _SECOND


def build_calendars(config: Mapping[str, Any] | None,
                    default_tz: str | tzinfo) -> dict[str, BusinessCalendar]:
    """Every calendar of ``app.yaml`` (``App.calendars``) by name; see ``from_config``."""
    return {name: BusinessCalendar.from_config(name, cfg or {}, default_tz)
            for name, cfg in (config or {}).items()}


# ---------------------------------------------------------------------- parsing


def _zone(value: str | tzinfo, path: str) -> tzinfo:
    if isinstance(value, tzinfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown time zone '{value}'", path=path,
                            hint="use an IANA name such as Asia/Shanghai or UTC") from exc


def _parse_day(value: Any, path: str) -> Hours:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise CalendarError("a weekday's hours must be a list of time ranges", path=path,
                            hint='write ["09:00-12:00", "13:00-18:00"]')
    hours = sorted(_parse_range(item, f"{path}[{i}]") for i, item in enumerate(value))
    _check_hours(tuple(hours), path)
    return tuple(hours)


def _parse_range(text: Any, path: str) -> tuple[int, int]:
    match = _RANGE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise CalendarError(f"'{text}' is not a time range", path=path,
                            hint='write HH:MM-HH:MM in 24-hour time, e.g. "09:00-18:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise CalendarError(f"'{text}' has an impossible time", path=path,
                            hint="hours go from 00 to 23, minutes from 00 to 59; "
                                 "24:00 may only end a range")
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= start:
        hint = ("write 24:00 for midnight at the end of the day" if end == 0 else
                "a range may not cross midnight: split it into ...-24:00 on this day "
                "and 00:00-... on the next")
        raise CalendarError(f"time range '{text}' ends before it starts", path=path, hint=hint)
    return start, end


def _check_hours(hours: Hours, path: str) -> None:
    previous_end = 0
    for start, end in hours:
        if not 0 <= start < end <= 86_400:
            raise CalendarError(f"range {start}-{end}s is not inside one day", path=path)
        if start < previous_end:
            raise CalendarError("time ranges overlap or are out of order", path=path,
                                hint="list each day's ranges in order without overlaps, "
                                     'e.g. ["09:00-12:00", "13:00-18:00"]')
        previous_end = end


def _dates(value: Any, path: str) -> frozenset[date]:
    out: set[date] = set()
    for i, item in enumerate(value or ()):
        if isinstance(item, date) and not isinstance(item, datetime):
            out.add(item)
            continue
        try:
            out.add(date.fromisoformat(str(item)))
        except ValueError as exc:
            raise CalendarError(f"'{item}' is not a date", path=f"{path}[{i}]",
                                hint="write YYYY-MM-DD, e.g. 2026-10-01") from exc
    return frozenset(out)


# ---------------------------------------------------------------------- arithmetic


def _to_us(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} is naive; business-calendar arithmetic needs aware datetimes")
    return (at - _EPOCH) // _ONE_US


def _from_us(t: int, tz: tzinfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=t)).astimezone(tz)


def _offset_us(at: datetime) -> int:
    offset = at.utcoffset()
    return 0 if offset is None else offset // _ONE_US


# ---------------------------------------------------------------------- UTC offsets


class _ZoneYear(NamedTuple):
    """A time zone's UTC offsets during one (UTC) year, all in microseconds."""

    first: int                 # offset in force when the year begins
    changes: tuple[int, ...]   # instants at which the offset changes, ascending
    offsets: tuple[int, ...]   # offset in force from each change on


_ZONE_YEARS: dict[tuple[tzinfo, int], _ZoneYear] = {}


def _zone_year(tz: tzinfo, year: int) -> _ZoneYear:
    """The offset changes of ``tz`` in ``year``, found once per process and remembered.

    The offset is sampled every 5 days and each change located to the second by
    bisection. That finds every change as long as no two lie within 5 days of
    each other: since 1970 the closest pairs in the tz database are 6.96 days
    apart (Brazil 2000, Gaza and Hebron's predicted rules).
    """
    key = (tz, year)
    cached = _ZONE_YEARS.get(key)
    if cached is not None:
        return cached
    begin = (date(year, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86_400 - 1
    end = (date(year + 1, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86_400 - 1
    if isinstance(tz, timezone):  # a fixed offset never changes
        samples = [begin]
    else:
        samples = [*range(begin, end, _SAMPLE_STEP), end]
    offsets = [_offset_us(datetime.fromtimestamp(second, tz)) for second in samples]
    found: list[tuple[int, int]] = []
    for (lo, before), (hi, after) in pairwise(zip(samples, offsets, strict=True)):
        if before == after:
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _offset_us(datetime.fromtimestamp(mid, tz)) == before:
                lo = mid
            else:
                hi = mid
        found.append((hi * _SECOND, after))
    cached = _ZoneYear(offsets[0], tuple(c for c, _ in found), tuple(o for _, o in found))
    _remember(_ZONE_YEARS, key, cached)
    return cached


def _utc_year(t: int) -> int:
    return date.fromordinal(_EPOCH_ORDINAL + t // _DAY).year


def _offset_at(tz: tzinfo, t: int) -> int:
    """The UTC offset of ``tz`` at instant ``t`` (microseconds)."""
    zone = _zone_year(tz, _utc_year(t))
    i = bisect_right(zone.changes, t)
    return zone.offsets[i - 1] if i else zone.first


def _next_change(tz: tzinfo, after: int, before: int) -> int | None:
    """The first instant in [after, before) at which the offset of ``tz`` changes, or None."""
    for year in range(_utc_year(after), _utc_year(before) + 1):
        changes = _zone_year(tz, year).changes
        i = bisect_left(changes, after)
        if i < len(changes):
            return changes[i] if changes[i] < before else None
    return None


def _is_monday(ordinal: int) -> bool:
    return ordinal % 7 == 1  # date.fromordinal(1) is Monday 0001-01-01


def _consume(spans: tuple[Span, ...], t: int, remaining: int) -> tuple[int | None, int]:
    """Walk ``spans`` from ``t``: (instant where ``remaining`` runs out or None, what is left)."""
    for s, e in spans:
        if e <= t:
            continue
        s = max(s, t)
        if remaining <= e - s:
            return s + remaining, 0
        remaining -= e - s
    return None, remaining


def _clipped(spans: tuple[Span, ...], lo: int, hi: int) -> int:
    return sum(max(0, min(e, hi) - max(s, lo)) for s, e in spans)


def _remember(memo: dict, key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def calendar_diagnostics(app: App) -> list[Diagnostic]:
    """Problems of ``app.yaml``'s business calendars as diagnostics (E8006).

    ``dispatchflow check`` adds these to the compiler's: the schema cannot see
    overlapping or overnight ranges, and the ``dsl`` layer cannot import
    ``flows``. Positions come from the error's dotted path in ``app.yaml``.
    """
    bag = DiagnosticBag()
    text = app.sources.get("app.yaml", "")
    source = SourceFile("app.yaml", text)
    bag.add_source(source)
    doc = load_yaml(source, DiagnosticBag())
    for name, cfg in (app.calendars or {}).items():
        try:
            BusinessCalendar.from_config(name, cfg or {}, app.timezone)
        except CalendarError as exc:
            path = tuple(int(p) if p.isdigit() else p for p in (exc.path or "").split(".") if p)
            span = doc.span(path) if doc is not None else None
            bag.error("E8006", f"calendar {name}: {exc.message}", "app.yaml", span, exc.hint)
    return bag.sorted()
