"""Shared fixtures: a small field-service schema, in memory and as a bundle on disk.

The same three entities (``customer``, ``technician``, ``work_order``) back both
the in-memory :class:`~dispatchflow.dsl.checker.Scope` used by expression tests
and the bundles written to ``tmp_path`` by :func:`make_bundle`, so a test can
move between the two without re-learning the schema.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatchflow.dsl import types as T
from dispatchflow.dsl.checker import ExprChecker, Scope
from dispatchflow.dsl.codegen import compile_expression
from dispatchflow.dsl.compiler import CompileResult, compile_bundle
from dispatchflow.dsl.diagnostics import Diagnostic, DiagnosticBag, Severity, render_text
from dispatchflow.dsl.entities import build_entities
from dispatchflow.dsl.model import EntityDef
from dispatchflow.dsl.parser import parse_expression
from dispatchflow.dsl.source import Origin, SourceFile
from dispatchflow.dsl.yaml_loader import load_yaml

SHANGHAI = ZoneInfo("Asia/Shanghai")

#: The fixed evaluation time of every test: Monday 2 March 2026, 10:00 in Shanghai.
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)

APP_YAML = """\
app: field-service
version: "1.0"
title: {zh: 现场服务, en: Field service}
default_locale: zh
timezone: Asia/Shanghai
"""

ROLES_YAML = """\
roles:
  dispatcher:
    label: {zh: 调度员, en: Dispatcher}
    permissions:
      work_order:
        allow: [read, update]
  supervisor:
    label: {zh: 主管, en: Supervisor}
"""

CUSTOMER_YAML = """\
entity: customer
label: {zh: 客户, en: Customer}
title_field: name
fields:
  name: {type: string, required: true, label: {zh: 名称, en: Name}}
  tier:
    type: enum
    required: true
    default: standard
    values: [vip, gold, standard]
  phone: {type: string, sensitive: true}
  city: {type: string}
  blacklisted: {type: boolean, required: true, default: false}
"""

TECHNICIAN_YAML = """\
entity: technician
label: {zh: 技师, en: Technician}
title_field: name
fields:
  name: {type: string, required: true}
  skills: {type: list}
  rating: {type: decimal}
  level: {type: integer, required: true, default: 1}
  on_shift: {type: boolean, required: true, default: false}
  location: {type: geo}
  open_orders: {type: integer, required: true, default: 0}
  region: {type: string}
"""

WORK_ORDER_YAML = """\
entity: work_order
label: {zh: 工单, en: Work order}
title_field: title
fields:
  title: {type: string, required: true, label: {zh: 标题, en: Title}}
  description: {type: text}
  priority:
    type: enum
    required: true
    default: P3
    values:
      - {value: P1, label: {zh: 紧急, en: Urgent}}
      - {value: P2, label: {zh: 高, en: High}}
      - {value: P3, label: {zh: 普通, en: Normal}}
  category: {type: enum, values: [hvac, plumbing, electrical]}
  customer: {type: reference, entity: customer}
  estimated_duration: {type: duration}
  scheduled_at: {type: datetime}
  response_due: {type: datetime}
  budget: {type: decimal}
  parts_count: {type: integer, required: true, default: 0}
  required_level: {type: integer}
  required_skill: {type: string}
  location: {type: geo}
  escalated: {type: boolean, required: true, default: false}
  under_warranty: {type: boolean}
"""

#: The base bundle every :func:`make_bundle` call starts from (relative path -> text).
BASE_BUNDLE: dict[str, str] = {
    "app.yaml": APP_YAML,
    "roles.yaml": ROLES_YAML,
    "entities/customer.yaml": CUSTOMER_YAML,
    "entities/technician.yaml": TECHNICIAN_YAML,
    "entities/work_order.yaml": WORK_ORDER_YAML,
}


#: A notification and a flow that rules may name (``notify``, ``start flow``).
SUPPORT_FILES: dict[str, str] = {
    "notifications/supervisor_alert.yaml": """\
notification: supervisor_alert
entity: work_order
channels: [inbox]
to:
  - role: supervisor
body: {zh: "工单 {{ work_order.title }} 已升级", en: "Work order {{ work_order.title }} escalated"}
""",
    "flows/repair.yaml": """\
