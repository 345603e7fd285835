"""Geography for dispatch, pure: great-circle distance, bounding boxes, a spatial index.

Distances are in kilometres on a sphere of radius 6,371 km, with the same
haversine formula as the DSL builtin ``distance_km`` (so a candidate the index
puts inside a radius is one the policy's ``distance_km(...) <= R`` agrees on, up
to rounding; callers that need agreement at the boundary add a hair of slack).

:class:`GridIndex` answers "which points lie within R km of here" over a uniform
latitude/longitude grid whose cells hold slots into flat numpy arrays of unit
vectors: a query visits the cells covering the query's bounding box and tests
all their points in one matrix-vector product. Points can be inserted, moved and
removed one at a time in O(1), so a long-lived index follows technicians as they
move. (Measured on 10,000 technicians around Shanghai, 5 km queries: a static
scipy ``cKDTree`` on the same unit vectors answers in about half the time, but
must be rebuilt, ~12 ms, after any move; the grid's query stays well under a
tenth of a millisecond, and :meth:`GridIndex.pairs_within` serves bursts.)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np

#: Mean Earth radius used by ``distance_km`` (km).
EARTH_RADIUS_KM = 6371.0
#: Kilometres per degree of latitude on that sphere.
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180.0
#: Default edge length of a grid cell (km); about half a typical dispatch radius.
DEFAULT_CELL_KM = 2.0
#: Degrees added to each side of a bounding box so rounding never cuts a point off.
_BBOX_SLACK_DEG = 1e-9
#: Query points per block in :meth:`GridIndex.pairs_within` (small blocks: narrow bands).
_PAIR_ROWS = 32
#: Unit-vector dot products this close to the radius's cosine are settled by haversine.
_DOT_SLACK = 1e-12

_radians, _sin, _cos, _asin, _sqrt = math.radians, math.sin, math.cos, math.asin, math.sqrt


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in km between two points given in degrees.

    The same formula, in the same order of operations, as the DSL builtin
    ``distance_km``.
    """
    p1, p2 = _radians(lat1), _radians(lat2)
    h = _sin((p2 - p1) / 2) ** 2 + _cos(p1) * _cos(p2) * _sin(_radians(lng2 - lng1) / 2) ** 2
    return 12742.0 * _asin(_sqrt(h))


def haversine_km_array(lat: float | np.ndarray, lng: float | np.ndarray, lats: np.ndarray,
                       lngs: np.ndarray) -> np.ndarray:
    """Distances in km from a point (or aligned points) to arrays of points (degrees)."""
    p1 = np.radians(lat)
    p2 = np.radians(lats)
    h = np.sin((p2 - p1) / 2) ** 2 + \
        np.cos(p1) * np.cos(p2) * np.sin(np.radians(lngs - lng) / 2) ** 2
    # rounding can push h a hair above 1 for antipodal points
    return 12742.0 * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def bbox(lat: float, lng: float, km: float) -> tuple[float, float, float, float]:
    """``(min_lat, max_lat, min_lng, max_lng)`` of a box containing every point within ``km``.

    The box is the tightest one on the sphere (longitude half-width
    ``asin(sin(d) / cos(lat))``), widened by a hair for rounding, so a SQL
    ``lat BETWEEN .. AND lng BETWEEN ..`` prefilter never drops a point the
    haversine distance would keep. When the circle reaches a pole or crosses the
    antimeridian the longitude range is the whole ``(-180, 180)``.

    Raises ValueError for a negative or non-finite radius.
    """
    if not km >= 0 or math.isinf(km):
        raise ValueError(f"bbox radius must be a finite number of km >= 0, got {km!r}")
    d = km / EARTH_RADIUS_KM
    dlat = math.degrees(d) + _BBOX_SLACK_DEG
    min_lat, max_lat = lat - dlat, lat + dlat
    if min_lat <= -90.0 or max_lat >= 90.0 or d >= math.pi / 2:
        return max(min_lat, -90.0), min(max_lat, 90.0), -180.0, 180.0
    s = math.sin(d) / math.cos(math.radians(lat))
    if s >= 1.0:
        return min_lat, max_lat, -180.0, 180.0
    dlng = math.degrees(math.asin(s)) + _BBOX_SLACK_DEG
    min_lng, max_lng = lng - dlng, lng + dlng
    if min_lng < -180.0 or max_lng > 180.0:
        return min_lat, max_lat, -180.0, 180.0
    return min_lat, max_lat, min_lng, max_lng


