"""Tests for dispatchflow.rules.geo: haversine, bounding boxes and the grid index."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from dispatchflow.dsl.builtins import distance_km
from dispatchflow.rules.geo import (
    GridIndex,
    bbox,
    haversine_km,
    haversine_km_array,
    point_of,
)


def destination(lat: float, lng: float, km: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``km`` from ``(lat, lng)`` along ``bearing_deg`` on the 6,371 km sphere."""
    d = km / 6371.0
    p1, l1, b = math.radians(lat), math.radians(lng), math.radians(bearing_deg)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def scatter(seed: int, n: int, center: tuple[float, float] = (31.23, 121.47),
            spread_deg: float = 0.2) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(center[0] + rng.uniform(-spread_deg, spread_deg),
             center[1] + rng.uniform(-spread_deg, spread_deg)) for _ in range(n)]


# ------------------------------------------------------------------ distance


@pytest.mark.parametrize("seed", range(3))
def test_haversine_is_the_dsl_builtin(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        a = (rng.uniform(-89, 89), rng.uniform(-180, 180))
        b = (rng.uniform(-89, 89), rng.uniform(-180, 180))
        builtin = distance_km({"lat": a[0], "lng": a[1]}, {"lat": b[0], "lng": b[1]})
        assert haversine_km(a[0], a[1], b[0], b[1]) == builtin


def test_haversine_known_distance() -> None:
    # People's Square to Pudong airport, about 33 km as the crow flies
    assert haversine_km(31.2304, 121.4737, 31.1443, 121.8083) == pytest.approx(33.3, abs=0.5)
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.195, abs=1e-3)
    assert haversine_km(10, 20, 10, 20) == 0.0


def test_haversine_array_matches_scalar() -> None:
    pts = scatter(1, 500, spread_deg=5)
    lats, lngs = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    got = haversine_km_array(31.0, 121.0, lats, lngs)
    want = [haversine_km(31.0, 121.0, a, b) for a, b in pts]
    assert got.tolist() == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("value, expected", [
    ({"lat": 31.2, "lng": 121.5}, (31.2, 121.5)),
    ({"lat": "31.2", "lng": 121}, (31.2, 121.0)),
    ([31.2, 121.5], (31.2, 121.5)),
    (None, None),
    ({"lat": 31.2}, None),
    ({"lat": None, "lng": 1}, None),
    ({"lat": float("nan"), "lng": 1}, None),
    ("31.2,121.5", None),
])
def test_point_of(value: object, expected: tuple[float, float] | None) -> None:
    assert point_of(value) == expected


# ------------------------------------------------------------------ bbox


@pytest.mark.parametrize("lat, lng, km", [
    (31.23, 121.47, 5.0), (31.23, 121.47, 0.0), (0.0, 0.0, 100.0), (-33.9, 18.4, 30.0),
    (69.6, 18.9, 50.0), (80.0, 10.0, 300.0), (-80.0, -60.0, 300.0),
])
def test_bbox_contains_the_whole_circle(lat: float, lng: float, km: float) -> None:
    min_lat, max_lat, min_lng, max_lng = bbox(lat, lng, km)
    for bearing in range(0, 360, 3):
        for frac in (1.0, 0.999, 0.5):
            p_lat, p_lng = destination(lat, lng, km * frac, bearing)
            assert min_lat <= p_lat <= max_lat
            assert min_lng <= p_lng <= max_lng


def test_bbox_is_tight() -> None:
    min_lat, max_lat, min_lng, max_lng = bbox(31.23, 121.47, 5.0)
    assert max_lat - min_lat == pytest.approx(2 * 5.0 / 111.195, rel=1e-4)
    assert max_lng - min_lng == pytest.approx(2 * 5.0 / (111.195 * math.cos(math.radians(31.23))),
                                              rel=1e-3)


@pytest.mark.parametrize("lat, lng, km", [(89.99, 0.0, 5.0), (0.0, 179.99, 5.0),
                                          (0.0, -179.99, 5.0), (10.0, 0.0, 20000.0)])
def test_bbox_near_a_pole_or_the_antimeridian_spans_all_longitudes(lat: float, lng: float,
                                                                   km: float) -> None:
    _, _, min_lng, max_lng = bbox(lat, lng, km)
    assert (min_lng, max_lng) == (-180.0, 180.0)


@pytest.mark.parametrize("km", [-1.0, float("nan"), float("inf")])
def test_bbox_rejects_bad_radius(km: float) -> None:
    with pytest.raises(ValueError, match="radius"):
        bbox(31.0, 121.0, km)


# ------------------------------------------------------------------ grid index


def brute_within(points: dict[str, tuple[float, float]], lat: float, lng: float,
                 km: float) -> set[str]:
    return {k for k, (a, b) in points.items() if haversine_km(lat, lng, a, b) <= km}


