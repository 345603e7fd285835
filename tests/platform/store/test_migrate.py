"""Tests for dispatchflow.platform.store.migrate on SQLite and PostgreSQL.

Every test runs twice: on a SQLite file in tmp_path and on PostgreSQL
(127.0.0.1:5432, database ``test``) inside a fresh schema ``t_<random>`` that is
dropped afterwards. PostgreSQL being down is a failure, never a skip.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import column, insert, inspect, select, table
from sqlalchemy.engine import Engine

from dispatchflow.dsl.compiler import App, compile_sources
from dispatchflow.dsl.diagnostics import render_text
from dispatchflow.errors import ConflictError
from dispatchflow.platform.store import migrate
from dispatchflow.platform.store.migrate import DestructiveChangeRefused, MigrationError
from dispatchflow.platform.store.storage import build_metadata

APP = """\
app: demo
version: "1"
title: {en: Demo}
timezone: Asia/Shanghai
"""

CUSTOMER = """\
entity: customer
label: {en: Customer}
fields:
  name: {type: string, required: true, max_length: 50}
"""

WORK_ORDER = """\
entity: work_order
label: {en: Work order}
fields:
  title: {type: string, required: true, max_length: 50}
  description: {type: text}
  rating: {type: integer}
  customer: {type: reference, entity: customer}
  asset_code: {type: string, max_length: 32, index: true}
