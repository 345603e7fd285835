"""Tests for dispatchflow.rules.demo_city: a seeded city, its CSV form and read errors."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from dispatchflow.rules import effects as fx
from dispatchflow.rules.demo_city import (
    CATEGORIES,
    DISTRICTS,
    SHANGHAI,
    CityDataError,
    generate_city,
    on_shift,
    parse_shift,
    read_orders,
    read_technicians,
    write_city,
)
from dispatchflow.rules.engine import Engine
from dispatchflow.rules.geo import haversine_km

HAN = re.compile(r"^[\u4e00-\u9fff]{2,3}$")


@pytest.fixture(scope="module")
def city():
    return generate_city(7, technicians=120, orders=400)


def test_same_seed_same_city_other_seed_other_city() -> None:
    assert generate_city(3, 20, 40) == generate_city(3, 20, 40)
    assert generate_city(3, 20, 40) != generate_city(4, 20, 40)


def test_technicians_are_plausible(city) -> None:
    techs = city.technicians
    assert len(techs) == 120
    assert len({t["id"] for t in techs}) == 120
    codes = {r["code"] for r in city.regions}
    for t in techs:
        assert HAN.match(t["name"]), t["name"]
        assert re.fullmatch(r"1[3-9][0-9]{9}", t["phone"])
        assert 1 <= len(t["skills"]) <= 3 and set(t["skills"]) <= set(CATEGORIES)
        assert 1 <= t["level"] <= 5
        if "elevator" in t["skills"]:
            assert t["level"] >= 4
        assert t["region"]["code"] in codes
        assert haversine_km(*SHANGHAI, t["location"]["lat"], t["location"]["lng"]) <= 25
        assert t["rating_30d"] is None or 0 <= t["rating_30d"] <= 1
        assert t["on_time_rate"] is None or 0 <= t["on_time_rate"] <= 1
        assert 30 <= t["avg_handling_minutes"] <= 100
        assert t["open_tasks"] == 0
        assert t["on_duty"] == on_shift(t["shift"], datetime(2026, 3, 10, 10, 0))
    # a workforce, not a clone army
    assert len({t["level"] for t in techs}) == 5
    assert any(t["rating_30d"] is None for t in techs)
    assert 0.3 < sum(t["on_duty"] for t in techs) / len(techs) < 0.8


def test_regions_are_shanghai_districts_within_the_radius(city) -> None:
    codes = {r["code"] for r in city.regions}
    assert {"HP", "XH", "PD", "JA"} <= codes
    assert "FX" not in codes  # Fengxian is 35 km from People's Square
    names = {code: name for code, name, *_ in DISTRICTS}
    assert all(r["name"] == names[r["code"]] for r in city.regions)


def test_other_centre_gets_compass_sectors() -> None:
    city = generate_city(1, 10, 10, center=(39.9, 116.4), radius_km=20)
    assert [r["code"] for r in city.regions][:2] == ["C", "S1"]
    assert city.regions[1]["name"] == "北区"
    for t in city.technicians:
        assert haversine_km(39.9, 116.4, t["location"]["lat"], t["location"]["lng"]) <= 20


def test_orders_arrive_through_the_day_with_two_peaks(city) -> None:
    orders = city.orders
    times = [o["created_at"] for o in orders]
    assert times == sorted(times)
    assert all(t.date() == city.day and t.utcoffset().total_seconds() == 8 * 3600
               for t in times)
    by_hour = [0] * 24
    for t in times:
        by_hour[t.hour] += 1
    morning, evening, night = sum(by_hour[8:11]), sum(by_hour[18:21]), sum(by_hour[1:5])
    assert morning > 4 * night and evening > 4 * night


def test_orders_carry_chinese_text_tiers_and_leaks(city) -> None:
    orders = city.orders
    assert all(re.search(r"[\u4e00-\u9fff]", o["title"] + o["description"]) for o in orders)
    assert {o["category"] for o in orders} == set(CATEGORIES)
    assert {o["customer"]["tier"] for o in orders} == {"VIP", "gold", "normal"}
    assert {o["priority"] for o in orders} <= {"P1", "P2", "P3", "P4"}
    leaks = [o for o in orders if re.search("漏水|爆裂|跑水", o["title"] + o["description"])]
    assert len(leaks) >= 10
    assert any(o["last_repair_at"] is not None for o in orders)


def test_triage_marks_leaks_urgent_and_vip_senior(city, reference_engine: Engine) -> None:
    leak = next(o for o in city.orders if "爆裂" in o["title"])
    results = reference_engine.run_event("work_order", "created", dict(leak),
                                         leak["created_at"])
    sets = {e.field: e.value for r in results for e in r.effects if isinstance(e, fx.SetField)}
    dispatch = [e.policy for r in results for e in r.effects
                if isinstance(e, fx.RequestDispatch)]
    assert sets["priority"] == "P1" and sets["urgent"] is True
    assert dispatch == ["urgent_nearby"]


# ------------------------------------------------------------------ CSV


def test_csv_round_trip(city, tmp_path: Path) -> None:
    orders_csv, techs_csv = write_city(city, tmp_path / "city")
    assert (orders_csv.name, techs_csv.name) == ("orders.csv", "technicians.csv")
    header = techs_csv.read_text("utf-8").splitlines()[0]
    assert "location_lat,location_lng" in header and "region_code" in header
    assert "aircon|" in techs_csv.read_text("utf-8") or "|aircon" in techs_csv.read_text("utf-8")
    assert read_technicians(techs_csv) == list(city.technicians)
    assert read_orders(orders_csv) == list(city.orders)


def test_reader_accepts_a_minimal_hand_made_file(tmp_path: Path) -> None:
    path = tmp_path / "techs.csv"
    path.write_text("\ufeffid,skills,level,on_duty,location_lat,location_lng,region,accept_prob\n"
                    "t1,aircon|plumbing,3,是,31.2,121.4,PD,0.5\n\n", "utf-8")
    [tech] = read_technicians(path)
    assert tech == {"id": "t1", "skills": ["aircon", "plumbing"], "level": 3, "on_duty": True,
                    "location": {"lat": 31.2, "lng": 121.4}, "region": {"code": "PD"},
                    "accept_prob": 0.5}


def test_naive_datetimes_are_read_in_the_given_timezone(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("id,created_at,category,location_lat,location_lng\n"
                    "o1,2026-03-10T09:00:00,aircon,31.2,121.4\n", "utf-8")
    [order] = read_orders(path, tz="Asia/Shanghai")
    assert order["created_at"].isoformat() == "2026-03-10T09:00:00+08:00"


@pytest.mark.parametrize("content, message", [
    ("id,created,category,location_lat,location_lng\n",
     "{f}:1: missing column created_at (the header has: id, created, category, location_lat, "
     "location_lng) (hint: did you mean 'created' -> 'created_at'?)"),
    ("",
     "{f}:1: the file is empty; expected a header row with id, created_at, category, "
     "location_lat, location_lng"),
    ("id,created_at,category,location_lat,location_lng\n"
     "o1,2026-03-10T09:00:00+08:00,aircon,31.2,121.4\n"
     "o2,2026-03-10T09:05:00+08:00,aircon,north,121.4\n",
     "{f}:3: column 'location_lat': 'north' is not a number"),
    ("id,created_at,category,location_lat,location_lng\n"
     "o1,yesterday,aircon,31.2,121.4\n",
     "{f}:2: column 'created_at': 'yesterday' is not an ISO date-time "
     "(e.g. 2026-03-10T09:30:00+08:00)"),
    ("id,created_at,category,location_lat,location_lng\n"
     "o1,2026-03-10T09:00:00+08:00,,31.2,121.4\n",
     "{f}:2: column 'category' is empty; it is required"),
    ("id,created_at,category,location_lat,location_lng\n"
     "o1,2026-03-10T09:00:00+08:00,aircon,31.2\n",
     "{f}:2: 4 cells where the header has 5 (hint: quote cells that contain commas)"),
])
def test_order_file_errors_name_file_and_line(tmp_path: Path, content: str,
                                              message: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(content, "utf-8")
    with pytest.raises(CityDataError) as info:
        read_orders(path)
    assert str(info.value) == message.format(f=path)


def test_technician_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "techs.csv"
    path.write_text("id,skills,level,on_duty,location_lat,location_lng,shift\n"
                    "t1,aircon,3,maybe,31.2,121.4,\n", "utf-8")
    with pytest.raises(CityDataError, match=r"techs.csv:2: column 'on_duty': 'maybe' is not "
                                            r"true or false"):
        read_technicians(path)
    path.write_text("id,skills,level,on_duty,location_lat,location_lng,shift\n"
                    "t1,aircon,3,true,31.2,121.4,8-17\n", "utf-8")
    with pytest.raises(CityDataError, match=r"techs.csv:2: column 'shift': not a shift: '8-17'"):
        read_technicians(path)


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(CityDataError) as info:
        read_orders(missing)
    assert str(info.value) == f"{missing}: cannot read the file: No such file or directory"
    binary = tmp_path / "gbk.csv"
    binary.write_bytes("id,名字\n".encode("gbk"))
    with pytest.raises(CityDataError, match=r"gbk.csv: not UTF-8 text .*save the file as UTF-8"):
        read_technicians(binary)


# ------------------------------------------------------------------ shifts


@pytest.mark.parametrize("shift, hour, expected", [
    ("08:00-17:00", 8, True), ("08:00-17:00", 17, False), ("08:00-17:00", 3, False),
    ("22:00-08:00", 23, True), ("22:00-08:00", 7, True), ("22:00-08:00", 12, False),
    ("14:00-24:00", 23, True), (None, 10, False), ("", 10, False),
])
def test_on_shift(shift: str | None, hour: int, expected: bool) -> None:
    assert on_shift(shift, datetime(2026, 3, 10, hour, 0)) is expected


def test_parse_shift_rejects_nonsense() -> None:
    assert parse_shift("08:30-17:00") == (510, 1020)
    for bad in ("8-17", "08:00", "25:00-26:00", "08:61-09:00"):
        with pytest.raises(ValueError, match="not a shift"):
            parse_shift(bad)
