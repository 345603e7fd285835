"""Fixtures for the authorization and SQL-filter tests: apps, and real databases.

Two apps: the reference bundle (``authz_app``) and a tiny one made for filters
(``sqlf_app``: a ``ticket`` with a nullable field of every filterable kind and
a reference to ``site``, which references itself). Each runs against SQLite
(in memory) and PostgreSQL (127.0.0.1:5432, database ``test``, user
``postgres``) in a schema created for the test session and dropped after it.
PostgreSQL being down fails the tests (with the command that starts it); it
never skips them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, create_engine, delete, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from dispatchflow.dsl import types as T
from dispatchflow.dsl.checker import ExprChecker, Scope
from dispatchflow.dsl.compiler import App, compile_bundle, compile_sources
from dispatchflow.dsl.diagnostics import DiagnosticBag, render_text
from dispatchflow.dsl.items import USER_ENTITY
from dispatchflow.dsl.parser import parse_expression
from dispatchflow.dsl.source import Origin, SourceFile
from dispatchflow.platform.store.db import make_engine
from dispatchflow.platform.store.storage import build_metadata, from_row, table_name, to_row

REFERENCE_BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "field-service"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

#: Evaluation time of the filter tests: Monday 2 March 2026, 10:00 in Shanghai (02:00 UTC).
SQLF_NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

SQLF_BUNDLE = {
    "app.yaml": """\
app: filters
version: "1"
title: {zh: 过滤, en: Filters}
default_locale: en
timezone: Asia/Shanghai
""",
    "roles.yaml": """\
user_fields:
  level: {type: integer}
  zones: {type: list, items: string}
  site: {type: reference, entity: site}
  nick: {type: string}
roles:
  agent:
    permissions:
      ticket:
        allow: [read]
        rows: record.site.zone in user.zones
""",
    "entities/site.yaml": """\
entity: site
label: Site
fields:
  zone: {type: enum, values: [north, south, east]}
  floor: {type: integer}
  name: {type: string}
  parent: {type: reference, entity: site}
""",
    "entities/ticket.yaml": """\
entity: ticket
label: Ticket
fields:
  n: {type: integer}
  x: {type: decimal}
  s: {type: string}
  kind: {type: enum, required: true, default: a, values: [a, b, c]}
  flag: {type: boolean}
  done: {type: boolean, required: true, default: false}
  due: {type: datetime}
  est: {type: duration}
  day: {type: date}
  site: {type: reference, entity: site}
  spot: {type: geo}
  labels: {type: list, items: string}
