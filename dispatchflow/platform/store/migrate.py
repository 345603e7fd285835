"""Bring the entity tables (``e_*``) in line with an app: plan the changes, then apply them.

:func:`plan` compares the live database (reflected) with
:func:`~dispatchflow.platform.store.storage.build_metadata` and lists the steps in plain
English. Additive steps run automatically: a new table, a new column, a wider
column type (``VARCHAR(n)`` -> ``VARCHAR(m > n)`` or ``TEXT``, ``INTEGER`` ->
``BIGINT`` -> ``FLOAT``), a new index or unique constraint (which fails, with
the repeated values named, when existing rows are not unique), and dropping an
index, a unique constraint or a foreign key (no data is lost). Destructive
steps lose data and run only when the caller allows them: a dropped column (a
removed field; a renamed field looks like a drop plus an add, and the plan says
so), a dropped table (a removed entity), a narrowing or incompatible type change
(refused, with the rows named, when a stored value would not fit), and a
reference that now points at another entity (its column is recreated, so its
values are cleared). Tables not named ``e_*`` are never touched; nullability
and defaults are not compared (field columns are always nullable).

:func:`apply` runs a plan with Alembic operations (batch mode, so SQLite
recreates a table where it cannot ALTER it) inside one transaction: PostgreSQL
has transactional DDL, and on SQLite :func:`migration_transaction` takes the
driver out of its implicit transaction handling so DDL joins ``BEGIN
IMMEDIATE`` too. Nothing is left half-migrated: any failure rolls back every
step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Column,
    ForeignKey,
    MetaData,
    Table,
    UniqueConstraint,
    func,
    inspect,
    select,
    table,
)
from sqlalchemy import column as sql_column
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.schema import sort_tables_and_constraints
from sqlalchemy.sql.expression import ColumnClause

from ...dsl.compiler import App
from ...errors import ConflictError, DispatchflowError
from .db import NAMING
from .storage import ENTITY_PREFIX, build_metadata

#: Order in which the steps of one table run (drops first, so a recreated
#: column or a constraint moved to another column never collides).
_TABLE_STEP_ORDER = ("drop_index", "drop_unique", "drop_foreign_key", "drop_column",
                     "add_column", "widen_column", "alter_type", "create_index", "create_unique")


class MigrationError(DispatchflowError):
    """A migration step could not run (e.g. duplicates block a new unique constraint)."""


class DestructiveChangeRefused(ConflictError):
    """The plan has destructive steps and the caller did not allow them; ``plan`` has them."""

    def __init__(self, plan: MigrationPlan) -> None:
        n = len(plan.destructive_steps)
        super().__init__(
            f"refused: {n} destructive step{'s' if n != 1 else ''}; "
            "re-run with --allow-destructive\n" + plan.text())
        self.plan = plan


@dataclass(frozen=True)
class Step:
    """One change to one table.

    ``kind`` is one of create_table, add_column, widen_column, alter_type,
    create_index, drop_index, create_unique, drop_unique, drop_foreign_key,
    drop_column, drop_table. ``narrowing`` marks an ``alter_type`` whose live
    column can already hold every value of the new type (a rollback may keep
    the wider live column). ``recreate`` marks an ``alter_type`` done by dropping
    and re-adding the column (a reference to another entity).
    """

    kind: str
    table: str
    description: str
    destructive: bool = False
    column: str | None = None
    name: str | None = None
    columns: tuple[str, ...] = ()
    narrowing: bool = False
    recreate: bool = False


@dataclass(frozen=True)
class MigrationPlan:
    """The steps that bring the live ``e_*`` tables to ``metadata``, in execution order."""

    steps: tuple[Step, ...]
    metadata: MetaData = field(repr=False, compare=False)
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.steps

    @property
    def destructive_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.destructive)

    def additive_only(self) -> MigrationPlan:
        """The plan without the steps that lose data (what a rollback runs).

        Dropped columns and tables stay, and a narrowing type change keeps the
        wider live column. Raises :class:`MigrationError` when a step can be
        neither kept nor skipped (an incompatible type change).
        """
        blocking = [s for s in self.steps if s.kind == "alter_type" and not s.narrowing]
        if blocking:
            raise MigrationError(
                "cannot migrate additively: " + "; ".join(s.description for s in blocking),
                hint="publish a new version that keeps the live column types instead")
        return replace(self, steps=tuple(s for s in self.steps if not s.destructive), notes=())

    def text(self) -> str:
        """The plan as lines people read: ``+`` additive, ``!`` destructive, then notes."""
        if not self.steps:
            return "migration plan: no table changes"
        n = len(self.destructive_steps)
        lines = [f"migration plan: {len(self.steps)} step{'s' if len(self.steps) != 1 else ''}"
                 f", {n} destructive"]
        for s in self.steps:
            lines.append(f"  {'!' if s.destructive else '+'} {s.description}"
                         + ("  [destructive]" if s.destructive else ""))
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


# ------------------------------------------------------------------ types


_NUMERIC_RANK = {"integer": 0, "bigint": 1, "float": 2}


def _shape(t: sqltypes.TypeEngine[Any]) -> tuple[str, int | None]:
    """A type's family and length, the same for a declared and a reflected type."""
    if isinstance(t, sqltypes.JSON):
        return "json", None
    if isinstance(t, sqltypes.Boolean):
        return "boolean", None
    if isinstance(t, sqltypes.DateTime):
        return "datetime", None
    if isinstance(t, sqltypes.Date):
        return "date", None
    if isinstance(t, sqltypes.Float):
        return "float", None
    if isinstance(t, sqltypes.Numeric):
        return "numeric", None
    if isinstance(t, sqltypes.BigInteger):
        return "bigint", None
    if isinstance(t, sqltypes.Integer):
        return "integer", None
    if isinstance(t, sqltypes.Text):
        return "text", None
    if isinstance(t, sqltypes.String):
        return ("varchar", t.length) if t.length else ("text", None)
    if isinstance(t, sqltypes.LargeBinary):
        return "binary", None
    return type(t).__name__.lower(), None


