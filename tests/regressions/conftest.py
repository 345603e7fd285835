"""The reference app published on a real database (SQLite, then PostgreSQL), an API
client, users with tokens, and people: two aircon technicians near a customer, a
plumber, a dispatcher — what the regressions reproduce their reports on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from portal_world import demo_world, published_runtime
from sqlalchemy import func, select

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.users import add_user, create_token
from dispatchflow.platform.store.db import offers, outbox, timeline
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
    runtime = Runtime(Settings.from_env(home=tmp_path / "home", database_url=database_url,
                                        secret_key="test-secret"))
    publish(runtime.engine, reference_app, created_by="test")
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


@dataclass
class People:
    """Records and API users of one test (``headers(name)`` authenticates as ``name``)."""

    rt: Runtime
    customer: int
    techs: list[int]  # two aircon technicians, 1 km and 2 km away
    plumber: int      # a technician without the aircon skill, 1.5 km away
    tokens: dict[str, str]

    def headers(self, name: str) -> dict[str, str]:
        return bearer(self.tokens[name])

    def order(self, **extra: Any) -> int:
        """A P3 aircon order, created now: offered to the nearest technician (``techs[0]``)."""
        return int(self.rt.records.create(SYSTEM_ACTOR, "work_order", {
            "title": "空调不制冷", "description": "客厅空调开机后不出冷风", "category": "aircon",
            "customer": self.customer, "location": {"lat": 31.2, "lng": 121.5},
            **extra})["id"])

    def get(self, order: int) -> dict[str, Any]:
        return self.rt.records.get(SYSTEM_ACTOR, "work_order", order)

    def tech(self, i: int) -> Actor:
        return Actor(f"tech{i}", roles=("technician",), attributes={"technician": self.techs[i]})

    def offer_states(self, order: int) -> list[tuple[int, str]]:
        with self.rt.engine.connect() as conn:
            return [(int(c), str(s)) for c, s in conn.execute(
                select(offers.c.candidate_id, offers.c.state)
                .where(offers.c.record_id == order).order_by(offers.c.id)).all()]

    def writes(self, order: int) -> tuple[int, int, int]:
        """(row_version, events, timeline entries) of the order: unchanged = nothing written."""
        with self.rt.engine.connect() as conn:
            events = conn.execute(select(func.count()).select_from(outbox)
                                  .where(outbox.c.entity == "work_order")
                                  .where(outbox.c.record_id == order)).scalar_one()
            notes = conn.execute(select(func.count()).select_from(timeline)
                                 .where(timeline.c.entity == "work_order")
                                 .where(timeline.c.record_id == order)).scalar_one()
        return int(self.get(order)["row_version"]), int(events), int(notes)


@pytest.fixture
def people(rt: Runtime) -> People:
    create, a = rt.records.create, SYSTEM_ACTOR
    customer = create(a, "customer", {"name": "李娜", "phone": "13800000002", "tier": "normal",
                                      "location": {"lat": 31.2, "lng": 121.5}})["id"]

    def technician(name: str, km: float, skills: list[str]) -> int:
        return int(create(a, "technician", {
            "name": name, "level": 3, "on_duty": True, "skills": skills,
            "location": {"lat": 31.2 + km / 111.2, "lng": 121.5}})["id"])

    techs = [technician("王师傅", 1.0, ["aircon"]), technician("赵师傅", 2.0, ["aircon"])]
    plumber = technician("钱师傅", 1.5, ["plumbing"])
    tokens: dict[str, str] = {}
    users: list[tuple[str, str, dict[str, Any]]] = [
        ("tech0", "technician", {"technician": techs[0]}),
        ("tech1", "technician", {"technician": techs[1]}),
        ("plumber", "technician", {"technician": plumber}),
        ("dispatcher", "dispatcher", {"regions": []}),
        ("customer", "customer", {"customer": customer})]
    for user_id, role, attrs in users:
        add_user(rt.engine, user_id, name=user_id, password="pw-" + user_id, roles=[role],
                 attributes=attrs)
        tokens[user_id] = create_token(rt.engine, user_id, name="test").token
    return People(rt, int(customer), techs, plumber, tokens)


@pytest.fixture
def stored_photo(rt: Runtime) -> Callable[[], str]:
    """``stored_photo()``: the id of a new small PNG file (for completion reports)."""
    from dispatchflow.platform.records.files import store_file

    def make() -> str:
        return store_file(rt.engine, b"\x89PNG" + bytes(16), filename="after.png",
                          content_type="image/png", created_by="tech0",
                          max_bytes=1 << 20).id
    return make


@pytest.fixture
def portal_rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """The reference app published for the portal regressions."""
    rt = published_runtime(database_url, tmp_path / "home")
    yield rt
    rt.close()


@pytest.fixture
def demo(portal_rt: Runtime) -> dict[str, Any]:
    """Demo users and records, an order in service for demo_technician and one awaiting
    demo_customer's rating (see tests/portal_world.py)."""
    return demo_world(portal_rt)