def point_of(value: Any) -> tuple[float, float] | None:
    """``(lat, lng)`` of a runtime geo value (``{"lat", "lng"}`` or a pair), else None.

    None, malformed and non-finite values give None: such a point is nowhere.
    """
    try:
        if isinstance(value, dict):
            lat, lng = float(value["lat"]), float(value["lng"])
        elif isinstance(value, list | tuple) and len(value) == 2:
            lat, lng = float(value[0]), float(value[1])
        else:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lng)):
        return None
    return lat, lng


class GridIndex:
    """Points with keys on a uniform lat/lng grid; see the module docs.

    ``cell_km`` is the cell edge in km (cells are square at the latitude of the
    first point inserted; the index stays correct anywhere, only slower far
    from it). Keys are any hashable values (candidate ids); each point may carry
    an ``item`` (default: its key) that queries return, so callers holding
    records need no second lookup.

    Queries compare unit vectors: ``d <= R`` exactly when the dot product of the
    two points' unit vectors is at least ``cos(R / 6371)``, one matrix-vector
    product for all points of the visited cells. Points within rounding of the
    boundary are settled with the haversine distance.
    """

    def __init__(self, cell_km: float = DEFAULT_CELL_KM) -> None:
        if not cell_km > 0:
            raise ValueError(f"cell_km must be > 0, got {cell_km!r}")
        self.cell_km = float(cell_km)
        self._dlat = self.cell_km / KM_PER_DEGREE
        self._dlng = 0.0  # fixed by the first insert
        self._xyz = np.zeros((64, 3))
        self._latlng = np.zeros((64, 2))
        self._keys: list[Hashable | None] = []
        self._items = np.empty(64, dtype=object)  # object array: one fancy index per query
        self._cell_of: list[tuple[int, int] | None] = []
        self._slots: dict[Hashable, int] = {}
        self._cells: dict[tuple[int, int], dict[int, None]] = {}
        # each cell's slots as an array, built on first query after the cell changed
        self._cell_arrays: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._slots)

    def position(self, key: Hashable) -> tuple[float, float]:
        """``(lat, lng)`` of ``key``; KeyError if it is not in the index."""
        lat, lng = self._latlng[self._slots[key]]
        return float(lat), float(lng)

    def _cell(self, lat: float, lng: float) -> tuple[int, int]:
        return math.floor(lat / self._dlat), math.floor(lng / self._dlng)

    def insert(self, key: Hashable, lat: float, lng: float, item: Any = None) -> None:
        """Add ``key`` at ``(lat, lng)`` (degrees), or move it there if present.

        ``item`` (default: the key) is what :meth:`within` returns for this point.
        Raises ValueError for a non-finite or out-of-range coordinate.
        """
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
            raise ValueError(f"not a position: lat={lat!r}, lng={lng!r} "
                             "(need -90 <= lat <= 90 and -180 <= lng <= 180)")
        if not self._dlng:
            self._dlng = self._dlat / max(math.cos(math.radians(lat)), 0.01)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._new_slot(key)
        else:
            self._unlink(slot)
        self._items[slot] = key if item is None else item
        phi, lam = math.radians(lat), math.radians(lng)
        self._xyz[slot] = (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam),
                           math.sin(phi))
        self._latlng[slot] = (lat, lng)
        cell = self._cell(lat, lng)
        self._cell_of[slot] = cell
        self._cells.setdefault(cell, {})[slot] = None
        self._cell_arrays.pop(cell, None)

    def insert_many(self, keys: Sequence[Hashable], lats: Sequence[float],
                    lngs: Sequence[float], items: Sequence[Any] | None = None) -> None:
        """Add many new points at once (vectorised; much faster than :meth:`insert` in a loop).

        Raises ValueError if a key is repeated or already present, or a
        coordinate is out of range; then nothing is added.
        """
        n = len(keys)
        if not n:
            return
        lat, lng = np.asarray(lats, dtype=float), np.asarray(lngs, dtype=float)
        if lat.shape != (n,) or lng.shape != (n,) or (items is not None and len(items) != n):
            raise ValueError("insert_many needs as many latitudes, longitudes and items as keys")
        ok = (lat >= -90.0) & (lat <= 90.0) & (lng >= -180.0) & (lng <= 180.0)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"not a position: lat={lat[bad]!r}, lng={lng[bad]!r} for key "
                             f"{keys[bad]!r} (need -90 <= lat <= 90 and -180 <= lng <= 180)")
        if len(set(keys)) != n or any(k in self._slots for k in keys):
            raise ValueError("insert_many got a key twice or one already in the index "
                             "(use insert to move a point)")
        if not self._dlng:
            self._dlng = self._dlat / max(math.cos(math.radians(float(lat[0]))), 0.01)
        start, end = len(self._keys), len(self._keys) + n
        size = len(self._xyz)
        while size < end:
            size *= 2
        if size > len(self._xyz):
            grow = size - len(self._xyz)
            self._xyz = np.concatenate([self._xyz, np.zeros((grow, 3))])
            self._latlng = np.concatenate([self._latlng, np.zeros((grow, 2))])
            self._items = np.concatenate([self._items, np.empty(grow, dtype=object)])
        phi, lam = np.radians(lat), np.radians(lng)
        self._xyz[start:end] = np.column_stack([np.cos(phi) * np.cos(lam),
                                                np.cos(phi) * np.sin(lam), np.sin(phi)])
        self._latlng[start:end] = np.column_stack([lat, lng])
        for slot, item in enumerate(keys if items is None else items, start):
            self._items[slot] = item
        rows = np.floor(lat / self._dlat).astype(np.int64).tolist()
        cols = np.floor(lng / self._dlng).astype(np.int64).tolist()
        self._keys.extend(keys)
        cells = self._cells
        for slot, key, i, j in zip(range(start, end), keys, rows, cols, strict=True):
            self._slots[key] = slot
            cell = (i, j)
            self._cell_of.append(cell)
            cells.setdefault(cell, {})[slot] = None
        self._cell_arrays.clear()

    def move(self, key: Hashable, lat: float, lng: float) -> None:
        """Move ``key`` to ``(lat, lng)`` keeping its item; KeyError if it is not in the index."""
        slot = self._slots[key]
        self.insert(key, lat, lng, self._items[slot])

    def remove(self, key: Hashable) -> None:
        """Remove ``key``; KeyError if it is not in the index."""
        slot = self._slots.pop(key)
        self._unlink(slot)
        self._keys[slot] = self._items[slot] = self._cell_of[slot] = None
        self._free.append(slot)

    def _unlink(self, slot: int) -> None:
        cell = self._cell_of[slot]
        assert cell is not None
        members = self._cells[cell]
        del members[slot]
        if not members:
            del self._cells[cell]
        self._cell_arrays.pop(cell, None)

    def _new_slot(self, key: Hashable) -> int:
        if self._free:
            slot = self._free.pop()
            self._keys[slot] = key
        else:
            slot = len(self._keys)
            if slot == len(self._xyz):
                self._xyz = np.concatenate([self._xyz, np.zeros_like(self._xyz)])
                self._latlng = np.concatenate([self._latlng, np.zeros_like(self._latlng)])
                self._items = np.concatenate([self._items, np.empty(slot, dtype=object)])
            self._keys.append(key)
            self._cell_of.append(None)
        self._slots[key] = slot
        return slot

    def within(self, lat: float, lng: float, km: float, *,
               distances: bool = False) -> tuple[list[Any], np.ndarray | None]:
        """Items of the points within ``km`` of ``(lat, lng)`` and, if asked, their distances.

        The distances (km, a numpy array) are aligned with the items; the order is
        unspecified. Raises ValueError for a negative or non-finite radius.
        """
        slots, dist = self.query(lat, lng, km, distances=distances)
        return self.items_of(slots), dist

    def query(self, lat: float, lng: float, km: float, *,
              distances: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Like :meth:`within` but returns slot numbers (see :meth:`slot`) instead of items."""
        min_lat, max_lat, min_lng, max_lng = bbox(lat, lng, km)
        i0, i1 = math.floor(min_lat / self._dlat), math.floor(max_lat / self._dlat)
        parts = self._gather(i0, i1, min_lng, max_lng)
        if not parts:
            return np.empty(0, dtype=np.intp), (np.empty(0) if distances else None)
        if len(parts) == 1:
            idx, xyz = parts[0]
        else:
            idx = np.concatenate([p[0] for p in parts])
            xyz = np.concatenate([p[1] for p in parts])
        phi, lam = math.radians(lat), math.radians(lng)
        q = np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam),
                      math.sin(phi)])
        theta = km / EARTH_RADIUS_KM
        dist: np.ndarray | None = None
        kept = idx
        if theta < math.pi:
            dots = xyz @ q
            limit = math.cos(theta)
            near = dots >= limit - _DOT_SLACK
            kept = idx[near]
            if distances or (dots[near] < limit + _DOT_SLACK).any():
                dist = self.distances(kept, lat, lng)
                inside = dist <= km
                kept, dist = kept[inside], dist[inside]
        if distances and dist is None:
            dist = self.distances(kept, lat, lng)
        return kept, dist

    def pairs_within(self, lats: np.ndarray, lngs: np.ndarray, km: float, *,
                     distances: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Every (query point, indexed point) pair within ``km``, for many query points at once.

        Returns ``(rows, slots, distances)``: the query point's position in
        ``lats``/``lngs``, the indexed point's slot (see :meth:`items_of`) and the
        distance in km (None unless ``distances``; :meth:`distances` computes them
        later for the pairs a caller keeps), grouped by row in ascending order. The
        query points are
        sorted by latitude and taken in small blocks, each multiplied (unit
        vectors) with the indexed points in its latitude band: much faster than
        one :meth:`query` per point for a burst.
        Raises ValueError for a negative or non-finite radius.
        """
        lats, lngs = np.asarray(lats, dtype=float), np.asarray(lngs, dtype=float)
        empty = np.empty(0, dtype=np.intp)
        none = np.empty(0) if distances else None
        if not len(lats) or not self._slots:
            bbox(0.0, 0.0, km)  # validates km
            return empty, empty, none
        # the indexed points inside the union of the query points' boxes
        boxes = [bbox(float(a), float(b), km) for a, b in
                 ((lats.min(), lngs.min()), (lats.max(), lngs.max()),
                  (lats.min(), lngs.max()), (lats.max(), lngs.min()))]
        lo_lat, hi_lat = min(b[0] for b in boxes), max(b[1] for b in boxes)
        lo_lng, hi_lng = min(b[2] for b in boxes), max(b[3] for b in boxes)
        alive = self.all_slots()
        latlng = self._latlng[alive]
        inside = (latlng[:, 0] >= lo_lat) & (latlng[:, 0] <= hi_lat) & \
            (latlng[:, 1] >= lo_lng) & (latlng[:, 1] <= hi_lng)
        alive = alive[inside]
        if not len(alive):
            return empty, empty, none
        # query points sorted by latitude, in blocks; each block is multiplied only
        # with the indexed points in its latitude band (indexed points sorted too)
        alive = alive[np.argsort(self._latlng[alive, 0], kind="stable")]
        alive_lat = self._latlng[alive, 0]
        points = self._xyz[alive].T
        order = np.argsort(lats, kind="stable")
        phi, lam = np.radians(lats[order]), np.radians(lngs[order])
        queries = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)],
                           axis=1)
        sorted_lats = lats[order]
        theta = km / EARTH_RADIUS_KM
        limit = math.cos(theta) - _DOT_SLACK if theta < math.pi else -2.0
        margin = math.degrees(theta) + _BBOX_SLACK_DEG
        rows_out, slots_out, dots_out = [], [], []
        for start in range(0, len(order), _PAIR_ROWS):
            stop = min(start + _PAIR_ROWS, len(order))
            # a point within theta of another differs from it by at most theta in latitude
            lo = int(np.searchsorted(alive_lat, sorted_lats[start] - margin, side="left"))
            hi = int(np.searchsorted(alive_lat, sorted_lats[stop - 1] + margin, side="right"))
            if lo >= hi:
                continue
            dots = queries[start:stop] @ points[:, lo:hi]
            r, c = np.nonzero(dots >= limit)
            rows_out.append(order[r + start])
            slots_out.append(alive[c + lo])
            dots_out.append(dots[r, c])
        if not rows_out:
            return empty, empty, none
        rows, slots = np.concatenate(rows_out), np.concatenate(slots_out)
        by_row = np.argsort(rows, kind="stable")
        rows, slots = rows[by_row], slots[by_row]
        if distances:
            dist = self.distances(slots, lats[rows], lngs[rows])
            keep = dist <= km
            return rows[keep], slots[keep], dist[keep]
        # settle the pairs within rounding of the radius with the haversine distance
        band = np.flatnonzero(np.concatenate(dots_out)[by_row] < limit + 2 * _DOT_SLACK)
        if len(band):
            far = band[self.distances(slots[band], lats[rows[band]], lngs[rows[band]]) > km]
            if len(far):
                keep = np.ones(len(rows), dtype=bool)
                keep[far] = False
                rows, slots = rows[keep], slots[keep]
        return rows, slots, None

    def items_of(self, slots: np.ndarray) -> list[Any]:
        """The items stored at ``slots`` (as returned by :meth:`query`), in that order."""
        return self._items[slots].tolist()

    def slot(self, key: Hashable) -> int:
        """The slot of ``key``: stable until the key is removed; KeyError if absent.

        Slots are small integers below :attr:`capacity`, for callers that keep
        per-point data in arrays of their own.
        """
        return self._slots[key]

    @property
    def capacity(self) -> int:
        """One more than the largest slot number the index may hand out so far."""
        return len(self._xyz)

    def _gather(self, i0: int, i1: int, min_lng: float, max_lng: float,
                ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(slots, unit vectors)`` of the occupied cells in rows ``i0..i1`` within the lngs.

        Each cell's arrays are built on first use after the cell changed, so a
        query reads a few contiguous blocks instead of scattered rows.
        """
        cells = self._cells
        if not cells:
            return []
        j0, j1 = math.floor(min_lng / self._dlng), math.floor(max_lng / self._dlng)
        if (i1 - i0 + 1) * (j1 - j0 + 1) <= len(cells):
            wanted = [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]
        else:  # a query wider than the occupied grid: filter the occupied cells instead
            wanted = [(i, j) for (i, j) in cells if i0 <= i <= i1 and j0 <= j <= j1]
        arrays = self._cell_arrays
        parts = []
        for key in wanted:
            part = arrays.get(key)
            if part is None:
                members = cells.get(key)
                if members is None:
                    continue
                slots = np.fromiter(members, dtype=np.intp, count=len(members))
                part = arrays[key] = (slots, self._xyz[slots])
            parts.append(part)
        return parts

    def all_slots(self) -> np.ndarray:
        """The slots of every indexed point (for a search without a radius)."""
        return np.fromiter(self._slots.values(), dtype=np.intp, count=len(self._slots))

    def distances(self, slots: np.ndarray, lat: float | np.ndarray,
                  lng: float | np.ndarray) -> np.ndarray:
        """Distances in km from ``(lat, lng)`` (or from aligned arrays of points) to ``slots``."""
        latlng = self._latlng[slots]
        return haversine_km_array(lat, lng, latlng[:, 0], latlng[:, 1])
