"""How simulated field staff behave, pure: the model shared by ``simulate`` and the demo city.

Both the discrete-event :func:`~dispatchflow.rules.simulation.simulate` and the
living city of ``serve --demo`` (:mod:`dispatchflow.platform.demo.city`)
decide with these functions, so a technician of the demo city answers, travels
and works exactly as one of a simulated day:

- an offer is accepted with probability :func:`accept_probability` (lower per
  open task, and with distance when the config says so), after an exponential
  delay (:func:`answer_delay_minutes`);
- travel takes straight-line km at the config's speed (:func:`travel_minutes`);
- handling takes the technician's own average, else the category's typical
  time, with a lognormal spread of median 1 (:func:`handling_minutes`).

Randomness is explicit: every function takes uniform draws in [0, 1), which
callers get from :func:`draws` (fixed by a seed and what the draw is about).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

#: Default handling time per work-order category, in minutes.
CATEGORY_HANDLING_MINUTES: Mapping[str, float] = MappingProxyType({
    "aircon": 60.0, "water_heater": 50.0, "plumbing": 45.0, "electrical": 40.0,
    "appliance": 50.0, "elevator": 90.0, "hvac": 80.0, "other": 35.0})

_UNIT = 2.0 ** -53


class BehaviourConfig(Protocol):
    """The tunables the behaviour model reads (``SimulationConfig`` has them all)."""

    @property
    def speed_kmh(self) -> float: ...
    @property
    def accept_prob(self) -> float: ...
    @property
    def load_factor(self) -> float: ...
    @property
    def accept_half_km(self) -> float | None: ...
    @property
    def handling_minutes(self) -> Mapping[str, float]: ...
    @property
    def default_handling_minutes(self) -> float: ...
    @property
    def handling_spread(self) -> float: ...


def salt_of(seed: int) -> int:
    """The 64-bit salt of a run with ``seed`` (what :func:`draws` mixes in)."""
    return random.Random(seed).getrandbits(64)


def draws(salt: int, *keys: Any) -> tuple[float, float]:
    """Two uniform [0, 1) numbers fixed by ``salt`` and ``keys`` (BLAKE2b of their repr)."""
    digest = hashlib.blake2b(repr((salt, *keys)).encode(), digest_size=16).digest()
    return ((int.from_bytes(digest[:8], "big") >> 11) * _UNIT,
            (int.from_bytes(digest[8:], "big") >> 11) * _UNIT)


def accept_probability(config: BehaviourConfig, open_tasks: int, own: float | None = None,
                       distance_km: float | None = None) -> float:
    """Probability (0..1) that a technician accepts an offer.

    ``own`` (the technician's ``accept_prob``) wins when given; else the config's
    ``accept_prob`` times ``load_factor`` per open task, halved every
    ``accept_half_km`` km of ``distance_km`` when both are set.
    """
    if own is not None:
        return own
    p = config.accept_prob * config.load_factor ** max(0, int(open_tasks))
    if distance_km is not None and config.accept_half_km:
        p *= 0.5 ** (max(0.0, distance_km) / config.accept_half_km)
    return p


def answer_delay_minutes(mean_minutes: float, u: float) -> float:
    """An exponential answer delay of mean ``mean_minutes`` from the uniform draw ``u``."""
    return -mean_minutes * math.log1p(-u)


def travel_minutes(config: BehaviourConfig, km: float) -> float:
    """Minutes to cover ``km`` straight-line kilometres at the config's speed."""
    return km / config.speed_kmh * 60


def handling_minutes(config: BehaviourConfig, category: Any, own: Any, u1: float,
                     u2: float) -> float:
    """Minutes a job takes: ``own`` average (if set) or the category's typical time, times a
    lognormal factor of median 1 and sigma ``handling_spread`` (Box-Muller from ``u1``, ``u2``)."""
    base = float(own) if own else float(config.handling_minutes.get(
        str(category), config.default_handling_minutes))
    z = math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * u2)
    return base * math.exp(config.handling_spread * z)