@pytest.mark.parametrize("cell_km", [0.5, 2.0, 7.0])
@pytest.mark.parametrize("seed", range(3))
def test_within_equals_brute_force(seed: int, cell_km: float) -> None:
    points = {f"p{i}": p for i, p in enumerate(scatter(seed, 800))}
    index = GridIndex(cell_km)
    for key, (lat, lng) in points.items():
        index.insert(key, lat, lng)
    rng = random.Random(seed + 100)
    for _ in range(12):
        lat, lng = 31.23 + rng.uniform(-0.25, 0.25), 121.47 + rng.uniform(-0.25, 0.25)
        for km in (0.0, 0.3, 2.0, 5.0, 15.0, 500.0):
            keys, dist = index.within(lat, lng, km, distances=True)
            assert set(keys) == brute_within(points, lat, lng, km)
            assert len(keys) == len(set(keys))
            assert dist is not None
            want = np.array([haversine_km(lat, lng, *points[k]) for k in keys])
            assert np.allclose(dist, want, rtol=1e-12, atol=1e-9)


def test_within_exact_at_the_boundary() -> None:
    index = GridIndex()
    inside = destination(31.23, 121.47, 5.0 - 1e-7, 45)
    outside = destination(31.23, 121.47, 5.0 + 1e-7, 45)
    index.insert("in", *inside)
    index.insert("out", *outside)
    keys, _ = index.within(31.23, 121.47, 5.0)
    assert keys == ["in"]


def test_within_returns_items_and_handles_empty_index() -> None:
    index = GridIndex()
    assert index.within(31.0, 121.0, 5.0) == ([], None)
    record = {"id": "t1"}
    index.insert("t1", 31.0, 121.0, record)
    items, dist = index.within(31.0, 121.0, 1.0)
    assert items[0] is record and dist is None
    with pytest.raises(ValueError):
        index.within(31.0, 121.0, -1.0)


def test_insert_move_remove() -> None:
    index = GridIndex(1.0)
    index.insert("a", 31.23, 121.47)
    index.insert("b", 31.23, 121.48)
    assert len(index) == 2 and "a" in index and set(index) == {"a", "b"}
    assert set(index.within(31.23, 121.47, 2.0)[0]) == {"a", "b"}

    index.move("a", 31.50, 121.47)  # 30 km north
    assert index.position("a") == (31.50, 121.47)
    assert index.within(31.23, 121.47, 2.0)[0] == ["b"]
    assert index.within(31.50, 121.47, 0.1)[0] == ["a"]

    index.insert("b", 31.50, 121.471)  # insert of a present key moves it
    assert len(index) == 2
    assert set(index.within(31.50, 121.47, 1.0)[0]) == {"a", "b"}

    index.remove("a")
    assert "a" not in index and len(index) == 1
    assert index.within(31.50, 121.47, 1.0)[0] == ["b"]
    with pytest.raises(KeyError):
        index.remove("a")
    with pytest.raises(KeyError):
        index.move("a", 31.0, 121.0)

    index.insert("c", 31.23, 121.47)  # reuses the freed slot
    assert index.within(31.23, 121.47, 0.5)[0] == ["c"]
    assert index.capacity >= 2


def test_move_keeps_the_item() -> None:
    index = GridIndex()
    record = {"id": "t"}
    index.insert("t", 31.0, 121.0, record)
    index.move("t", 31.1, 121.1)
    assert index.within(31.1, 121.1, 0.1)[0] == [record]


def test_many_updates_stay_consistent() -> None:
    rng = random.Random(7)
    index = GridIndex(1.5)
    points: dict[int, tuple[float, float]] = {}
    for step in range(3000):
        key = rng.randrange(300)
        action = rng.random()
        if action < 0.2 and key in points:
            index.remove(key)
            del points[key]
        else:
            p = (31.23 + rng.uniform(-0.1, 0.1), 121.47 + rng.uniform(-0.1, 0.1))
            index.insert(key, *p)
            points[key] = p
        if step % 100 == 0:
            lat, lng = 31.23 + rng.uniform(-0.1, 0.1), 121.47 + rng.uniform(-0.1, 0.1)
            want = {k for k, v in points.items() if haversine_km(lat, lng, *v) <= 3.0}
            assert set(index.within(lat, lng, 3.0)[0]) == want
    assert len(index) == len(points)


@pytest.mark.parametrize("lat, lng", [(91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0)])
def test_insert_rejects_bad_coordinates(lat: float, lng: float) -> None:
    with pytest.raises(ValueError, match="not a position"):
        GridIndex().insert("x", lat, lng)


def test_cell_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GridIndex(0)


def test_far_from_the_first_point_is_still_correct() -> None:
    index = GridIndex()
    index.insert("shanghai", 31.23, 121.47)
    index.insert("tromso", 69.65, 18.96)
    index.insert("near-tromso", *destination(69.65, 18.96, 3.0, 90))
    assert set(index.within(69.65, 18.96, 5.0)[0]) == {"tromso", "near-tromso"}


