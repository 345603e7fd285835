"""The reference app published on a fresh SQLite database: a runtime for web tests.

Importable as ``reference_runtime`` from every test folder (pytest puts
``tests/`` on the path for its conftest).
"""

from __future__ import annotations

from pathlib import Path

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.store.versions import publish

REFERENCE = Path(__file__).resolve().parents[1] / "examples" / "field-service"


def published_runtime(home: Path, secret: str = "test") -> Runtime:
    """A runtime over ``home``/app.db with the reference app published and active."""
    rt = Runtime(Settings.from_env(home=home, database_url=f"sqlite:///{home}/app.db",
                                   secret_key=secret))
    app_ir = compile_bundle(REFERENCE).app
    assert app_ir is not None
    publish(rt.engine, app_ir, created_by="test")
    rt.refresh()
    return rt


def make_runtime(url: str, home: Path, app: App) -> Runtime:
    """A runtime on the database ``url`` with ``app`` published and active."""
    runtime = Runtime(Settings.from_env(home=home, database_url=url, secret_key="test"))
    publish(runtime.engine, app, created_by="test")
    runtime.refresh()
    return runtime
