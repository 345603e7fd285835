"""The demo's data files: the reference bundle's load; malformed ones are refused with
the file, the place and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchflow.platform.demo.data import DemoDataError, load_city, load_seed, minutes
from dispatchflow.platform.demo.seed import demo_folder


def test_the_reference_demo_loads() -> None:
    seed, city = load_seed(demo_folder()), load_city(demo_folder())
    assert [p.user for p in seed.customers if p.user] == ["demo_customer"]
    assert [p.user for p in seed.technicians if p.user] == ["demo_technician"]
    assert city.lifecycle["en_route"].after == "travel"
    assert city.lifecycle["accepted"].after == 5.0 and city.lifecycle["accepted"].when_free


def test_an_order_of_an_unknown_customer_is_refused(tmp_path: Path) -> None:
    (tmp_path / "seed.yaml").write_text(
        "customers:\n  - {key: a, name: A}\norders:\n  - {title: T, customer: b}\n",
        encoding="utf-8")
    with pytest.raises(DemoDataError) as err:
        load_seed(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'seed.yaml'}")
    assert err.value.message == "unknown customer 'b'"
    assert err.value.path == "orders[0].customer" and err.value.hint == "customers: a"


def test_a_bad_duration_and_a_missing_part_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match="'soon' is not a duration"):
        minutes("soon", "city.yaml: lifecycle.accepted.after")
    assert minutes("2h", "x") == 120.0 and minutes("handling", "x") == "handling"
    (tmp_path / "city.yaml").write_text("entity: work_order\n", encoding="utf-8")
    with pytest.raises(DemoDataError) as err:
        load_city(tmp_path)
    assert err.value.message == "missing or malformed part: 'lifecycle'"
    assert err.value.hint == "compare with examples/field-service/demo/city.yaml"
    with pytest.raises(DemoDataError, match="cannot read the demo data"):
        load_seed(tmp_path / "nowhere")
