"""The reference app published on a real database (SQLite, then PostgreSQL), a test
client, and users with tokens: what the API regressions reproduce their reports on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.platform.config import Settings
from dispatchflow.platform.runtime import Runtime
from dispatchflow.platform.users import add_user, create_token
from dispatchflow.platform.versions import publish
from dispatchflow.web.app import create_app

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Any:
    result = compile_bundle(REFERENCE)
    assert result.app is not None, result.diagnostics
    runtime = Runtime(Settings.from_env(home=tmp_path / "home", database_url=database_url,
                                        secret_key="test-secret"))
    publish(runtime.engine, result.app, created_by="test")
    runtime.refresh()
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Any:
    return create_app(runtime=rt, TESTING=True).test_client()


@pytest.fixture
def user_token(rt: Runtime) -> Callable[..., dict[str, str]]:
    """``user_token(user_id, role, **attributes)``: a new user and the headers of a token."""
    def make(user_id: str, role: str, **attributes: Any) -> dict[str, str]:
        add_user(rt.engine, user_id, name=user_id, password=None, roles=[role],
                 attributes=attributes)
        return bearer(create_token(rt.engine, user_id, name="test").token)
    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
