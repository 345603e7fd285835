"""Tests for dispatchflow.platform.store.versions (publish, list, load, rollback) on SQLite and PostgreSQL.

Records are written with SQLAlchemy Core straight into ``e_work_order``: the
point is that publishing and rolling back never lose them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import column, func, insert, inspect, select, table
from sqlalchemy.engine import Engine

from dispatchflow.dsl.compiler import App, compile_sources
from dispatchflow.dsl.diagnostics import render_text
from dispatchflow.platform.store import versions
from dispatchflow.platform.store.db import app_versions, audit_log, create_system_tables
from dispatchflow.platform.store.migrate import DestructiveChangeRefused, MigrationError
from dispatchflow.platform.store.versions import VersionError

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def engine(engine: Engine) -> Engine:
    """The shared empty database (tests/conftest.py), with the system tables."""
    create_system_tables(engine)
    return engine

APP = 'app: demo\nversion: "{v}"\ntitle: {{en: Demo}}\ntimezone: Asia/Shanghai\n'

WORK_ORDER = """\
entity: work_order
label: {en: Work order}
fields:
  title: {type: string, required: true, max_length: 50}
  rating: {type: integer}
  asset_code: {type: string, max_length: 32}
"""

V1 = WORK_ORDER
V2 = WORK_ORDER + "  cost_surcharge: {type: decimal}\n"


def build(work_order: str, version: str = "1") -> App:
    result = compile_sources({"app.yaml": APP.format(v=version),
                              "entities/work_order.yaml": work_order})
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


def add_order(engine: Engine, **values: Any) -> None:
    t = table("e_work_order", *(column(c) for c in
                                ("created_at", "updated_at", "tags", "row_version", *values)))
    with engine.begin() as conn:
        conn.execute(insert(t).values(created_at=T0, updated_at=T0, tags="[]", row_version=1,
                                      **values))


def orders(engine: Engine, *columns: str) -> list[tuple[Any, ...]]:
    t = table("e_work_order", *(column(c) for c in ("id", *columns)))
    with engine.connect() as conn:
        return [tuple(r)[1:] for r in conn.execute(select(t).order_by(t.c.id))]


def column_names(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("e_work_order")}


def count(engine: Engine, t: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t)).scalar_one())


# ------------------------------------------------------------------ publish


def test_first_publish_stores_sources_creates_tables_and_activates(engine: Engine) -> None:
    app = build(V1)
    result = versions.publish(engine, app, created_by="ops", note="first", now=T0)
    assert (result.number, result.applied, result.unchanged) == (1, True, False)
    assert [s.kind for s in result.plan.steps] == ["create_table"]
    [info] = versions.list_versions(engine)
    assert info == versions.VersionInfo(1, "demo", "1", app.digest, T0, "ops", True, "first")
    assert versions.active_version(engine) == info
    with engine.connect() as conn:
        stored = conn.execute(select(app_versions.c.sources)).scalar_one()
    assert stored == app.sources
    assert "e_work_order" in inspect(engine).get_table_names()


def test_publishing_v2_that_adds_a_field_keeps_every_v1_record(engine: Engine) -> None:
    versions.publish(engine, build(V1), created_by="ops")
    for i in range(3):
        add_order(engine, title=f"order {i}", rating=i)
    result = versions.publish(engine, build(V2, "2"), created_by="ops")
    assert (result.number, result.applied) == (2, True)
    assert [s.description for s in result.plan.steps] == [
        "add column e_work_order.cost_surcharge (FLOAT)"]
    assert orders(engine, "title", "rating", "cost_surcharge") == [
        ("order 0", 0, None), ("order 1", 1, None), ("order 2", 2, None)]
    assert [(v.number, v.active) for v in versions.list_versions(engine)] == [
        (1, False), (2, True)]


@pytest.mark.parametrize("change", [
    ("  rating: {type: integer}\n", ""),  # a field removed
    ("max_length: 50}", "max_length: 20}"),  # a type narrowed
])
def test_destructive_version_is_refused_without_the_flag_and_applies_with_it(
        engine: Engine, change: tuple[str, str]) -> None:
    versions.publish(engine, build(V1), created_by="ops")
    add_order(engine, title="leak", rating=5)
    v2 = build(V1.replace(*change), "2")
    with pytest.raises(DestructiveChangeRefused) as err:
        versions.publish(engine, v2, created_by="ops")
    assert len(err.value.plan.destructive_steps) == 1
    assert "[destructive]" in err.value.plan.text()
    assert [v.number for v in versions.list_versions(engine)] == [1]
    assert "rating" in column_names(engine)
    result = versions.publish(engine, v2, created_by="ops", allow_destructive=True)
    assert (result.number, result.applied) == (2, True)
    assert versions.active_version(engine).number == 2  # type: ignore[union-attr]
    assert orders(engine, "title") == [("leak",)]


def test_publishing_the_same_bundle_twice_is_unchanged(engine: Engine) -> None:
    first = versions.publish(engine, build(V1), created_by="ops")
    again = versions.publish(engine, build(V1), created_by="someone else")
    assert (again.number, again.applied, again.unchanged) == (first.number, False, True)
    assert again.plan.empty
    assert len(versions.list_versions(engine)) == 1


def test_dry_run_changes_nothing(engine: Engine) -> None:
    result = versions.publish(engine, build(V1), created_by="ops", dry_run=True)
    assert (result.number, result.applied, result.unchanged) == (1, False, False)
    assert [s.kind for s in result.plan.steps] == ["create_table"]
    assert versions.list_versions(engine) == []
    assert "e_work_order" not in inspect(engine).get_table_names()
    versions.publish(engine, build(V1), created_by="ops")
    result = versions.publish(engine, build(V2, "2"), created_by="ops", dry_run=True)
    assert (result.number, result.applied) == (2, False)
    assert "cost_surcharge" not in column_names(engine)
    assert len(versions.list_versions(engine)) == 1


def test_publish_and_rollback_write_audit_rows(engine: Engine) -> None:
    versions.publish(engine, build(V1), created_by="ops", now=T0)
    versions.publish(engine, build(V2, "2"), created_by="ops", now=T0)
    versions.rollback(engine, 1, created_by="lead", now=T0)
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.record_id, audit_log.c.actor,
                                   audit_log.c.changes).order_by(audit_log.c.id)).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("publish", 1, "ops"), ("publish", 2, "ops"), ("rollback", 1, "lead")]
    assert rows[1][3]["steps"] == ["add column e_work_order.cost_surcharge (FLOAT)"]
    assert rows[2][3]["previous"] == 2


# ------------------------------------------------------------------ load


def test_load_app_compiles_stored_sources_and_caches_by_digest(engine: Engine) -> None:
    v1, v2 = build(V1), build(V2, "2")
    versions.publish(engine, v1, created_by="ops")
    versions.publish(engine, v2, created_by="ops")
    assert versions.load_app(engine) is v2  # the published App is remembered
    versions.clear_cache()
    loaded = versions.load_app(engine)
    assert loaded is not v2 and loaded.digest == v2.digest
    assert "cost_surcharge" in loaded.entities["work_order"].fields
    assert versions.load_app(engine) is loaded
    assert versions.load_app(engine, 1).digest == v1.digest


def test_load_app_errors_say_what_to_do(engine: Engine) -> None:
    with pytest.raises(VersionError) as err:
        versions.load_app(engine)
    assert str(err.value) == ("no app version is active yet (hint: publish a bundle first: "
                              "dispatchflow publish BUNDLE)")
    with pytest.raises(VersionError, match="there is no app version 7"):
        versions.load_app(engine, 7)
    with pytest.raises(VersionError, match="there is no app version 7"):
        versions.rollback(engine, 7, created_by="ops")


# ------------------------------------------------------------------ rollback


def test_rollback_to_v1_works_and_keeps_data(engine: Engine) -> None:
    v1 = build(V1)
    versions.publish(engine, v1, created_by="ops")
    add_order(engine, title="old", rating=1)
    versions.publish(engine, build(V2, "2"), created_by="ops")
    add_order(engine, title="new", rating=2, cost_surcharge=12.5)
    info = versions.rollback(engine, 1, created_by="lead")
    assert (info.number, info.active) == (1, True)
    assert versions.active_version(engine) == info
    assert versions.load_app(engine).digest == v1.digest
    # the column v2 added stays, with its data: a rollback never loses data
    assert orders(engine, "title", "rating", "cost_surcharge") == [
        ("old", 1, None), ("new", 2, 12.5)]
    # publishing v2's bundle again is a new version whose tables already fit
    again = versions.publish(engine, build(V2, "2"), created_by="ops")
    assert (again.number, again.unchanged, again.plan.empty) == (3, False, True)


def test_rollback_after_a_destructive_version_re_adds_columns(engine: Engine) -> None:
    versions.publish(engine, build(V1), created_by="ops")
    add_order(engine, title="a", rating=4)
    versions.publish(engine, build(V1.replace("  rating: {type: integer}\n", ""), "2"),
                     created_by="ops", allow_destructive=True)
    assert "rating" not in column_names(engine)
    versions.rollback(engine, 1, created_by="ops")
    assert orders(engine, "title", "rating") == [("a", None)]


def test_rollback_keeps_a_wider_column_and_activating_the_active_one_is_a_no_op(
        engine: Engine) -> None:
    versions.publish(engine, build(V1), created_by="ops")
    versions.publish(engine, build(V1.replace("max_length: 50}", "max_length: 200}"), "2"),
                     created_by="ops")
    add_order(engine, title="x" * 120)
    versions.rollback(engine, 1, created_by="ops")
    assert orders(engine, "title") == [("x" * 120,)]
    assert versions.rollback(engine, 1, created_by="ops").active


def test_rollback_is_refused_when_additive_migration_is_impossible(engine: Engine) -> None:
    versions.publish(engine, build(V1), created_by="ops")
    add_order(engine, title="a", asset_code="17")
    retyped = V1.replace("asset_code: {type: string, max_length: 32}", "asset_code: {type: integer}")
    versions.publish(engine, build(retyped, "2"), created_by="ops", allow_destructive=True)
    with pytest.raises(MigrationError) as err:
        versions.rollback(engine, 1, created_by="ops")
    assert err.value.message.startswith(
        "cannot roll back to version 1: cannot migrate additively: change the type of column "
        "e_work_order.asset_code from BIGINT to VARCHAR(32)")
    assert versions.active_version(engine).number == 2  # type: ignore[union-attr]
    assert orders(engine, "asset_code") == [(17,)]
    assert count(engine, audit_log) == 2
