"""A published reference app on SQLite with an admin's API token, for API regressions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_runtime import published_runtime

from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.records.users import add_user, create_token
from dispatchflow.web.app import create_app


@dataclass
class ApiClient:
    """A Flask test client, the runtime behind it and the admin's auth header."""

    client: Any
    rt: Runtime
    headers: dict[str, str]


def make_api_client(home: Path, role: str = "admin") -> ApiClient:
    """The reference app published into ``home`` (SQLite) and a token for ``role``."""
    rt = published_runtime(home, "regression")
    add_user(rt.engine, "reg_" + role, name=role, password="x", roles=[role])
    token = create_token(rt.engine, "reg_" + role, name="regression").token
    client = create_app(runtime=rt, TESTING=True).test_client()
    return ApiClient(client, rt, {"Authorization": f"Bearer {token}"})


def api_session(home: Path, role: str = "admin") -> Iterator[ApiClient]:
    """:func:`make_api_client` for a fixture: yields it, then closes its database."""
    api = make_api_client(home, role)
    yield api
    api.rt.engine.dispose()
