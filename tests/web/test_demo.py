"""`serve --demo`: the seed gives every role something to do, and the living city keeps
the orders moving (through the platform's services, as the city-simulator actor)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dispatchflow.cli import main
from dispatchflow.platform.demo.city import CityThread, LivingCity, parse_rate
from dispatchflow.platform.demo.data import load_city, load_seed
from dispatchflow.platform.demo.seed import demo_folder, seed_records, seed_users
from dispatchflow.platform.dispatch import explain
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.users import actor_from_row, authenticate
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.store.db import (
    audit_log,
    deliveries,
    dispatch_rounds,
    inbox,
    offers,
    timeline,
    users,
)

#: Work-order statuses from `accepted` on (the order has been taken).
TAKEN = {"accepted", "en_route", "on_site", "in_service", "completed", "feedback", "closed"}


def demo_user(rt: Any, user_id: str) -> Actor:
    with rt.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    assert row is not None, user_id
    return actor_from_row(row, "web")


def orders(rt: Any, actor: Actor = SYSTEM_ACTOR) -> list[dict[str, Any]]:
    return rt.records.list(actor, "work_order", limit=500).items


def titled(rt: Any, title: str) -> dict[str, Any]:
    (found,) = [o for o in orders(rt) if o["title"] == title]
    return found


def pending_to(rt: Any, order_id: int) -> set[int]:
    with rt.engine.connect() as conn:
        return {int(c) for c in conn.execute(select(offers.c.candidate_id)
                                             .where(offers.c.record_id == order_id)
                                             .where(offers.c.state == "pending")).scalars()}


def run_city(rt: Any, city: LivingCity, steps: int, seconds: float = 30.0) -> None:
    """Move the test clock ``steps`` times, each time firing due timers and stepping the city."""
    for _ in range(steps):
        rt.test_clock.advance(seconds)
        tick(rt)
        city.step()


def make_city(rt: Any, **options: Any) -> LivingCity:
    return LivingCity(rt, load_city(demo_folder()), load_seed(demo_folder()), **options)


# ------------------------------------------------------------------ the seed

def test_every_demo_role_has_something_to_do(demo_rt) -> None:
    rt = demo_rt
    assert seed_records(rt) > 0
    made = seed_users(rt)
    assert sorted(role for _, role, _ in made) == sorted(rt.app.roles.data["roles"])
    password = dict((u, p) for u, _, p in made)["demo_customer"]
    assert authenticate(rt.engine, "demo_customer", password) is not None

    dispatcher = orders(rt, demo_user(rt, "demo_dispatcher"))
    assert {"offered", "en_route", "in_service"} <= {o["status"] for o in dispatcher}

    supervisor = orders(rt, demo_user(rt, "demo_area_supervisor"))
    escalated = [o for o in supervisor if o["status"] == "exception"]
    assert [o["title"] for o in escalated] == ["电梯困人"]
    assert any("parts_approval" in o["tags"] for o in supervisor)
    with rt.engine.connect() as conn:
        messages = conn.execute(select(inbox.c.notification)
                                .where(inbox.c.user_id == "demo_area_supervisor")).scalars()
        assert set(messages) == {"escalation", "parts_approval_request"}

    tech = demo_user(rt, "demo_technician")
    assert len(explain.offers_for(rt, tech)) == 2  # the leak and the air-con order
    assert [o["title"] for o in orders(rt, tech)] == ["马桶堵塞"]  # the job en route
    assert titled(rt, "马桶堵塞")["status"] == "en_route"

    customer = demo_user(rt, "demo_customer")
    own = {o["title"]: o for o in orders(rt, customer)}
    assert own["厨房水管漏水"]["status"] == "offered"  # an open request
    done = own["空调异响"]
    assert done["status"] == "completed"  # a completed one to confirm and rate
    actions = explain.available_actions(rt, customer, "work_order", done["id"])
    assert "confirm_completion" in {a["action"] for a in actions}

    finance = orders(rt, demo_user(rt, "demo_finance"))
    costed = [o for o in finance if o["status"] == "closed" and o.get("cost_labor")]
    assert len(costed) == 2 and all(o.get("cost_surcharge") is not None for o in costed)

    # only the customer and technician accounts are linked, each to their own record
    with rt.engine.connect() as conn:
        rows = {r.id: r.attributes for r in conn.execute(select(users))}
    linked = {u: a for u, a in rows.items() if "customer" in a or "technician" in a}
    assert set(linked) == {"demo_customer", "demo_technician"}
    assert set(linked["demo_customer"]) == {"regions", "customer"}
    zhang = rt.records.get(SYSTEM_ACTOR, "customer", linked["demo_customer"]["customer"])
    assert zhang["name"] == "张伟" and zhang["tier"] == "VIP"
    liu = rt.records.get(SYSTEM_ACTOR, "technician", linked["demo_technician"]["technician"])
    assert "plumbing" in liu["skills"] and "elevator" not in liu["skills"]
    assert rows["city-simulator"] == {}  # names the city's actions; cannot log in

    assert seed_records(rt) == 0  # a second start adds nothing
    again = dict((u, p) for u, _, p in seed_users(rt))
    assert again["demo_customer"] == password  # remembered, still valid
    assert len(orders(rt)) == 10


def test_the_leak_goes_to_the_demo_technician_and_the_elevator_only_to_the_licensed(
        demo_rt) -> None:
    rt = demo_rt
    seed_records(rt)
    liu = demo_user(rt, "demo_technician").attributes["technician"]
    leak = titled(rt, "厨房水管漏水")
    assert leak["priority"] == "P1" and liu in pending_to(rt, leak["id"])
    lift = titled(rt, "电梯门无法关闭")
    with rt.engine.connect() as conn:
        decision = conn.execute(select(dispatch_rounds.c.decision)
                                .where(dispatch_rounds.c.record_id == lift["id"])).scalar_one()
    ranked = [c["id"] for c in decision["ranked"]]
    assert ranked and liu not in ranked
    for tech_id in ranked:
        assert "elevator" in rt.records.get(SYSTEM_ACTOR, "technician", tech_id)["skills"]
    assert decision["excluded"]["lacking skill / 技能不符"] >= 1


# ------------------------------------------------------------------ the living city

def test_the_living_city_moves_orders_to_completion_and_none_rots(demo_rt) -> None:
    rt = demo_rt
    seed_records(rt)
    before = {o["id"]: o["status"] for o in orders(rt)}
    city = make_city(rt, seed=3, orders_per_hour=12)
    run_city(rt, city, 60, seconds=60)  # one hour
    after = {o["id"]: o for o in orders(rt)}
    new = [o for i, o in after.items() if i not in before]
    assert len(new) >= 8  # about 12 an hour arrived over the channels
    assert sum(o["status"] == "closed" for o in new) >= 4  # rated by their customers
    assert all(o["status"] in TAKEN for o in new[:-2])  # all but the freshest are taken
    # the sample orders offered at the start were all taken
    assert all(after[i]["status"] in TAKEN for i, s in before.items() if s == "offered")
    # nothing escalated for lack of an answer; only the unreachable order is an exception
    assert [o["title"] for o in after.values() if o["status"] == "exception"] == ["电梯困人"]
    humans = {demo_user(rt, "demo_technician").attributes["technician"]}
    with rt.engine.connect() as conn:
        expired = conn.execute(select(offers.c.candidate_id)
                               .where(offers.c.state == "expired")).scalars().all()
        notes = conn.execute(select(timeline.c.summary)).scalars().all()
        # a delivery is stored under its key and its digest: count the records it made
        delivered = conn.execute(select(deliveries.c.record_id).distinct()).scalars().all()
        by_city = conn.execute(select(func.count()).select_from(audit_log)
                               .where(audit_log.c.actor == "city-simulator")).scalar_one()
    assert set(expired) <= humans  # only the demo technician lets offers expire
    assert not any("no acceptance" in s for s in notes)
    assert any(s.startswith("city-simulator: complete") for s in notes)  # on the timeline
    assert sorted(delivered) == sorted(o["id"] for o in new) and by_city > 0
    # the demo accounts act for themselves: their orders waited
    assert after[titled(rt, "马桶堵塞")["id"]]["status"] == "en_route"
    assert after[titled(rt, "空调异响")["id"]]["status"] == "completed"


def test_the_city_is_deterministic_for_a_seed(make_demo_rt, tmp_path: Path) -> None:
    runs = []
    for n in range(2):
        rt = make_demo_rt(f"sqlite:///{tmp_path / f'{n}.db'}", tmp_path / f"home{n}")
        seed_records(rt)
        city = make_city(rt, seed=7, orders_per_hour=60)
        run_city(rt, city, 10, seconds=60)
        runs.append(city.state.done)
    assert len(runs[0]) > 10 and runs[0] == runs[1]


def test_the_city_thread_survives_errors_and_stops() -> None:
    calls: list[int] = []

    class Flaky:
        def step(self) -> list[str]:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database is locked")
            return []

    thread = CityThread(Flaky(), interval=0.01)  # type: ignore[arg-type]
    thread.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    thread.stop()
    assert len(calls) >= 3 and not thread.is_alive()


def test_rates_are_read_per_hour() -> None:
    assert parse_rate("6/h") == 6 and parse_rate("0.5/min") == 30 and parse_rate("12") == 12
    with pytest.raises(ValueError, match="6/h"):
        parse_rate("often")


# ------------------------------------------------------------------ serve

@pytest.fixture
def serve_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              fast_demo_passwords: None) -> list[set[str]]:
    """``serve`` in a fresh home whose app.run records the threads running, then returns."""
    import flask

    monkeypatch.setenv("DISPATCHFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    for name in ("WECHAT_WEBHOOK_SECRET", "EMAIL_CHANNEL_SECRET"):
        monkeypatch.setenv(name, "")
    seen: list[set[str]] = []
    monkeypatch.setattr(flask.Flask, "run", lambda *a, **k: seen.append(
        {t.name for t in threading.enumerate()}))
    return seen


def test_serve_demo_quiet_starts_no_city(serve_env: list[set[str]]) -> None:
    result = CliRunner().invoke(main, ["serve", "--demo", "--quiet", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert "still picture" in result.output
    assert "dispatchflow-demo-city" not in serve_env[0]


def test_serve_demo_runs_the_city_and_stops_it(serve_env: list[set[str]]) -> None:
    result = CliRunner().invoke(main, ["serve", "--demo", "--demo-rate", "6/h", "--port",
                                       "5999"])
    assert result.exit_code == 0, result.output
    assert "living city: 6 new requests/h" in result.output
    assert "WECHAT_WEBHOOK_SECRET was not set" in result.output
    assert "dispatchflow-demo-city" in serve_env[0]
    alive = {t.name for t in threading.enumerate()}
    assert "dispatchflow-demo-city" not in alive and "dispatchflow-scheduler" not in alive


def test_serve_refuses_a_bad_rate_and_demo_options_without_demo(
        serve_env: list[set[str]]) -> None:
    result = CliRunner().invoke(main, ["serve", "--demo", "--demo-rate", "lots"])
    assert result.exit_code == 2 and not serve_env
    assert "error: not a rate: 'lots' (write e.g. 6/h, 0.5/min or 6)" in result.output
    result = CliRunner().invoke(main, ["serve", "--quiet"])
    assert result.exit_code == 2 and not serve_env
    assert "--quiet, --demo-rate, --demo-speed and --demo-seed go with --demo" in result.output