"""


def build(work_order: str = WORK_ORDER, **extra: str | None) -> App:
    """Compile the demo bundle with ``work_order.yaml`` replaced and files added/removed."""
    files: dict[str, str | None] = {"app.yaml": APP, "entities/customer.yaml": CUSTOMER,
                                    "entities/work_order.yaml": work_order}
    files.update({k.replace("__", "/") + ".yaml": v for k, v in extra.items()})
    result = compile_sources({k: v for k, v in files.items() if v is not None})
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


def with_field(line: str, base: str = WORK_ORDER) -> str:
    return base + f"  {line}\n"


def migrate_to(engine: Engine, app: App, allow_destructive: bool = False) -> migrate.MigrationPlan:
    plan = migrate.plan(engine, app)
    migrate.apply(engine, plan, allow_destructive=allow_destructive)
    assert migrate.plan(engine, app).empty, migrate.plan(engine, app).text()
    return plan


def add_order(engine: Engine, **values: Any) -> int:
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    t = build_metadata(build()).tables["e_work_order"]
    with engine.begin() as conn:
        row = {"created_at": now, "updated_at": now, "tags": [], "row_version": 1,
               "title": "leak", **values}
        return int(conn.execute(insert(t).values(row).returning(t.c.id)).scalar_one())


def orders(engine: Engine, *columns: str) -> list[tuple[Any, ...]]:
    t = table("e_work_order", *(column(c) for c in ("id", *columns)))
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]


def columns(engine: Engine, table: str = "e_work_order") -> dict[str, Any]:
    return {c["name"]: c["type"] for c in inspect(engine).get_columns(table)}


# ------------------------------------------------------------------ planning


def test_first_plan_creates_referenced_tables_first(engine: Engine) -> None:
    plan = migrate.plan(engine, build())
    assert [(s.kind, s.table) for s in plan.steps] == [
        ("create_table", "e_customer"), ("create_table", "e_work_order")]
    assert not plan.destructive_steps
    assert plan.text().splitlines()[0] == "migration plan: 2 steps, 0 destructive"
    migrate_to(engine, build())
    fks = inspect(engine).get_foreign_keys("e_work_order")
    assert [(f["constrained_columns"], f["referred_table"]) for f in fks] == [
        (["customer"], "e_customer")]


def test_no_changes_gives_an_empty_plan(engine: Engine) -> None:
    migrate_to(engine, build())
    plan = migrate.plan(engine, build())
    assert plan.empty
    assert plan.text() == "migration plan: no table changes"


def test_other_tables_are_never_touched(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE df_keep (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE legacy (id INTEGER PRIMARY KEY)")
    migrate_to(engine, build())
    assert {"df_keep", "legacy"} <= set(inspect(engine).get_table_names())


# ------------------------------------------------------------------ additive


def test_added_field_is_an_additive_column_and_keeps_rows(engine: Engine) -> None:
    migrate_to(engine, build())
    first = add_order(engine, title="漏水", rating=4)
    plan = migrate_to(engine, build(with_field("cost_surcharge: {type: decimal}")))
    assert [s.description for s in plan.steps] == [
        "add column e_work_order.cost_surcharge (FLOAT)"]
    assert not plan.destructive_steps
    assert orders(engine, "title", "rating", "cost_surcharge") == [(first, "漏水", 4, None)]


def test_new_entity_and_reference_to_it(engine: Engine) -> None:
    migrate_to(engine, build())
    add_order(engine)
    region = "entity: region\nlabel: {en: Region}\nfields:\n  code: {type: string, unique: true}\n"
    app = build(with_field("region: {type: reference, entity: region}"), entities__region=region)
    plan = migrate_to(engine, app)
    kinds = [(s.kind, s.table) for s in plan.steps]
    assert kinds[0] == ("create_table", "e_region")
    assert ("add_column", "e_work_order") in kinds and ("create_index", "e_work_order") in kinds
    assert "add column e_work_order.region (BIGINT, references e_region)" in plan.text()
    fks = {f["referred_table"] for f in inspect(engine).get_foreign_keys("e_work_order")}
    assert fks == {"e_customer", "e_region"}
    assert len(orders(engine)) == 1


@pytest.mark.parametrize("old, new, words", [
    ("title: {type: string, required: true, max_length: 50}",
     "title: {type: string, required: true, max_length: 200}", "VARCHAR(50) to VARCHAR(200)"),
    ("title: {type: string, required: true, max_length: 50}",
     "title: {type: text, required: true}", "VARCHAR(50) to TEXT"),
    ("rating: {type: integer}", "rating: {type: decimal}", "BIGINT to FLOAT"),
])
def test_widening_is_additive_and_keeps_values(engine: Engine, old: str, new: str,
                                               words: str) -> None:
    migrate_to(engine, build())
    add_order(engine, title="x" * 50, rating=3)
    plan = migrate_to(engine, build(WORK_ORDER.replace(old, new)))
    assert [s.kind for s in plan.steps] == ["widen_column"]
    assert words in plan.steps[0].description
    assert not plan.destructive_steps
    assert orders(engine, "title", "rating")[0][1:] == ("x" * 50, 3)


def test_index_and_unique_changes_are_additive(engine: Engine) -> None:
    migrate_to(engine, build())
    plan = migrate_to(engine, build(WORK_ORDER.replace("max_length: 32, index: true",
                                                       "max_length: 32, unique: true")))
    assert [(s.kind, s.name) for s in plan.steps] == [
        ("drop_index", "ix_e_work_order_asset_code"),
        ("create_unique", "uq_e_work_order_asset_code")]
    assert not plan.destructive_steps
    uniques = inspect(engine).get_unique_constraints("e_work_order")
    assert [u["column_names"] for u in uniques] == [["asset_code"]]
    plan = migrate_to(engine, build())
    assert [s.kind for s in plan.steps] == ["drop_unique", "create_index"]


def test_unique_constraint_on_duplicates_fails_clearly_and_changes_nothing(
        engine: Engine) -> None:
    migrate_to(engine, build())
    for _ in range(2):
        add_order(engine, asset_code="AC-1")
    add_order(engine, asset_code=None)
    add_order(engine, asset_code=None)
    app = build(WORK_ORDER.replace("max_length: 32, index: true", "max_length: 32, unique: true")
                + "  cost_surcharge: {type: decimal}\n")
    with pytest.raises(MigrationError) as err:
        migrate.apply(engine, migrate.plan(engine, app))
    assert str(err.value) == (
        "cannot add unique constraint on e_work_order (asset_code): existing rows repeat a "
        "value: 'AC-1' (2 rows) (hint: make the values unique (or empty) first, or remove "
        "'unique: true' from the field)")
    assert "cost_surcharge" not in columns(engine)


# ------------------------------------------------------------------ destructive


def test_removed_field_is_destructive_and_refused_without_the_flag(engine: Engine) -> None:
    migrate_to(engine, build())
    add_order(engine, rating=5)
    app = build(WORK_ORDER.replace("  rating: {type: integer}\n", ""))
    plan = migrate.plan(engine, app)
    assert [(s.kind, s.column, s.destructive) for s in plan.steps] == [
        ("drop_column", "rating", True)]
    with pytest.raises(DestructiveChangeRefused) as err:
        migrate.apply(engine, plan)
    assert err.value.plan is plan
    assert str(err.value).splitlines()[:3] == [
        "refused: 1 destructive step; re-run with --allow-destructive",
        "migration plan: 1 step, 1 destructive",
        "  ! drop column e_work_order.rating (BIGINT) and its values  [destructive]"]
    assert "rating" in columns(engine)
    migrate.apply(engine, plan, allow_destructive=True)
    assert "rating" not in columns(engine)
    assert len(orders(engine, "title")) == 1


def test_a_rename_is_a_drop_plus_an_add_and_the_plan_says_so(engine: Engine) -> None:
    migrate_to(engine, build())
    plan = migrate.plan(engine, build(WORK_ORDER.replace("rating:", "stars:")))
    assert sorted(s.kind for s in plan.steps) == ["add_column", "drop_column"]
    assert plan.notes == (
        "e_work_order loses rating and gains stars: if a field was renamed, this is a drop plus "
        "an add and the old values are NOT copied to the new column; copy them first",)
    assert plan.text().endswith("  note: " + plan.notes[0])


def test_removed_entity_drops_its_table_only_with_the_flag(engine: Engine) -> None:
    extra = "entity: region\nlabel: {en: Region}\nfields:\n  code: {type: string}\n"
    migrate_to(engine, build(entities__region=extra))
    plan = migrate.plan(engine, build())
    assert [(s.kind, s.table, s.destructive) for s in plan.steps] == [
        ("drop_table", "e_region", True)]
    assert "records are deleted" in plan.steps[0].description
    with pytest.raises(DestructiveChangeRefused):
        migrate.apply(engine, plan)
    migrate_to(engine, build(), allow_destructive=True)
    assert "e_region" not in inspect(engine).get_table_names()


def test_narrowing_is_destructive_and_checks_values_first(engine: Engine) -> None:
    migrate_to(engine, build())
    add_order(engine, title="a title longer than ten")
    app = build(WORK_ORDER.replace("max_length: 50}", "max_length: 10}", 1))
    plan = migrate.plan(engine, app)
    assert [(s.kind, s.narrowing, s.destructive) for s in plan.steps] == [
        ("alter_type", True, True)]
    assert plan.steps[0].description.startswith(
        "narrow column e_work_order.title from VARCHAR(50) to VARCHAR(10)")
    with pytest.raises(MigrationError) as err:
        migrate.apply(engine, plan, allow_destructive=True)
    assert err.value.message == ("cannot change e_work_order.title to VARCHAR(10): 1 row holds a "
                                 "value it cannot store (id 1: 'a title longer than ten')")
    assert columns(engine)["title"].length == 50


def test_incompatible_type_change_applies_with_the_flag_when_values_fit(engine: Engine) -> None:
    migrate_to(engine, build())
    add_order(engine, asset_code="17")
    app = build(WORK_ORDER.replace("asset_code: {type: string, max_length: 32, index: true}",
                                   "asset_code: {type: integer, index: true}"))
    plan = migrate.plan(engine, app)
    assert [(s.kind, s.narrowing) for s in plan.steps] == [("alter_type", False)]
    assert "change the type of column e_work_order.asset_code from VARCHAR(32) to BIGINT" \
        in plan.steps[0].description
    migrate_to(engine, app, allow_destructive=True)
    assert orders(engine, "asset_code")[0][1] == 17


def test_reference_to_another_entity_recreates_the_column(engine: Engine) -> None:
    region = "entity: region\nlabel: {en: Region}\nfields:\n  code: {type: string}\n"
    migrate_to(engine, build(entities__region=region))
    app = build(WORK_ORDER.replace("entity: customer", "entity: region"), entities__region=region)
    plan = migrate.plan(engine, app)
    assert [(s.kind, s.recreate, s.destructive) for s in plan.steps] == [
        ("drop_index", False, False), ("alter_type", True, True), ("create_index", False, False)]
    assert plan.steps[1].description == (
        "recreate column e_work_order.customer as a reference to e_region (it was a reference "
        "to e_customer): its values are cleared")
    migrate_to(engine, app, allow_destructive=True)
    fks = {f["referred_table"] for f in inspect(engine).get_foreign_keys("e_work_order")}
    assert fks == {"e_region"}


# ------------------------------------------------------------------ transactions


def test_a_failing_step_rolls_back_every_earlier_step(engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    region = "entity: region\nlabel: {en: Region}\nfields:\n  code: {type: string}\n"
    migrate_to(engine, build(entities__region=region))
    add_order(engine, rating=1)
    app = build(with_field("cost_surcharge: {type: decimal}"),
                entities__region=None, entities__asset=region.replace("region", "asset"))
    plan = migrate.plan(engine, app)
    assert [s.kind for s in plan.steps] == ["create_table", "add_column", "drop_table"]

    def broken_drop(self: Any, name: str, **kw: Any) -> None:
        raise MigrationError("boom")
    monkeypatch.setattr(migrate.Operations, "drop_table", broken_drop)
    with pytest.raises(MigrationError, match="boom"):
        migrate.apply(engine, plan, allow_destructive=True)
    tables = set(inspect(engine).get_table_names())
    assert "e_asset" not in tables and "e_region" in tables
    assert "cost_surcharge" not in columns(engine)
    assert orders(engine, "rating")[0][1] == 1


def test_a_stale_plan_is_refused(engine: Engine) -> None:
    migrate_to(engine, build())
    plan = migrate.plan(engine, build(with_field("cost_surcharge: {type: decimal}")))
    migrate_to(engine, build(with_field("other: {type: text}")))
    with pytest.raises(ConflictError, match="changed since this migration was planned"):
        migrate.apply(engine, plan, allow_destructive=True)


def test_additive_only_skips_losses_and_refuses_incompatible_changes(engine: Engine) -> None:
    migrate_to(engine, build(with_field("extra: {type: text}")))
    narrowed = build(WORK_ORDER.replace("max_length: 50}", "max_length: 10}", 1))
    plan = migrate.plan(engine, narrowed)
    assert {s.kind for s in plan.steps} == {"drop_column", "alter_type"}
    assert plan.additive_only().empty
    retyped = build(WORK_ORDER.replace("rating: {type: integer}", "rating: {type: boolean}"))
    with pytest.raises(MigrationError, match="cannot migrate additively: change the type of "
                                             "column e_work_order.rating from BIGINT to"):
        migrate.plan(engine, retyped).additive_only()