def _compare_types(live: tuple[str, int | None], want: tuple[str, int | None]) -> str:
    """``same``, ``widen`` (want holds every live value), ``narrow`` (the reverse) or ``other``."""
    if live == want:
        return "same"
    (lf, ll), (wf, wl) = live, want
    if lf in _NUMERIC_RANK and wf in _NUMERIC_RANK:
        return "widen" if _NUMERIC_RANK[wf] > _NUMERIC_RANK[lf] else "narrow"
    if lf in ("varchar", "text") and wf in ("varchar", "text"):
        if wf == "text" or (lf == "varchar" and (wl or 0) > (ll or 0)):
            return "widen"
        return "narrow"
    return "other"


def _type_text(t: sqltypes.TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(t.compile(dialect=dialect))
    except SQLAlchemyError:  # a reflected type the dialect cannot render
        return type(t).__name__


# ------------------------------------------------------------------ planning


@dataclass
class _Live:
    """A reflected table: columns, indexes, unique constraints and foreign keys."""

    columns: dict[str, Any]  # name -> reflected column (name, type, nullable, ...)
    indexes: dict[str, tuple[str, ...]]
    uniques: dict[str, tuple[str, ...]]
    fks: dict[str, tuple[str | None, str]]  # column -> (constraint name, referred table)


def _reflect(bind: Engine | Connection) -> dict[str, _Live]:
    insp = inspect(bind)
    out: dict[str, _Live] = {}
    for name in insp.get_table_names():
        if not name.startswith(ENTITY_PREFIX):
            continue
        indexes = {ix["name"]: tuple(c for c in ix["column_names"] if c)
                   for ix in insp.get_indexes(name)
                   if ix["name"] and not ix.get("duplicates_constraint") and not ix["unique"]}
        uniques = {uq["name"]: tuple(uq["column_names"])
                   for uq in insp.get_unique_constraints(name) if uq["name"]}
        fks = {fk["constrained_columns"][0]: (fk.get("name"), fk["referred_table"])
               for fk in insp.get_foreign_keys(name) if len(fk["constrained_columns"]) == 1}
        out[name] = _Live({c["name"]: c for c in insp.get_columns(name)}, indexes, uniques, fks)
    return out


def _ordered_tables(metadata: MetaData) -> list[Table]:
    """Tables with referenced ones first (cycles broken, as create_all does)."""
    return [t for t, _ in sort_tables_and_constraints(metadata.tables.values()) if t is not None]


def plan(bind: Engine | Connection, app: App) -> MigrationPlan:
    """The steps that bring the live ``e_*`` tables of ``bind`` to what ``app`` declares.

    Reads the database, changes nothing. Tables that are not ``e_*`` are never
    touched.
    """
    return plan_for_metadata(bind, build_metadata(app))


def plan_for_metadata(bind: Engine | Connection, metadata: MetaData) -> MigrationPlan:
    """:func:`plan` against an already built entity MetaData."""
    dialect = bind.dialect
    live = _reflect(bind)
    ordered = _ordered_tables(metadata)
    steps: list[Step] = []
    notes: list[str] = []
    for t in ordered:
        if t.name not in live:
            steps.append(Step("create_table", t.name, f"create table {t.name} "
                              f"({len(t.columns)} columns)"))
    for t in ordered:
        if t.name in live:
            table_steps = _table_steps(t, live[t.name], dialect)
            steps.extend(sorted(table_steps, key=lambda s: _TABLE_STEP_ORDER.index(s.kind)))
            dropped = [s.column for s in table_steps if s.kind == "drop_column"]
            added = [s.column for s in table_steps if s.kind == "add_column"]
            if dropped and added:
                notes.append(
                    f"{t.name} loses {', '.join(map(str, dropped))} and gains "
                    f"{', '.join(map(str, added))}: if a field was renamed, this is a drop plus an "
                    "add and the old values are NOT copied to the new column; copy them first")
    wanted = set(metadata.tables)
    gone = [name for name in live if name not in wanted]
    for name in reversed(_drop_order(gone, live)):
        steps.append(Step("drop_table", name, f"drop table {name} and its "
                          f"{len(live[name].columns)} columns (an entity was removed; its "
                          "records are deleted)", destructive=True))
    created = [s.table for s in steps if s.kind == "create_table"]
    if gone and created:
        notes.append(f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} dropped and "
                     f"{', '.join(created)} created: if an entity was renamed, its records are "
                     "NOT moved to the new table; copy them first")
    return MigrationPlan(tuple(steps), metadata, tuple(notes))