flow: repair
entity: work_order
initial: new
states:
  new:
    transitions:
      - {to: done, on: work_order.closed}
  done: {final: true}
""",
}


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis imports mypy_extensions.TypedDict while reporting a falsifying example;
    # under filterwarnings=error that DeprecationWarning would turn a readable failure
    # into an INTERNALERROR. Only this one third-party warning is let through.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


def write_bundle(root: Path, files: dict[str, str | None], base: bool = True) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root``.

    With ``base`` the files of :data:`BASE_BUNDLE` are written first; a value of
    None in ``files`` leaves that base file out.
    """
    merged: dict[str, str | None] = {**(BASE_BUNDLE if base else {}), **files}
    for rel, text in merged.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def now() -> datetime:
    """The fixed, timezone-aware evaluation time (:data:`NOW`)."""
    return NOW


@pytest.fixture
def support_files() -> dict[str, str]:
    """:data:`SUPPORT_FILES` (a notification and a flow), for bundles whose rules name them."""
    return dict(SUPPORT_FILES)


@pytest.fixture
def make_engine(compile_ok: Callable[..., Any]) -> Callable[..., Any]:
    """``make_engine({path: text})``: compile base + support files + ``files`` into an Engine."""
    from dispatchflow.rules.engine import Engine

    def make(files: dict[str, str | None]) -> Engine:
        return Engine(compile_ok({**SUPPORT_FILES, **files}))
    return make


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Path]:
    """``make_bundle({path: text}, base=True)`` writes a bundle folder and returns it."""
    counter = iter(range(1000))

    def make(files: dict[str, str | None] | None = None, base: bool = True) -> Path:
        root = tmp_path / f"bundle{next(counter)}"
        root.mkdir()
        return write_bundle(root, files or {}, base)
    return make


@pytest.fixture
def compile_files(make_bundle: Callable[..., Path]) -> Callable[..., CompileResult]:
    """``compile_files({path: text}, base=True)``: write a bundle and compile it."""
    def run(files: dict[str, str | None] | None = None, base: bool = True) -> CompileResult:
        return compile_bundle(make_bundle(files, base))
    return run


@pytest.fixture
def compile_ok(compile_files: Callable[..., CompileResult]) -> Callable[..., Any]:
    """Like ``compile_files`` but returns the App and fails the test on any error."""
    def run(files: dict[str, str | None] | None = None, base: bool = True) -> Any:
        result = compile_files(files, base)
        assert result.app is not None, render_text(result.diagnostics)
        return result.app
    return run


def _build_entities() -> dict[str, EntityDef]:
    bag = DiagnosticBag()
    docs = []
    for rel, text in BASE_BUNDLE.items():
        if rel.startswith("entities/"):
            doc = load_yaml(SourceFile(rel, text), bag)
            assert doc is not None
            docs.append(doc)
    entities = build_entities(docs, bag)
    assert not list(bag), render_text(bag)
    return entities


@pytest.fixture(scope="session")
def entities() -> dict[str, EntityDef]:
    """The base schema's EntityDefs, built in memory (no files)."""
    return _build_entities()


@pytest.fixture
def scope(entities: dict[str, EntityDef]) -> Scope:
    """Roots ``work_order`` and ``technician`` (as in a dispatch policy)."""
    return Scope({"work_order": T.entity_type("work_order"),
                  "technician": T.entity_type("technician")}, dict(entities))


class Checked:
    """The result of parsing and checking one expression: typed AST and diagnostics."""

    def __init__(self, text: str, node: Any, diagnostics: list[Diagnostic]) -> None:
        self.text, self.node, self.diagnostics = text, node, diagnostics

    @property
    def type(self) -> T.Type | None:
        return None if self.node is None else self.node.type

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    def only(self) -> Diagnostic:
        assert len(self.diagnostics) == 1, render_text(self.diagnostics)
        return self.diagnostics[0]


