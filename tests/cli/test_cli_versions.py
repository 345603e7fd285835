"""Tests for the publish, versions, rollback and diff commands, on SQLite and PostgreSQL.

The bundle is a copy of examples/field-service in tmp_path, edited between
publishes; DATABASE_URL points at a SQLite file or a fresh PostgreSQL schema.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, insert, inspect, select, table
from sqlalchemy.engine import Engine

from dispatchflow.platform.store import versions

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "field-service"


@pytest.fixture
def database(database_url: str, tmp_path: Path, engine: Engine,
             monkeypatch: pytest.MonkeyPatch) -> Engine:
    """DATABASE_URL set for the CLI; an engine on the same database for checks."""
    versions.clear_cache()
    monkeypatch.setenv("DISPATCHFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    return engine


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    target = tmp_path / "field-service"
    shutil.copytree(EXAMPLE, target)
    return target


def edit(bundle: Path, rel: str, old: str, new: str) -> None:
    path = bundle / rel
    text = path.read_text("utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), "utf-8")


def add_order(engine: Engine, title: str) -> None:
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    t = table("e_work_order", *(column(c) for c in (
        "created_at", "updated_at", "tags", "row_version", "title", "category", "priority",
        "status", "channel", "location_lat", "location_lng", "address")))
    with engine.begin() as conn:
        conn.execute(insert(t).values(created_at=now, updated_at=now, tags="[]", row_version=1,
                                      title=title, category="plumbing", priority="P2",
                                      status="new", channel="web", location_lat=31.23,
                                      location_lng=121.47, address="上海市黄浦区南京东路 1 号"))


def titles(engine: Engine) -> list[str]:
    t = table("e_work_order", column("id"), column("title"))
    with engine.connect() as conn:
        return [r.title for r in conn.execute(select(t.c.title).order_by(t.c.id))]


ADDRESS = "  address:\n    type: string\n    label: {zh: 详细地址, en: Address}\n    max_length: 200\n"


def test_publish_dry_run_then_publish_then_unchanged(database: Engine, cli: Any,
                                                     bundle: Path) -> None:
    result = cli("publish", bundle, "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "migration plan: 6 steps, 0 destructive"
    assert lines[1:3] == ["  + create table e_region (12 columns)",
                          "  + create table e_spare_part (12 columns)"]
    assert lines[-1] == "dry run: nothing changed (this would be version 1)"
    assert cli("versions").stdout == "no versions published yet; run: dispatchflow publish BUNDLE\n"
    assert "e_work_order" not in inspect(database).get_table_names()

    result = cli("publish", bundle, "--note", "first release")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "published version 1"
    again = cli("publish", bundle)
    assert again.exit_code == 0
    assert re.fullmatch(r"unchanged: version 1 is active with the same sources \([0-9a-f]{12}\)\n",
                        again.stdout)


def test_add_field_narrow_refused_then_allowed_rollback_and_diff(database: Engine, cli: Any,
                                                                 bundle: Path) -> None:
    assert cli("publish", bundle).exit_code == 0
    add_order(database, "卫生间漏水")

    edit(bundle, "entities/work_order.yaml", "  asset_code:\n",
         "  cost_travel:\n    type: decimal\n    label: {zh: 路费, en: Travel cost}\n"
         "  asset_code:\n")
    edit(bundle, "app.yaml", 'version: "1.0"', 'version: "1.1"')
    result = cli("publish", bundle, "--note", "travel cost")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("migration plan: 1 step, 0 destructive\n"
                             "  + add column e_work_order.cost_travel (FLOAT)\n"
                             "published version 2\n")
    assert titles(database) == ["卫生间漏水"]

    edit(bundle, "entities/work_order.yaml", ADDRESS, ADDRESS.replace("200", "100"))
    edit(bundle, "app.yaml", 'version: "1.1"', 'version: "1.2"')
    refused = cli("publish", bundle)
    assert refused.exit_code == 1
    assert refused.stdout == (
        "migration plan: 1 step, 1 destructive\n"
        "  ! narrow column e_work_order.address from VARCHAR(200) to VARCHAR(100): values that "
        "do not fit make the migration fail  [destructive]\n")
    assert refused.stderr == "refused: 1 destructive step(s); re-run with --allow-destructive\n"
    assert [v.number for v in versions.list_versions(database)] == [1, 2]

    result = cli("publish", bundle, "--allow-destructive")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "published version 3"

    table_lines = cli("versions").stdout.splitlines()
    assert re.fullmatch(r"#\s+bundle\s+digest\s+created \(UTC\)\s+by\s+note", table_lines[0])
    assert re.match(r"1 {5}1\.0\s+[0-9a-f]{12}\s+\d{4}-\d\d-\d\d \d\d:\d\d", table_lines[1])
    assert table_lines[2].endswith("travel cost")
    assert re.match(r"3  \*  1\.2\s+[0-9a-f]{12}", table_lines[3])

    diff = cli("diff", 1, 3)
    assert diff.exit_code == 0, diff.output
    assert diff.stdout.splitlines() == [
        "app:",
        "  ~ app: version 1.0 -> 1.2",
        "fields:",
        "  + field work_order.cost_travel: decimal",
        "  ~ field work_order.address: max_length 200 -> 100",
    ]

    result = cli("rollback", 1)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"active version: 1 \(field-service 1\.0, [0-9a-f]{12}\)\n", result.stdout)
    assert titles(database) == ["卫生间漏水"]
    assert "cost_travel" in {c["name"] for c in inspect(database).get_columns("e_work_order")}
    assert versions.active_version(database).number == 1  # type: ignore[union-attr]

    # a folder is compared with the active version
    preview = cli("diff", bundle)
    assert preview.stdout.splitlines()[-1] == "  ~ field work_order.address: max_length 200 -> 100"


def test_publish_reports_diagnostics_and_stores_nothing(database: Engine, cli: Any,
                                                        bundle: Path) -> None:
    edit(bundle, "rules/triage.rules", "work_order.customer.tier", "work_order.customer.tierr")
    result = cli("publish", bundle)
    assert result.exit_code == 1
    assert "E3001: unknown field 'tierr' on customer" in result.stderr
    assert cli("versions").stdout.startswith("no versions published yet")


def test_errors_of_rollback_and_diff(database: Engine, cli: Any, bundle: Path) -> None:
    result = cli("rollback", 4)
    assert result.exit_code == 1
    assert result.stderr == ("error: there is no app version 4 (hint: 'dispatchflow versions' "
                             "lists the published versions)\n")
    result = cli("diff", "active", bundle)
    assert result.exit_code == 1
    assert result.stderr == ("error: no app version is active yet (hint: publish a bundle "
                             "first: dispatchflow publish BUNDLE)\n")
    result = cli("diff", "v1", bundle)
    assert result.exit_code == 2
    assert result.stderr == "v1: neither a version number nor a bundle folder\n"