@pytest.mark.parametrize("seed", range(3))
def test_pairs_within_equals_one_query_per_point(seed: int) -> None:
    index = GridIndex()
    for i, (lat, lng) in enumerate(scatter(seed, 600)):
        index.insert(i, lat, lng)
    queries = scatter(seed + 50, 120, spread_deg=0.25)
    lats, lngs = np.array([q[0] for q in queries]), np.array([q[1] for q in queries])
    rows, slots, dist = index.pairs_within(lats, lngs, 4.0)
    assert list(rows) == sorted(rows)
    got: dict[int, set] = {}
    for r, key, d in zip(rows.tolist(), index.items_of(slots), dist.tolist(), strict=True):
        got.setdefault(r, set()).add(key)
        assert d == pytest.approx(haversine_km(*queries[r], *index.position(key)), abs=1e-9)
    for r, (lat, lng) in enumerate(queries):
        assert got.get(r, set()) == set(index.within(lat, lng, 4.0)[0])


def test_pairs_within_edge_cases() -> None:
    index = GridIndex()
    rows, slots, dist = index.pairs_within(np.array([31.0]), np.array([121.0]), 5.0)
    assert len(rows) == len(slots) == len(dist) == 0
    index.insert("a", 31.0, 121.0)
    rows, slots, _ = index.pairs_within(np.array([]), np.array([]), 5.0)
    assert len(rows) == 0
    rows, slots, _ = index.pairs_within(np.array([40.0]), np.array([100.0]), 5.0)
    assert len(rows) == 0
    rows, slots, _ = index.pairs_within(np.array([31.0, 31.0]), np.array([121.0, 121.0]), 0.0)
    assert rows.tolist() == [0, 1] and index.items_of(slots) == ["a", "a"]


def test_insert_many_equals_inserting_one_by_one() -> None:
    points = scatter(4, 700)
    one, many = GridIndex(), GridIndex()
    for i, (lat, lng) in enumerate(points):
        one.insert(i, lat, lng, f"item{i}")
    many.insert("early", 31.0, 121.0)  # bulk after single inserts
    many.insert_many(list(range(len(points))), [p[0] for p in points], [p[1] for p in points],
                     [f"item{i}" for i in range(len(points))])
    assert len(many) == len(points) + 1
    for lat, lng in scatter(5, 30):
        assert sorted(one.within(lat, lng, 3.0)[0]) == \
            sorted(x for x in many.within(lat, lng, 3.0)[0] if x != "early")
    many.move(3, 31.0, 121.0)
    many.remove(5)
    assert set(many.within(31.0, 121.0, 0.01)[0]) == {"early", "item3"}
    assert 5 not in many and many.position(3) == (31.0, 121.0)


@pytest.mark.parametrize("keys, lats, message", [
    (["a", "a"], [31.0, 31.0], "twice"),
    (["present", "b"], [31.0, 31.0], "twice or one already"),
    (["a", "b"], [31.0, 95.0], "not a position"),
    (["a", "b"], [31.0, float("nan")], "not a position"),
    (["a", "b"], [31.0], "as many"),
])
def test_insert_many_rejects_bad_input_and_adds_nothing(keys: list, lats: list,
                                                         message: str) -> None:
    index = GridIndex()
    index.insert("present", 31.0, 121.0)
    with pytest.raises(ValueError, match=message):
        index.insert_many(keys, lats, [121.0] * len(keys))
    assert list(index) == ["present"]
    index.insert_many([], [], [])
    assert len(index) == 1


@pytest.mark.parametrize("seed", range(2))
def test_pairs_within_without_distances(seed: int) -> None:
    index = GridIndex()
    center = (31.23, 121.47)
    for bearing in range(0, 360, 10):  # right at the boundary, on both sides
        index.insert(("in", bearing), *destination(*center, 5.0 - 1e-7, bearing))
        index.insert(("out", bearing), *destination(*center, 5.0 + 1e-7, bearing))
    for i, (lat, lng) in enumerate(scatter(seed, 300)):
        index.insert(i, lat, lng)
    queries = [center, *scatter(seed + 9, 40)]
    lats, lngs = np.array([q[0] for q in queries]), np.array([q[1] for q in queries])
    with_d = index.pairs_within(lats, lngs, 5.0)
    rows, slots, none = index.pairs_within(lats, lngs, 5.0, distances=False)
    assert none is None
    assert rows.tolist() == with_d[0].tolist() and slots.tolist() == with_d[1].tolist()
    at_center = {k for r, k in zip(rows.tolist(), index.items_of(slots), strict=True) if r == 0}
    assert {("in", b) for b in range(0, 360, 10)} <= at_center
    assert not any(isinstance(k, tuple) and k[0] == "out" for k in at_center)
    assert np.allclose(index.distances(slots, lats[rows], lngs[rows]), with_d[2])