def _drop_order(names: list[str], live: dict[str, _Live]) -> list[str]:
    """``names`` with referenced tables first (so reversed, referencing ones drop first)."""
    done: list[str] = []

    def visit(name: str, seen: set[str]) -> None:
        if name in done or name in seen:
            return
        seen.add(name)
        for _, target in live[name].fks.values():
            if target in names:
                visit(target, seen)
        done.append(name)
    for name in sorted(names):
        visit(name, set())
    return done


def _fk_target(col: Column[Any]) -> str | None:
    for fk in col.foreign_keys:
        return fk.target_fullname.split(".")[0]
    return None


def _table_steps(t: Table, live: _Live, dialect: Dialect) -> list[Step]:
    steps: list[Step] = []
    name = t.name
    recreated: set[str] = set()  # columns dropped and re-added: their indexes go too
    for col in t.columns:
        where = f"{name}.{col.name}"
        want_type = col.type.dialect_impl(dialect)
        if col.name not in live.columns:
            refs = f", references {_fk_target(col)}" if col.foreign_keys else ""
            steps.append(Step("add_column", name, f"add column {where} "
                              f"({_type_text(col.type, dialect)}{refs})", column=col.name))
            continue
        live_type = live.columns[col.name]["type"]
        target, live_fk = _fk_target(col), live.fks.get(col.name)
        if target and (live_fk is None or live_fk[1] != target):
            was = f"a reference to {live_fk[1]}" if live_fk else \
                f"a {_type_text(live_type, dialect)} column"
            steps.append(Step("alter_type", name, f"recreate column {where} as a reference to "
                              f"{target} (it was {was}): its values are cleared",
                              destructive=True, column=col.name, recreate=True,
                              name=live_fk[0] if live_fk else None))
            recreated.add(col.name)
            continue
        if not target and live_fk is not None:
            steps.append(Step("drop_foreign_key", name, f"drop the foreign key of {where} "
                              f"(to {live_fk[1]}); its values are kept",
                              column=col.name, name=live_fk[0]))
        change = _compare_types(_shape(live_type), _shape(want_type))
        if change == "same":
            continue
        change_text = f"{where} from {_type_text(live_type, dialect)} to " \
                      f"{_type_text(col.type, dialect)}"
        if change == "widen":
            steps.append(Step("widen_column", name, f"widen column {change_text}",
                              column=col.name))
        else:
            what = "narrow" if change == "narrow" else "change the type of"
            steps.append(Step("alter_type", name, f"{what} column {change_text}: values that "
                              "do not fit make the migration fail", destructive=True,
                              column=col.name, narrowing=change == "narrow"))
    wanted_cols = {c.name for c in t.columns}
    for cname, info in live.columns.items():
        if cname not in wanted_cols:
            steps.append(Step("drop_column", name, f"drop column {name}.{cname} "
                              f"({_type_text(info['type'], dialect)}) and its values",
                              destructive=True, column=cname))
    want_ix: dict[str, tuple[str, ...]] = {str(ix.name): tuple(c.name for c in ix.columns)
                                           for ix in t.indexes if ix.name}
    want_uq = {str(c.name): tuple(col.name for col in c.columns) for c in t.constraints
               if isinstance(c, UniqueConstraint) and c.name}
    for kind, want, have in (("index", want_ix, live.indexes),
                             ("unique", want_uq, live.uniques)):
        label = "index" if kind == "index" else "unique constraint"
        stale = {n for n, cols in have.items() if want.get(n) != cols or recreated & set(cols)}
        for ix_name in sorted(stale):
            cols = have[ix_name]
            steps.append(Step(f"drop_{kind}", name, f"drop {label} {ix_name} on {name} "
                              f"({', '.join(cols)})", name=ix_name, columns=cols))
        for ix_name, cols in want.items():
            if ix_name in stale or have.get(ix_name) != cols:
                extra = "; fails if existing rows repeat a value" if kind == "unique" else ""
                steps.append(Step(f"create_{kind}", name, f"create {label} {ix_name} on {name} "
                                  f"({', '.join(cols)}){extra}", name=ix_name, columns=cols))
    return steps