@pytest.fixture
def check_expr(scope: Scope) -> Callable[..., Checked]:
    """``check_expr(text, condition=False, expected=None)`` against :func:`scope`.

    The text is treated as the whole of a file named ``<expr>``, so rendered
    diagnostics show it as the source line.
    """
    def run(text: str, condition: bool = False, expected: T.Type | None = None,
            what: str = "value") -> Checked:
        bag = DiagnosticBag()
        bag.add_source(SourceFile("<expr>", text))
        node = parse_expression(text, Origin("<expr>"), bag)
        if node is not None:
            checker = ExprChecker(scope, bag, "<expr>")
            if condition:
                node = checker.check_condition(node)
            elif expected is not None:
                node = checker.check_value(node, expected, what)
            else:
                node = checker.check(node)
        return Checked(text, node, bag.sorted())
    return run


@pytest.fixture
def evaluate(check_expr: Callable[..., Checked], now: datetime) -> Callable[..., Any]:
    """``evaluate(text, work_order={...}, technician={...}, boolean=False, at=now)``.

    Checks the expression (failing the test on an error), compiles it and runs it.
    """
    def run(text: str, work_order: dict | None = None, technician: dict | None = None,
            boolean: bool = False, at: datetime | None = None) -> Any:
        checked = check_expr(text)
        assert not checked.errors, render_text(checked.diagnostics)
        fn = compile_expression(checked.node, ["work_order", "technician"], boolean=boolean)
        return fn(work_order or {}, technician or {}, at or now)
    return run


# ------------------------------------------------------------------ databases

PG_BASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def _pg_schema() -> str:
    """A fresh PostgreSQL schema for one test (fails loudly when the server is down)."""
    import secrets

    import sqlalchemy as sa

    schema = "t_" + secrets.token_hex(6)
    try:
        engine = sa.create_engine(PG_BASE_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc.orig}); start it "
                    f"with: {PG_START}", pytrace=False)
    return schema


def _drop_pg_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_BASE_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A database URL for an empty database: a SQLite file, then a fresh PG schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = _pg_schema()
    yield f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    _drop_pg_schema(schema)


@pytest.fixture
def engine(database_url: str) -> Any:
    """An engine on an empty database (SQLite file, then a fresh PostgreSQL schema)."""
    from dispatchflow.platform.store.db import make_engine

    eng = make_engine(database_url)
    yield eng
    eng.dispose()


# ------------------------------------------------------------------ the demo (serve --demo)

#: The demo tests' start: Tuesday 10 March 2026, 10:00 in Shanghai (02:00 UTC).
DEMO_START = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)


class MovableClock:
    """A clock for a Runtime that moves only when told (``advance``)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def fast_demo_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash the demo users' passwords cheaply (scrypt takes 0.35 s per user here)."""
    from dispatchflow.platform import defaults

    monkeypatch.setattr(defaults, "PASSWORD_HASH_METHOD", "pbkdf2:sha256:1000")


@pytest.fixture
def make_demo_rt(monkeypatch: pytest.MonkeyPatch, fast_demo_passwords: None) -> Any:
    """``make_demo_rt(database_url, home)``: the reference bundle published on an empty
    database, with a :class:`MovableClock` (``rt.test_clock``) and the intake channels'
    secrets set. Runtimes made are closed after the test."""
    from dispatchflow.platform.assembly import Runtime
    from dispatchflow.platform.config import Settings
    from dispatchflow.platform.store.versions import publish

    monkeypatch.setenv("WECHAT_WEBHOOK_SECRET", "demo-wechat-secret")
    monkeypatch.setenv("EMAIL_CHANNEL_SECRET", "demo-email-secret")
    made: list[Runtime] = []

    def make(database_url: str, home: Path) -> Runtime:
        clock = MovableClock(DEMO_START)
        rt = Runtime(Settings.from_env(home=home, database_url=database_url,
                                       secret_key="test-secret"), clock=clock)
        made.append(rt)
        app = compile_bundle(Path(__file__).resolve().parents[1] / "examples"
                             / "field-service").app
        assert app is not None
        publish(rt.engine, app, created_by="test")
        rt.refresh()
        rt.test_clock = clock  # type: ignore[attr-defined]
        return rt
    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def demo_rt(make_demo_rt: Any, database_url: str, tmp_path: Path) -> Any:
    """A :func:`make_demo_rt` runtime on ``database_url`` (SQLite, then PostgreSQL)."""
    return make_demo_rt(database_url, tmp_path / "home")
