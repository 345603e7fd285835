"""Fixtures for the dispatch tests: the reference bundle's policies and a synthetic city.

Records are plain runtime dicts, as the platform hands them to the engine: geo
fields are ``{"lat", "lng"}`` dicts, ``skills`` a list, ids strings.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.rules.engine import Engine

REFERENCE_BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "field-service"
CATEGORIES = ["aircon", "water_heater", "plumbing", "electrical", "appliance", "elevator",
              "hvac", "other"]
#: People's Square, Shanghai.
CENTER = (31.23, 121.47)


@pytest.fixture(scope="session")
def reference_engine() -> Engine:
    """An Engine over the reference bundle (its dispatch policies live in rules/dispatch.rules)."""
    result = compile_bundle(REFERENCE_BUNDLE)
    assert result.app is not None, [d.message for d in result.diagnostics][:5]
    return Engine(result.app)


def offset(lat: float, lng: float, north_km: float, east_km: float) -> dict[str, float]:
    """A geo value ``north_km`` north and ``east_km`` east of ``(lat, lng)`` (flat-earth, small)."""
    return {"lat": lat + north_km / 111.195,
            "lng": lng + east_km / (111.195 * math.cos(math.radians(lat)))}


def random_point(rng: random.Random, radius_km: float,
                 center: tuple[float, float] = CENTER) -> dict[str, float]:
    """A point uniformly distributed over a disc of ``radius_km`` around ``center``."""
    d = radius_km * math.sqrt(rng.random())
    a = rng.random() * 2 * math.pi
    return offset(center[0], center[1], d * math.cos(a), d * math.sin(a))


def make_city(seed: int, technicians: int, orders: int, radius_km: float = 12.0,
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Technicians and work orders for the reference bundle's policies (seeded)."""
    rng = random.Random(seed)
    techs = []
    for i in range(technicians):
        techs.append({
            "id": f"t{i:04d}",
            "location": random_point(rng, radius_km),
            "on_duty": rng.random() < 0.7,
            "skills": rng.sample(CATEGORIES, rng.randint(1, 3)),
            "level": rng.randint(1, 5),
            "open_tasks": rng.randint(0, 3),
            "rating_30d": None if rng.random() < 0.15 else rng.choice([0.8, 0.85, 0.9, 0.95, 1.0]),
            "on_time_rate": None if rng.random() < 0.2 else rng.choice([0.7, 0.9, 1.0]),
            "consecutive_anomalies": rng.choice([0, 0, 0, 1, 3]),
        })
    work = [{"id": f"o{i:04d}", "location": random_point(rng, radius_km),
             "category": rng.choice(CATEGORIES), "required_level": rng.randint(1, 3),
             "priority": rng.choice(["P1", "P2", "P3", "P4"])} for i in range(orders)]
    return techs, work


@pytest.fixture
def city() -> Callable[..., tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """:func:`make_city`: ``city(seed, technicians, orders, radius_km=12)``."""
    return make_city


@pytest.fixture(name="offset")
def offset_fixture() -> Callable[[float, float, float, float], dict[str, float]]:
    """:func:`offset`: ``offset(lat, lng, north_km, east_km)`` -> a geo value."""
    return offset
