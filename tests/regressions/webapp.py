"""A published reference app behind a Flask test client, for the web regression tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.records.users import add_user
from dispatchflow.platform.store.versions import publish
from dispatchflow.web.app import create_app

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"


@contextmanager
def published_runtime(database_url: str, home: Path) -> Iterator[Runtime]:
    """A runtime on ``database_url`` with the reference app published and active, and
    a dispatcher ``disp`` (password ``pw``)."""
    result = compile_bundle(REFERENCE)
    assert result.app is not None, result.diagnostics
    runtime = Runtime(Settings.from_env(home=home, database_url=database_url,
                                        secret_key="test-secret"))
    try:
        publish(runtime.engine, result.app, created_by="test")
        runtime.refresh()
        add_user(runtime.engine, "disp", name="disp", password="pw", roles=["dispatcher"],
                 attributes={"regions": ["PD"]})
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A published runtime on SQLite, shared by a test module."""
    home = tmp_path_factory.mktemp("web")
    with published_runtime(f"sqlite:///{home / 'test.db'}", home / "home") as runtime:
        yield runtime


@pytest.fixture
def client(site: Runtime) -> Any:
    """A test client (its own cookies) of the web app on :func:`site`."""
    return create_app(runtime=site, TESTING=True).test_client()


def csrf_of(html: str) -> str:
    """The CSRF token of the form in ``html``."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: Any, *, next_url: str | None = None) -> Any:
    """Sign ``disp`` in through the login form (``next`` = ``next_url``); the response."""
    page = client.get("/login").get_data(as_text=True)
    query = {"next": next_url} if next_url is not None else None
    return client.post("/login", query_string=query,
                       data={"username": "disp", "password": "pw", "csrf_token": csrf_of(page)})


def add_orders(runtime: Runtime, titles: list[str]) -> None:
    """Work orders with these titles in region PD (the one ``disp`` sees)."""
    create = runtime.records.create
    region = create(SYSTEM_ACTOR, "region", {"code": "PD", "name": "浦东新区"})
    customer = create(SYSTEM_ACTOR, "customer", {"name": "张伟", "phone": "13800000001",
                                                 "region": region["id"]})
    for title in titles:
        create(SYSTEM_ACTOR, "work_order", {
            "title": title, "category": "aircon", "customer": customer["id"],
            "region": region["id"], "location": {"lat": 31.21, "lng": 121.51}})
