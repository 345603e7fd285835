"""A published reference app on a real database, a test client and users per role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.records.users import add_user, create_token
from dispatchflow.platform.store.versions import publish
from dispatchflow.web.app import create_app

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"


@pytest.fixture(scope="session")
def reference_app() -> App:
    result = compile_bundle(REFERENCE)
    assert result.app is not None, result.diagnostics
    return result.app


@pytest.fixture
def rt(database_url: str, tmp_path: Path, reference_app: App) -> Any:
    settings = Settings.from_env(home=tmp_path / "home", database_url=database_url,
                                 secret_key="test-secret")
    runtime = Runtime(settings)
    publish(runtime.engine, reference_app, created_by="test")
    runtime.refresh()
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def client(rt: Runtime) -> Any:
    app = create_app(runtime=rt, TESTING=True)
    return app.test_client()


@pytest.fixture
def world(rt: Runtime) -> dict[str, Any]:
    """Regions, two customers, two technicians and an order for each technician."""
    create = rt.records.create
    a = SYSTEM_ACTOR
    region = create(a, "region", {"code": "PD", "name": "浦东新区"})
    customers = [create(a, "customer", {"name": n, "phone": p, "tier": tier, "region": region["id"]})
                 for n, p, tier in (("张伟", "13800000001", "VIP"), ("李娜", "13800000002", "normal"))]
    techs = [create(a, "technician", {"name": n, "level": 3, "on_duty": True, "skills": ["aircon"],
                                      "location": {"lat": 31.2, "lng": 121.5}})
             for n in ("王师傅", "赵师傅")]
    orders = [create(a, "work_order", {
        "title": f"空调不制冷 {i}", "category": "aircon", "customer": customers[i]["id"],
        "region": region["id"], "location": {"lat": 31.21, "lng": 121.51},
        "assignee": techs[i]["id"], "cost_labor": 120.0 + i, "contact_phone": "13700000000"})
        for i in range(2)]
    return {"region": region, "customers": customers, "techs": techs, "orders": orders}


@pytest.fixture
def token_for(rt: Runtime, world: dict[str, Any]) -> Callable[..., str]:
    """A bearer token for a new user with ``role`` (technician i / customer i linked)."""
    made: dict[tuple[str, int], str] = {}

    def make(role: str, index: int = 0, scopes: list[str] | None = None) -> str:
        key = (role, index)
        if key not in made or scopes is not None:
            user_id = f"{role}{index}" + (f"_{len(made)}" if scopes is not None else "")
            attrs: dict[str, Any] = {"regions": ["PD"]}
            if role == "technician":
                attrs["technician"] = world["techs"][index]["id"]
            if role == "customer":
                attrs["customer"] = world["customers"][index]["id"]
            add_user(rt.engine, user_id, name=user_id, password="pw-" + user_id, roles=[role],
                     attributes=attrs)
            made[key] = create_token(rt.engine, user_id, name="test", scopes=scopes).token
        return made[key]
    return make


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