""",
}


def _compile(files: dict[str, str] | None, root: Path | None = None) -> App:
    result = compile_bundle(root) if root is not None else compile_sources(files or {})
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


@pytest.fixture(scope="session")
def authz_app() -> App:
    """The reference bundle (examples/field-service), compiled."""
    return _compile(None, REFERENCE_BUNDLE)


@pytest.fixture(scope="session")
def sqlf_app() -> App:
    """The tiny filter bundle (:data:`SQLF_BUNDLE`), compiled."""
    return _compile(SQLF_BUNDLE)


@pytest.fixture(scope="session")
def sqlf_check(sqlf_app: App):
    """``sqlf_check(text)``: a condition over roots ``record`` (a ticket) and ``user``, checked."""
    scope = Scope({"record": T.entity_type("ticket"), "user": T.entity_type(USER_ENTITY)},
                  {**sqlf_app.entities, USER_ENTITY: sqlf_app.user})

    def check(source: str) -> Any:
        bag = DiagnosticBag()
        bag.add_source(SourceFile("<filter>", source))
        node = parse_expression(source, Origin("<filter>"), bag)
        assert node is not None, render_text(bag.sorted())
        typed = ExprChecker(scope, bag, "<filter>").check_condition(node)
        assert not bag.has_errors, source + "\n" + render_text(bag.sorted())
        return typed
    return check


# ------------------------------------------------------------------ databases


@pytest.fixture(scope="session")
def sqlf_sqlite_engine() -> Iterator[Engine]:
    """One in-memory SQLite database (foreign keys on) for the session."""
    engine = make_engine("sqlite://")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlf_pg_engine() -> Iterator[Engine]:
    """PostgreSQL in a fresh schema ``t_<random>``, dropped at the end of the session."""
    admin = create_engine(PG_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432 (database test, user "
                    f"postgres): {exc.orig}\nstart it with: {PG_START}", pytrace=False)
    schema = f"t_{secrets.token_hex(6)}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class FilterDb:
    """An app's entity tables in one database, with helpers to fill and query them."""

    def __init__(self, engine: Engine, app: App) -> None:
        self.engine, self.app = engine, app
        self.metadata = build_metadata(app)
        self.metadata.create_all(engine)
        self.tables: dict[str, Table] = {name: self.metadata.tables[table_name(name)]
                                         for name in app.entities}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def reset(self) -> None:
        with self.engine.begin() as conn:
            for table in reversed(self.metadata.sorted_tables):
                conn.execute(delete(table))

    def insert(self, entity: str, rows: list[Mapping[str, Any]]) -> None:
        """Insert runtime records (each with an ``id``; ``deleted: True`` soft-deletes)."""
        if not rows:
            return
        entity_def = self.app.entities[entity]
        values = []
        for rec in rows:
            full = {f.name: None for f in entity_def.fields.values() if not f.system}
            full.update((k, v) for k, v in rec.items() if k != "deleted")
            row = to_row(entity_def, full)
            row.update(id=rec["id"], created_at=SQLF_NOW, updated_at=SQLF_NOW,
                       row_version=1, tags=[],
                       deleted_at=SQLF_NOW if rec.get("deleted") else None)
            values.append(row)
        with self.engine.begin() as conn:
            conn.execute(self.tables[entity].insert(), values)

    def ids(self, entity: str, clause: ColumnElement[bool] | None) -> set[int]:
        """Ids of live rows of ``entity`` where ``clause`` holds (None: all)."""
        table = self.tables[entity]
        query = select(table.c.id).where(table.c.deleted_at.is_(None))
        if clause is not None:
            query = query.where(clause)
        with self.engine.connect() as conn:
            return {row.id for row in conn.execute(query)}

    def records(self, entity: str) -> list[dict[str, Any]]:
        """Every live row of ``entity`` as a runtime record (references as ids)."""
        table = self.tables[entity]
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).where(table.c.deleted_at.is_(None))).mappings()
            return [from_row(self.app.entities[entity], dict(row)) for row in rows]

    def resolve(self, entity: str, rid: Any) -> dict[str, Any] | None:
        """The live record ``entity`` ``rid``, or None (missing or soft-deleted)."""
        table = self.tables[entity]
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == rid,
                                                   table.c.deleted_at.is_(None))).mappings().first()
        return None if row is None else from_row(self.app.entities[entity], dict(row))


def _db(request: pytest.FixtureRequest, app: App) -> FilterDb:
    engine_fixture = "sqlf_sqlite_engine" if request.param == "sqlite" else "sqlf_pg_engine"
    return FilterDb(request.getfixturevalue(engine_fixture), app)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def sqlf_db(request: pytest.FixtureRequest, sqlf_app: App) -> FilterDb:
    """The filter bundle's tables, on SQLite and on PostgreSQL."""
    return _db(request, sqlf_app)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def authz_db(request: pytest.FixtureRequest, authz_app: App) -> FilterDb:
    """The reference bundle's tables, on SQLite and on PostgreSQL."""
    return _db(request, authz_app)


@pytest.fixture
def authz_fresh_db() -> Iterator[Callable[[App], FilterDb]]:
    """``authz_fresh_db(app)``: the app's tables in a new in-memory SQLite database."""
    engines: list[Engine] = []

    def make(app: App) -> FilterDb:
        engines.append(make_engine("sqlite://"))
        return FilterDb(engines[-1], app)
    yield make
    for engine in engines:
        engine.dispose()