# ------------------------------------------------------------------ applying


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that DDL joins; commits on success.

    PostgreSQL: an ordinary transaction (DDL is transactional). SQLite: the
    driver's implicit transaction handling is switched off and the block runs in
    ``BEGIN IMMEDIATE`` (one writer) with foreign keys off, as SQLite requires
    when batch mode recreates a referenced table; ``PRAGMA foreign_key_check``
    runs before commit and any violation rolls everything back.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as base:
        conn = base.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
                bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if bad:
                    raise MigrationError(
                        f"foreign key check failed after migration: {len(bad)} row(s), e.g. "
                        f"table {bad[0][0]} row {bad[0][1]} refers to a missing {bad[0][2]} row")
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def apply(engine: Engine, migration: MigrationPlan, allow_destructive: bool = False) -> None:
    """Run ``migration`` in one transaction.

    Raises :class:`DestructiveChangeRefused` (with the plan) when a step is
    destructive and ``allow_destructive`` is False, :class:`ConflictError` when
    the database changed since the plan was made, and :class:`MigrationError`
    when a step fails (nothing is changed then).
    """
    if migration.destructive_steps and not allow_destructive:
        raise DestructiveChangeRefused(migration)
    with migration_transaction(engine) as conn:
        current = plan_for_metadata(conn, migration.metadata)
        if current.steps != migration.steps:
            raise ConflictError("the database changed since this migration was planned",
                                hint="make the plan again and review it")
        apply_in(conn, migration)


def apply_in(conn: Connection, migration: MigrationPlan) -> None:
    """Run ``migration``'s steps on ``conn``, which is inside a transaction the caller owns.

    The caller checks destructiveness (see :func:`apply`). Raises
    :class:`MigrationError` when a step fails.
    """
    if migration.empty:
        return
    _check_unique_data(conn, migration)
    _check_values_fit(conn, migration)
    metadata = migration.metadata
    new = [metadata.tables[s.table] for s in migration.steps if s.kind == "create_table"]
    if new:
        try:
            metadata.create_all(conn, tables=new, checkfirst=False)
        except DBAPIError as exc:
            raise MigrationError(f"cannot create tables: {_db_message(exc)}") from exc
    ops = Operations(MigrationContext.configure(connection=conn))
    by_table: dict[str, list[Step]] = {}
    for s in migration.steps:
        if s.kind not in ("create_table", "drop_table"):
            by_table.setdefault(s.table, []).append(s)
    for name, steps in by_table.items():
        # SQLite's ADD COLUMN cannot add a foreign key: such a table is recreated.
        fk_added = any(s.kind == "add_column" and s.column and
                       metadata.tables[name].columns[s.column].foreign_keys for s in steps)
        recreate: Literal["auto", "always"] = \
            "always" if fk_added and conn.dialect.name == "sqlite" else "auto"
        try:
            with ops.batch_alter_table(name, recreate=recreate,
                                       naming_convention=NAMING) as batch:
                for s in steps:
                    _run_step(batch, s, metadata.tables[name], conn.dialect)
        except DBAPIError as exc:
            raise MigrationError(f"cannot change table {name}: {_db_message(exc)}",
                                 hint="; ".join(s.description for s in steps)) from exc
    for s in migration.steps:
        if s.kind == "drop_table":
            ops.drop_table(s.table)


