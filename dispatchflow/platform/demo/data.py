"""The demo's data files: who lives in the demo city and what they do.

A bundle may carry a ``demo/`` folder (not published: the bundle loader reads
only its known folders) with two files, read by ``serve --demo``:

- ``seed.yaml``: regions, customers, technicians (a ``user`` key marks the one
  a demo account is linked to; the others are simulated) and sample orders,
  each optionally moved along the lifecycle (``until``, ``accept_by``);
- ``city.yaml``: what simulated people do — the lifecycle by status, the
  completion report, ratings, and how new requests arrive over the channels.

The reference bundle's files are ``examples/field-service/demo/``. Loading
checks the shape and raises :class:`DemoDataError` naming the file and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...errors import DispatchflowError

SEED_FILE, CITY_FILE = "seed.yaml", "city.yaml"

#: Durations of the lifecycle that are computed per job, not written in minutes.
COMPUTED_DURATIONS = ("travel", "handling")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT_MINUTES = {"m": 1.0, "h": 60.0, "d": 1440.0}


class DemoDataError(DispatchflowError):
    """A demo data file is missing or malformed."""


@dataclass(frozen=True)
class Person:
    """A customer or technician of the seed: its ``key``, the demo ``user`` linked to it (if
    any), the record's field values and, for customers, the categories they request."""

    key: str
    values: dict[str, Any]
    user: str | None = None
    requests: tuple[str, ...] = ()


@dataclass(frozen=True)
class SampleOrder:
    """A sample order: field values, its customer's key, and how far to move it."""

    key: str
    values: dict[str, Any]
    customer: str
    until: str | None = None
    accept_by: str | None = None
    set: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Seed:
    """Everything ``seed.yaml`` describes."""

    regions: tuple[dict[str, Any], ...]
    customers: tuple[Person, ...]
    technicians: tuple[Person, ...]
    orders: tuple[SampleOrder, ...]


@dataclass(frozen=True)
class LifecycleStep:
    """What a simulated person does to an order in one status, and after how long.

    ``after`` is minutes, or ``"travel"`` / ``"handling"``; ``by`` is ``technician``
    or ``customer``; either ``action`` (a flow action, with ``form`` naming the
    completion values) or ``rate`` (the rating field the customer writes).
    """

    status: str
    by: str
    after: float | str
    action: str | None = None
    form: str | None = None
    rate: str | None = None
    when_free: bool = False
    move_to_order: str | None = None


@dataclass(frozen=True)
class CityScript:
    """Everything ``city.yaml`` describes (see the file for the meaning of each part)."""

    entity: str
    status_field: str
    roles: dict[str, tuple[str, str]]  # "technician"/"customer" -> (role, user field)
    accept: str
    reject: str
    lifecycle: dict[str, LifecycleStep]
    completion: dict[str, Any]
    rating: dict[str, Any]
    intake: dict[str, Any]


def minutes(text: Any, where: str) -> float | str:
    """``"5m"``/``"2h"``/``"1d"`` -> minutes; ``travel``/``handling`` stay as they are."""
    if text in COMPUTED_DURATIONS:
        return str(text)
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text))
    if match is None:
        raise DemoDataError(f"{where}: {text!r} is not a duration",
                            hint="write minutes, hours or days (5m, 2h, 1d), or travel/handling")
    return float(match.group(1)) * _UNIT_MINUTES[match.group(2)]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise DemoDataError(f"cannot read the demo data: {exc.strerror or exc}",
                            file=str(path)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DemoDataError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                            line=mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict):
        raise DemoDataError("the file must hold a mapping", file=str(path))
    return data


def _items(data: dict[str, Any], key: str, file: Path) -> list[dict[str, Any]]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DemoDataError(f"'{key}' must be a list of mappings", file=str(file), path=key)
    return items


def _person(item: dict[str, Any], file: Path, path: str) -> Person:
    values = {k: v for k, v in item.items() if k not in ("key", "user", "requests")}
    if not item.get("key"):
        raise DemoDataError("every entry needs a 'key'", file=str(file), path=path)
    return Person(str(item["key"]), values, item.get("user"),
                  tuple(item.get("requests") or ()))


def load_seed(folder: Path) -> Seed:
    """Read ``seed.yaml`` of ``folder``; raises DemoDataError (file and key) when malformed."""
    file = folder / SEED_FILE
    data = _read(file)
    customers = tuple(_person(i, file, f"customers[{n}]")
                      for n, i in enumerate(_items(data, "customers", file)))
    technicians = tuple(_person(i, file, f"technicians[{n}]")
                        for n, i in enumerate(_items(data, "technicians", file)))
    known = {c.key for c in customers}
    orders = []
    for n, item in enumerate(_items(data, "orders", file)):
        if item.get("customer") not in known:
            raise DemoDataError(f"unknown customer {item.get('customer')!r}", file=str(file),
                                path=f"orders[{n}].customer",
                                hint=f"customers: {', '.join(sorted(known))}")
        values = {k: v for k, v in item.items()
                  if k not in ("key", "customer", "until", "accept_by", "set", "at")}
        if item.get("at") is not None:
            values["location"] = item["at"]
        orders.append(SampleOrder(str(item.get("key") or n), values, item["customer"],
                                  item.get("until"), item.get("accept_by"),
                                  dict(item.get("set") or {})))
    return Seed(tuple(_items(data, "regions", file)), customers, technicians, tuple(orders))


def load_city(folder: Path) -> CityScript:
    """Read ``city.yaml`` of ``folder``; raises DemoDataError (file and key) when malformed."""
    file = folder / CITY_FILE
    data = _read(file)
    try:
        lifecycle = {}
        for status, spec in (data["lifecycle"] or {}).items():
            where = f"{file.name}: lifecycle.{status}.after"
            if spec.get("by") not in ("technician", "customer"):
                raise DemoDataError("'by' must be technician or customer", file=str(file),
                                    path=f"lifecycle.{status}.by")
            if not spec.get("action") and not spec.get("rate"):
                raise DemoDataError("a step needs an 'action' or 'rate'", file=str(file),
                                    path=f"lifecycle.{status}")
            lifecycle[str(status)] = LifecycleStep(
                str(status), spec["by"], minutes(spec.get("after", 0), where),
                spec.get("action"), spec.get("form"), spec.get("rate"),
                bool(spec.get("when_free")), spec.get("move_to_order"))
        roles = {who: (str(data[who]["role"]), str(data[who]["user_field"]))
                 for who in ("technician", "customer")}
        return CityScript(str(data["entity"]), str(data["status_field"]), roles,
                          str(data["offers"]["accept"]), str(data["offers"]["reject"]),
                          lifecycle, dict(data["completion"]), dict(data["rating"]),
                          dict(data["intake"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise DemoDataError(f"missing or malformed part: {exc}", file=str(file),
                            hint="compare with examples/field-service/demo/city.yaml") from exc
