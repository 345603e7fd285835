"""Tests for ``dispatchflow demo-data`` and ``dispatchflow simulate`` (no database needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchflow.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "field-service"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


@pytest.fixture(scope="module")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("city")
    result = CliRunner().invoke(main, ["demo-data", str(folder), "--seed", "3",
                                       "--technicians", "30", "--orders", "80"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder


def test_demo_data_writes_two_csvs_and_prints_counts(small_city: Path, cli) -> None:
    orders = list(csv.DictReader(_lines(small_city / "orders.csv")))
    techs = list(csv.DictReader(_lines(small_city / "technicians.csv")))
    assert (len(orders), len(techs)) == (80, 30)
    result = cli("demo-data", small_city / "again", "--seed", "3", "--technicians", "30",
                 "--orders", "80")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"wrote {small_city / 'again' / 'orders.csv'}: 80 work orders "
                               "on 2026-03-10 (")
    assert lines[1].startswith(f"wrote {small_city / 'again' / 'technicians.csv'}: "
                               "30 technicians in ")
    assert (small_city / "again" / "orders.csv").read_bytes() == \
        (small_city / "orders.csv").read_bytes()


def test_simulate_compare_prints_the_table_and_writes_files(small_city: Path, cli,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = cli("simulate", EXAMPLE, "--orders", small_city / "orders.csv",
                 "--technicians", small_city / "technicians.csv", "--policy", "nearby_skilled",
                 "--compare", "urgent_nearby", "--seed", "2", "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("simulated 80 work orders x 30 technicians, seed 2 "
                               "(nearby_skilled ")
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "nearby_skilled", "urgent_nearby", "difference"]
    for label in ("assignment rate", "mean minutes to acceptance", "p90 minutes to acceptance",
                  "mean travel km", "load balance (Gini of jobs)", "escalations",
                  "SLA response attainment", "SLA on-site attainment"):
        assert any(line.startswith(label) for line in lines), label
    orders_row = next(line for line in lines if line.startswith("orders "))
    assert orders_row.split() == ["orders", "80", "80", "+0"]
    rate_row = next(line for line in lines if line.startswith("assignment rate"))
    assert rate_row.rstrip().endswith(" pp") and rate_row.count("%") == 2

    names = ["summary.csv", "orders_A.csv", "orders_B.csv", "comparison.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert [line for line in lines if line.startswith("wrote")] == \
        [f"wrote {out / n}" for n in names]
    assert (out / "comparison.png").read_bytes()[:8] == PNG_SIGNATURE
    summary = list(csv.reader(_lines(out / "summary.csv")))
    assert summary[0] == ["metric", "kind", "nearby_skilled", "urgent_nearby", "difference"]
    assert summary[1] == ["orders", "count", "80", "80", "0"]
    for name in ("orders_A.csv", "orders_B.csv"):
        rows = list(csv.DictReader(_lines(out / name)))
        assert len(rows) == 80
        assert {r["status"] for r in rows} <= {"assigned", "escalated", "not_dispatched"}
    a_rows = list(csv.DictReader(_lines(out / "orders_A.csv")))
    assert {r["policy"] for r in a_rows} == {"nearby_skilled"}


def test_simulate_as_configured_is_deterministic(small_city: Path, cli) -> None:
    args = ("simulate", EXAMPLE, "--orders", small_city / "orders.csv",
            "--technicians", small_city / "technicians.csv", "--seed", "4")
    first, second = cli(*args), cli(*args)
    assert first.exit_code == 0, first.output
    table = [line for line in first.stdout.splitlines()[1:]]
    assert table[1].split() == ["metric", "as", "configured"]
    assert table == second.stdout.splitlines()[1:]


def _orders_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize("orders_text, message", [
    ("id,created,category,location_lat,location_lng\n",
     "error: {orders}:1: missing column created_at (the header has: id, created, category, "
     "location_lat, location_lng) (hint: did you mean 'created' -> 'created_at'?)\n"),
    ("id,created_at,category,location_lat,location_lng\n"
     "o1,2026-03-10T09:00:00+08:00,aircon,31.2,121.4\n"
     "o2,2026-03-10T09:05:00+08:00,aircon,north,121.4\n",
     "error: {orders}:3: column 'location_lat': 'north' is not a number\n"),
])
def test_simulate_bad_csv_exits_2_with_file_and_line(small_city: Path, cli, tmp_path: Path,
                                                     orders_text: str, message: str) -> None:
    orders = _orders_file(tmp_path, orders_text)
    result = cli("simulate", EXAMPLE, "--orders", orders,
                 "--technicians", small_city / "technicians.csv")
    assert result.exit_code == 2
    assert result.stderr == message.format(orders=orders)
    assert result.stdout == ""


def test_simulate_unknown_policy_suggests(small_city: Path, cli) -> None:
    result = cli("simulate", EXAMPLE, "--orders", small_city / "orders.csv",
                 "--technicians", small_city / "technicians.csv", "--compare", "urgent_nearbY")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown dispatch policy 'urgent_nearbY' (hint: "
                                    "did you mean 'urgent_nearby'? policies: ")


def test_simulate_unreadable_file(small_city: Path, cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    result = cli("simulate", EXAMPLE, "--orders", small_city / "orders.csv",
                 "--technicians", missing)
    assert result.exit_code == 2
    assert result.stderr == f"error: {missing}: cannot read the file: No such file or directory\n"


def test_simulate_bundle_not_a_folder(small_city: Path, cli, tmp_path: Path) -> None:
    result = cli("simulate", tmp_path / "no-bundle", "--orders", small_city / "orders.csv",
                 "--technicians", small_city / "technicians.csv")
    assert result.exit_code == 2
    assert "not a folder" in result.stderr
