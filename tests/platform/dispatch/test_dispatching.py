"""Dispatch on stored records: manual override, the anomaly alert (third fallback level),
grab-pool claims under concurrency, and the API around offers.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.dispatch.manual import assign_by_hand
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.runtime.runner import take_action
from dispatchflow.platform.store.db import make_engine, offers, timeline
from dispatchflow.platform.store.versions import publish

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
DISPATCHER = Actor("disp", roles=("dispatcher",), attributes={"regions": []})


@pytest.fixture(scope="module")
def reference_app() -> App:
    result = compile_bundle(REFERENCE)
    assert result.app is not None, result.diagnostics
    return result.app


def make_runtime(url: str, home: Path, app: App, pool_size: int = 5) -> Runtime:
    engine = make_engine(url, **({"pool_size": pool_size, "max_overflow": 5}
                                 if url.startswith("postgresql") else {}))
    rt = Runtime(Settings.from_env(home=home, database_url=url, secret_key="t"), engine=engine)
    publish(rt.engine, app, created_by="test")
    rt.refresh()
    return rt


@pytest.fixture
def rt(database_url: str, tmp_path: Path, reference_app: App) -> Any:
    runtime = make_runtime(database_url, tmp_path / "home", reference_app)
    yield runtime
    runtime.engine.dispose()


def customer(rt: Runtime) -> int:
    return rt.records.create(SYSTEM_ACTOR, "customer", {
        "name": "李娜", "phone": "13800000002", "tier": "normal"})["id"]


def technicians(rt: Runtime, count: int, skills: list[str] | None = None) -> list[int]:
    return [rt.records.create(SYSTEM_ACTOR, "technician", {
        "name": f"技师{i}", "level": 3, "on_duty": True, "skills": skills or ["aircon"],
        "location": {"lat": 31.2 + i * 0.0005, "lng": 121.5}})["id"] for i in range(count)]


def order(rt: Runtime, cust: int, **extra: Any) -> int:
    return rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": "空调不制冷", "category": "aircon", "customer": cust,
        "location": {"lat": 31.2, "lng": 121.5}, **extra})["id"]


def tech(tech_id: int) -> Actor:
    return Actor(f"t{tech_id}", roles=("technician",), attributes={"technician": tech_id})


def get(rt: Runtime, entity: str, record_id: int) -> dict[str, Any]:
    return rt.records.get(SYSTEM_ACTOR, entity, record_id)


def test_a_dispatcher_reassigns_with_a_reason_and_it_is_a_transfer(rt) -> None:
    t1, t2 = technicians(rt, 2)
    wo = order(rt, customer(rt))
    take_action(rt, tech(t1), "work_order", wo, "accept")
    with pytest.raises(ValidationError):
        assign_by_hand(rt, DISPATCHER, "work_order", wo, t2, "  ")
    with pytest.raises(PermissionDenied):
        assign_by_hand(rt, tech(t1), "work_order", wo, t2, "I am busy")
    with pytest.raises(NotFoundError):
        assign_by_hand(rt, DISPATCHER, "work_order", wo, 999_999, "no such technician")
    done = assign_by_hand(rt, DISPATCHER, "work_order", wo, t2, "客户要求换师傅")
    assert done["transfer"] is True and done["previous"] == t1
    assert get(rt, "work_order", wo)["assignee"] == t2
    assert get(rt, "technician", t1)["open_tasks"] == 0
    assert get(rt, "technician", t2)["open_tasks"] == 1
    with rt.engine.connect() as conn:
        notes = conn.execute(select(timeline.c.summary).where(timeline.c.kind == "reassign")
                             ).scalars().all()
    assert notes == [f"disp: assigned technician {t2} by hand (was {t1}): 客户要求换师傅"]


def test_assigning_an_escalated_order_moves_its_flow(rt) -> None:
    wo = order(rt, customer(rt), category="elevator", title="电梯困人")
    assert get(rt, "work_order", wo)["status"] == "exception"
    (t1,) = technicians(rt, 1, ["elevator"])  # level 3: elevators need 4
    done = assign_by_hand(rt, DISPATCHER, "work_order", wo, t1, "主管电话确认", override=True)
    assert done["states"] == ["accepted"] and done["transfer"] is False
    assert done["overridden"] == ["等级不足: 4"]
    assert get(rt, "work_order", wo)["status"] == "accepted"


def test_three_anomalies_in_a_row_raise_the_technician_alert(rt) -> None:
    (t1,) = technicians(rt, 1)
    cust = customer(rt)
    for _ in range(3):
        wo = order(rt, cust)
        take_action(rt, tech(t1), "work_order", wo, "reject")
        assert get(rt, "work_order", wo)["status"] == "exception"  # nobody else to try
    profile = get(rt, "technician", t1)
    assert profile["consecutive_anomalies"] == 3 and profile["rejected_count"] == 3
    assert "anomaly_alert" in profile["tags"]
    with rt.engine.connect() as conn:
        fired = conn.execute(select(timeline.c.summary).where(timeline.c.entity == "technician")
                             .where(timeline.c.kind == "rule")).scalars().all()
    assert any("three anomalies in a row raise an alert" in s for s in fired)


def test_grab_pool_offers_to_every_qualified_technician(rt) -> None:
    techs = technicians(rt, 4)
    wo = order(rt, customer(rt), priority="P4")
    with rt.engine.connect() as conn:
        rows = conn.execute(select(offers.c.candidate_id, offers.c.mode, offers.c.state)
                            .where(offers.c.record_id == wo)).all()
    assert sorted(r[0] for r in rows) == techs
    assert {(r[1], r[2]) for r in rows} == {("grab_pool", "pending")}
    take_action(rt, tech(techs[2]), "work_order", wo, "accept")
    with pytest.raises(ConflictError) as lost:
        take_action(rt, tech(techs[0]), "work_order", wo, "accept")
    assert str(techs[2]) not in str(lost.value)  # the winner is not revealed


def test_fifty_concurrent_claims_have_exactly_one_winner(tmp_path, reference_app) -> None:
    from tests.conftest import PG_BASE_URL, _drop_pg_schema, _pg_schema

    schema = _pg_schema()
    rt = make_runtime(f"{PG_BASE_URL}?options=-csearch_path%3D{schema}", tmp_path / "h",
                      reference_app, pool_size=55)
    try:
        techs = technicians(rt, 50)
        cust = customer(rt)
        pool = ThreadPoolExecutor(max_workers=50)
        for _ in range(200):
            wo = order(rt, cust, priority="P4")
            barrier = threading.Barrier(50)

            def claim(t: int, wo: int = wo, barrier: threading.Barrier = barrier) -> bool:
                barrier.wait()
                try:
                    take_action(rt, tech(t), "work_order", wo, "accept")
                    return True
                except ConflictError:
                    return False

            wins = list(pool.map(claim, techs))
            assert sum(wins) == 1, f"order {wo}: {sum(wins)} winners"
            winner = techs[wins.index(True)]
            assert get(rt, "work_order", wo)["assignee"] == winner
            with rt.engine.connect() as conn:
                accepted = conn.execute(select(offers.c.candidate_id).where(
                    offers.c.record_id == wo).where(offers.c.state == "accepted")).all()
            assert accepted == [(winner,)]
        pool.shutdown()
    finally:
        rt.engine.dispose()
        _drop_pg_schema(schema)


def test_completion_and_rating_update_the_technician_profile(rt) -> None:
    from datetime import timedelta

    from dispatchflow.platform.records.files import store_file

    (t1,) = technicians(rt, 1)
    clock = [rt.clock()]
    rt.clock = lambda: clock[0]
    wo = order(rt, customer(rt))
    actor = tech(t1)
    take_action(rt, actor, "work_order", wo, "accept")
    for action in ("depart", "arrive", "start_service"):
        take_action(rt, actor, "work_order", wo, action)
    photo = store_file(rt.engine, b"\x89PNG" + bytes(16), filename="a.png",
                       content_type="image/png", created_by=actor.user_id,
                       max_bytes=1 << 20)
    clock[0] += timedelta(minutes=90)
    take_action(rt, actor, "work_order", wo, "complete",
                {"resolution": "换电容", "customer_absent": True, "photos": [photo.id]})
    profile = get(rt, "technician", t1)
    assert profile["completed_count"] == 1
    assert profile["open_tasks"] == 0 and profile["avg_handling_minutes"] == 90.0
    rt.records.update(SYSTEM_ACTOR, "work_order", wo, {"rating": 5}, expected_version=None)
    assert get(rt, "technician", t1)["rating_30d"] == 1.0
