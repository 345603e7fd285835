"""The fixed library of builtin functions the DSL may call.

Each :class:`Builtin` has a typing function (argument types -> result type or an
error message) and a pure Python implementation; the code generator inlines a
few (``min``, ``max``, ``len``, ``coalesce``, ``contains_any``) for speed. Every
implementation returns None when a required argument is None (null
propagates), except ``coalesce``. ``now()`` is not here: it is the evaluation
time passed to every compiled function, never the wall clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from . import types as T

Typer = Callable[[list[T.Type]], "T.Type | str"]


@dataclass(frozen=True)
class Builtin:
    """A builtin: ``signature`` and ``doc`` are shown in errors and docs/dsl.md."""

    name: str
    signature: str
    doc: str
    typer: Typer
    impl: Callable[..., Any] | None


REGISTRY: dict[str, Builtin] = {}


def builtin(name: str, signature: str, doc: str, typer: Typer):
    """Register ``impl`` as builtin ``name`` (decorator)."""
    def register(impl: Callable[..., Any] | None) -> Callable[..., Any] | None:
        REGISTRY[name] = Builtin(name, signature, doc, typer, impl)
        return impl
    return register


# ------------------------------------------------------------------ typing helpers


def _arity(args: list[T.Type], lo: int, hi: int | None = None) -> str | None:
    hi = lo if hi is None else hi
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}" if hi < 99 else f"at least {lo}"
        noun = "argument" if want == "1" else "arguments"
        return f"takes {want} {noun}, got {len(args)}"
    return None


def _expect(args: list[T.Type], *kinds: str | tuple[str, ...]) -> str | None:
    for i, (arg, kind) in enumerate(zip(args, kinds, strict=False)):
        allowed = kind if isinstance(kind, tuple) else (kind,)
        if arg.is_error or arg.kind == T.NULL:
            continue
        if arg.kind not in allowed:
            names = " or ".join(allowed)
            return f"argument {i + 1} must be {names}, got {arg}"
    return None


def _fixed(result: T.Type, lo: int, *kinds: str | tuple[str, ...],
           hi: int | None = None, never_null: bool = False) -> Typer:
    """A typer for fixed argument kinds; the result is nullable when a required
    argument is (null propagates), unless the function ``never_null``."""
    def typer(args: list[T.Type]) -> T.Type | str:
        problem = _arity(args, lo, hi) or _expect(args, *kinds)
        if problem:
            return problem
        return result if never_null else T.merge_null(result, *args[:lo])
    return typer


def _same_orderable(args: list[T.Type]) -> T.Type | str:
    if problem := _arity(args, 1, 99):
        return problem
    first = next((a for a in args if not a.is_error and a.kind != T.NULL), None)
    if first is None:
        return T.T_NUMBER
    if first.kind not in T.ORDERABLE:
        return f"cannot take min/max of {first}"
    for i, a in enumerate(args):
        if not T.same_kind(first, a):
            return f"argument {i + 1} is {a}, expected {first.base_name()} like argument 1"
    return T.merge_null(first.non_null(), *args)


# ------------------------------------------------------------------ implementations


@builtin("distance_km", "distance_km(a: geo, b: geo) -> distance",
         "Great-circle (haversine) distance between two geo points, in km.",
         _fixed(T.T_DISTANCE, 2, T.GEO, T.GEO))
def distance_km(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    if type(a) is dict and type(b) is dict:  # the runtime form: the hot path of dispatch
        lat1, lng1, lat2, lng2 = a["lat"], a["lng"], b["lat"], b["lng"]
    else:
        lat1, lng1 = _latlng(a)
        lat2, lng2 = _latlng(b)
    p1, p2 = _radians(lat1), _radians(lat2)
    h = _sin((p2 - p1) / 2) ** 2 + _cos(p1) * _cos(p2) * _sin(_radians(lng2 - lng1) / 2) ** 2
    return 12742.0 * _asin(_sqrt(h))


_radians, _sin, _cos, _asin, _sqrt = math.radians, math.sin, math.cos, math.asin, math.sqrt


def _latlng(point: Any) -> tuple[float, float]:
    if isinstance(point, dict):
        return float(point["lat"]), float(point["lng"])
    return float(point[0]), float(point[1])


def _text_of(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value).lower()
    return str(value).lower()


@builtin("contains_any", "contains_any(text: string | list, words: list) -> bool",
         "True if the text (case-insensitive) or list contains any of the words.",
         lambda a: _arity(a, 2) or _expect(a, (T.STRING, T.LIST), T.LIST) or T.T_BOOL)
def contains_any(text: Any, words: Any) -> bool:
    if text is None or not words:
        return False
    hay = _text_of(text)
    return any(str(w).lower() in hay for w in words)


@builtin("contains_all", "contains_all(text: string | list, words: list) -> bool",
         "True if the text (case-insensitive) or list contains every one of the words.",
         lambda a: _arity(a, 2) or _expect(a, (T.STRING, T.LIST), T.LIST) or T.T_BOOL)
def contains_all(text: Any, words: Any) -> bool:
    if text is None:
        return False
    hay = _text_of(text)
    return all(str(w).lower() in hay for w in (words or ()))


def _between(unit_seconds: float) -> Callable[[Any, Any], float | None]:
    def between(a: Any, b: Any) -> float | None:
        if a is None or b is None:
            return None
        if isinstance(a, date) and not isinstance(a, datetime):
            return float((b - a).days) * 86400 / unit_seconds
        return (b - a).total_seconds() / unit_seconds
    return between


def _between_typer(args: list[T.Type]) -> T.Type | str:
    problem = _arity(args, 2) or _expect(args, (T.DATETIME, T.DATE), (T.DATETIME, T.DATE))
    if problem:
        return problem
    kinds = {a.kind for a in args if not a.is_error and a.kind != T.NULL}
    if len(kinds) > 1:
        return "needs two datetimes or two dates; convert with date_of(...)"
    return T.merge_null(T.T_NUMBER, *args)


for _name, _unit in (("minutes_between", 60), ("hours_between", 3600),
                     ("days_between", 86400)):
    builtin(_name, f"{_name}(start: datetime, end: datetime) -> number",
            f"{_name.split('_')[0].capitalize()} from start to end (negative if end is earlier);"
            " both datetimes or both dates.", _between_typer)(_between(_unit))


def _duration_ctor(unit_seconds: int) -> Callable[[Any], timedelta | None]:
    def make(n: Any) -> timedelta | None:
        return None if n is None else timedelta(seconds=float(n) * unit_seconds)
    return make


for _name, _unit in (("minutes", 60), ("hours", 3600), ("days", 86400)):
    builtin(_name, f"{_name}(n: number) -> duration", f"A duration of n {_name}.",
            _fixed(T.T_DURATION, 1, T.NUMBER))(_duration_ctor(_unit))


@builtin("in_minutes", "in_minutes(d: duration) -> number", "A duration as minutes.",
         _fixed(T.T_NUMBER, 1, T.DURATION))
def in_minutes(d: Any) -> float | None:
    return None if d is None else d.total_seconds() / 60


@builtin("in_hours", "in_hours(d: duration) -> number", "A duration as hours.",
         _fixed(T.T_NUMBER, 1, T.DURATION))
def in_hours(d: Any) -> float | None:
    return None if d is None else d.total_seconds() / 3600


@builtin("km", "km(n: number) -> distance", "A distance of n kilometres.",
         _fixed(T.T_DISTANCE, 1, T.NUMBER))
def km(n: Any) -> float | None:
    return None if n is None else float(n)


@builtin("hour_of", "hour_of(t: datetime) -> number", "Hour of day (0-23) in t's timezone.",
         _fixed(T.T_NUMBER, 1, T.DATETIME))
def hour_of(t: Any) -> int | None:
    return None if t is None else t.hour


@builtin("weekday", "weekday(t: datetime | date) -> number", "Day of week, 1 = Monday.",
         _fixed(T.T_NUMBER, 1, (T.DATETIME, T.DATE)))
def weekday(t: Any) -> int | None:
    return None if t is None else t.isoweekday()


@builtin("date_of", "date_of(t: datetime) -> date", "The calendar date of t in t's timezone.",
         _fixed(T.T_DATE, 1, T.DATETIME))
def date_of(t: Any) -> date | None:
    return None if t is None else t.date()


builtin("lower", "lower(s: string) -> string", "Lower-case text.",
        _fixed(T.T_STRING, 1, T.STRING))(lambda s: None if s is None else s.lower())
builtin("upper", "upper(s: string) -> string", "Upper-case text.",
        _fixed(T.T_STRING, 1, T.STRING))(lambda s: None if s is None else s.upper())
builtin("trim", "trim(s: string) -> string", "Text without leading/trailing spaces.",
        _fixed(T.T_STRING, 1, T.STRING))(lambda s: None if s is None else s.strip())
builtin("starts_with", "starts_with(s: string, prefix: string) -> bool",
        "True if s starts with prefix.", _fixed(T.T_BOOL, 2, T.STRING, T.STRING,
                                                never_null=True))(
    lambda s, p: bool(s is not None and p is not None and s.startswith(p)))
builtin("ends_with", "ends_with(s: string, suffix: string) -> bool",
        "True if s ends with suffix.", _fixed(T.T_BOOL, 2, T.STRING, T.STRING,
                                              never_null=True))(
    lambda s, p: bool(s is not None and p is not None and s.endswith(p)))
builtin("len", "len(x: string | list) -> number", "Number of characters or items.",
        _fixed(T.T_NUMBER, 1, (T.STRING, T.LIST)))(lambda x: None if x is None else len(x))


@builtin("round", "round(x: number, digits: number = 0) -> number",
         "x rounded half away from zero to the given decimal digits.",
         _fixed(T.T_NUMBER, 1, T.NUMBER, T.NUMBER, hi=2))
def round_(x: Any, digits: Any = 0) -> float | None:
    if x is None:
        return None
    factor = 10 ** int(digits or 0)
    return math.copysign(math.floor(abs(x) * factor + 0.5), x) / factor


@builtin("abs", "abs(x: number | duration | distance) -> same", "Absolute value.",
         lambda a: _arity(a, 1) or _expect(a, (T.NUMBER, T.DURATION, T.DISTANCE)) or a[0])
def abs_(x: Any) -> Any:
    return None if x is None else abs(x)


def _minmax(fn: Callable[..., Any]) -> Callable[..., Any]:
    def impl(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        return fn(args)
    return impl


builtin("min", "min(a, b, ...) -> same", "Smallest of values of one orderable type.",
        _same_orderable)(_minmax(min))
builtin("max", "max(a, b, ...) -> same", "Largest of values of one orderable type.",
        _same_orderable)(_minmax(max))


def _coalesce_typer(args: list[T.Type]) -> T.Type | str:
    if problem := _arity(args, 2, 99):
        return problem
    result: T.Type | None = T.T_NULL
    for i, a in enumerate(args):
        merged = T.unify(result, a) if result is not None else None
        if merged is None:
            return f"argument {i + 1} is {a}, which does not match {result}"
        result = merged
    assert result is not None
    last = args[-1]
    return result.with_null(last.nullable, True) if not last.nullable else \
        result.with_null(True, True)


@builtin("coalesce", "coalesce(a, b, ...) -> same", "The first argument that is not null.",
         _coalesce_typer)
def coalesce(*args: Any) -> Any:
    for a in args:
        if a is not None:
            return a
    return None