def _run_step(batch: Any, s: Step, t: Table, dialect: Dialect) -> None:
    col = t.columns.get(s.column) if s.column else None
    if s.kind == "add_column" or (s.kind == "alter_type" and s.recreate):
        assert col is not None
        if s.recreate:
            if s.name:  # SQLite's batch copy would keep the old foreign key otherwise
                batch.drop_constraint(s.name, type_="foreignkey")
            batch.drop_column(s.column)
        batch.add_column(_fresh_column(col))
    elif s.kind in ("widen_column", "alter_type"):
        assert col is not None
        cast = f'"{col.name}"::{_type_text(col.type, dialect)}'
        batch.alter_column(col.name, type_=col.type, existing_nullable=col.nullable,
                           postgresql_using=cast)
    elif s.kind == "drop_column":
        batch.drop_column(s.column)
    elif s.kind == "drop_index":
        batch.drop_index(s.name)
    elif s.kind == "drop_unique":
        batch.drop_constraint(s.name, type_="unique")
    elif s.kind == "drop_foreign_key":
        batch.drop_constraint(s.name, type_="foreignkey")
    elif s.kind == "create_index":
        batch.create_index(s.name, list(s.columns))
    elif s.kind == "create_unique":
        batch.create_unique_constraint(s.name, list(s.columns))
    else:  # pragma: no cover - every kind is handled above
        raise MigrationError(f"unknown migration step '{s.kind}'")


def _fresh_column(col: Column[Any]) -> Column[Any]:
    """A detached copy of ``col`` for Alembic, keeping its foreign key (``_copy`` drops it)."""
    fks = [ForeignKey(fk.target_fullname, name=fk.constraint.name if fk.constraint else None)
           for fk in col.foreign_keys]
    return Column(col.name, col.type, *fks, nullable=col.nullable)


def _check_unique_data(conn: Connection, migration: MigrationPlan) -> None:
    """Name the duplicates that would make a new unique constraint fail."""
    for s in migration.steps:
        if s.kind != "create_unique":
            continue
        cols: list[ColumnClause[Any]] = [sql_column(c) for c in s.columns]
        t = table(s.table, *cols)
        query = (select(*cols, func.count().label("n")).select_from(t)
                 .where(*(c.is_not(None) for c in cols)).group_by(*cols)
                 .having(func.count() > 1).limit(3))
        dupes = conn.execute(query).fetchall()
        if dupes:
            shown = ", ".join(f"{tuple(d)[:-1][0] if len(s.columns) == 1 else tuple(d)[:-1]!r} "
                              f"({d[-1]} rows)" for d in dupes)
            raise MigrationError(
                f"cannot add unique constraint on {s.table} ({', '.join(s.columns)}): existing "
                f"rows repeat a value: {shown}",
                hint="make the values unique (or empty) first, or remove 'unique: true' from "
                     "the field")


_INTEGER = re.compile(r"\s*[-+]?\d+\s*")
_INT32 = 2**31


def _fits(value: Any, shape: tuple[str, int | None]) -> bool:
    """Whether a stored value converts to a column of ``shape`` without loss."""
    family, length = shape
    if family in ("integer", "bigint"):
        if isinstance(value, float):
            ok = value.is_integer()
            value = int(value) if ok else value
        elif isinstance(value, str) and _INTEGER.fullmatch(value):
            value = int(value)
        if not isinstance(value, int):
            return False
        return family == "bigint" or -_INT32 <= value < _INT32
    if family == "float":
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    if family == "varchar":
        return length is None or len(str(value)) <= length
    if family == "boolean":
        return value in (0, 1) or str(value).lower() in ("true", "false", "t", "f")
    return True  # other families: the database's own conversion decides


def _check_values_fit(conn: Connection, migration: MigrationPlan) -> None:
    """Before a type change, name the rows whose values the new type cannot hold.

    PostgreSQL would reject most of them itself, but SQLite stores anything
    anywhere: checking first gives both the same outcome and a readable error.
    """
    for s in migration.steps:
        if s.kind != "alter_type" or s.recreate or not s.column:
            continue
        col = migration.metadata.tables[s.table].columns[s.column]
        shape = _shape(col.type.dialect_impl(conn.dialect))
        t = table(s.table, sql_column("id"), sql_column(s.column))
        rows = conn.execute(select(t.c.id, t.c[s.column])
                            .where(t.c[s.column].is_not(None))).fetchall()
        bad = [(r[0], r[1]) for r in rows if not _fits(r[1], shape)]
        if bad:
            examples = ", ".join(f"id {i}: {v!r}" for i, v in bad[:3])
            raise MigrationError(
                f"cannot change {s.table}.{s.column} to "
                f"{_type_text(col.type, conn.dialect)}: {len(bad)} "
                f"{'row holds a value' if len(bad) == 1 else 'rows hold values'} it cannot "
                f"store ({examples})",
                hint="fix or clear those values first, or keep the field's old type")


def _db_message(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
