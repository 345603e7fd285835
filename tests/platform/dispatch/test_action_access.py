"""The one authorization decision for actions: what ``available_actions`` lists is
exactly what ``take_action`` lets the caller do.

For several states of a work order and several people, every action of the flow
is tried; a failed try writes nothing (its transaction is rolled back), and
after a successful one the order is built again in the same state, so each try
starts from the state listed. SQLite only: this compares two code paths, and
the database plays no part in that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import App
from dispatchflow.errors import DispatchflowError, NotFoundError
from dispatchflow.flows import compile_flows
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.dispatch.access import check_action, standing_of
from dispatchflow.platform.dispatch.explain import available_actions
from dispatchflow.platform.dispatch.manual import assign_by_hand
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.files import store_file
from dispatchflow.platform.runtime.runner import take_action
from dispatchflow.platform.runtime.step import Step
from dispatchflow.platform.store.versions import publish

_SERVICE = [("tech0", "accept"), ("tech0", "depart"), ("tech0", "arrive"),
            ("tech0", "start_service")]

#: How each case is reached from a new P3 order (offered to the nearest technician,
#: tech0): who takes which action (``assign``: the dispatcher assigns tech1 by hand),
#: and the status it ends in. ``pool`` orders are P4 (the grab pool: offered to both).
PATHS: dict[str, tuple[str, list[tuple[str, str]], str]] = {
    "offered": ("P3", [], "offered"),
    "offered to the pool": ("P4", [], "offered"),
    "claimed from the pool": ("P4", [("tech1", "accept")], "accepted"),
    "accepted": ("P3", [("tech0", "accept")], "accepted"),
    "rejected, then accepted by another": (
        "P3", [("tech0", "reject"), ("tech1", "accept")], "accepted"),
    "assigned by hand while offered": ("P3", [("dispatcher", "assign")], "accepted"),
    "en_route": ("P3", _SERVICE[:2], "en_route"),
    "on_site": ("P3", _SERVICE[:3], "on_site"),
    "in_service": ("P3", _SERVICE, "in_service"),
    "completed": ("P3", [*_SERVICE, ("tech0", "complete")], "completed"),
    "exception": ("P3", [("tech0", "accept"), ("tech0", "report_exception")], "exception"),
}


@pytest.fixture
def rt(tmp_path: Path, authz_app: App) -> Any:
    runtime = Runtime(Settings.from_env(home=tmp_path / "home", secret_key="t",
                                        database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    publish(runtime.engine, authz_app, created_by="test")
    runtime.refresh()
    yield runtime
    runtime.engine.dispose()


class World:
    """Two aircon technicians (1 and 2 km away), their customer, a dispatcher and a
    supervisor; :meth:`order` builds an order in one of :data:`PATHS`' states."""

    def __init__(self, rt: Runtime) -> None:
        create, a = rt.records.create, SYSTEM_ACTOR
        self.rt = rt
        self.customer = create(a, "customer", {"name": "李娜", "phone": "13800000002",
                                               "tier": "normal"})["id"]
        self.techs = [create(a, "technician", {
            "name": f"技师{km}", "level": 3, "on_duty": True, "skills": ["aircon"],
            "location": {"lat": 31.2 + km / 111.2, "lng": 121.5}})["id"] for km in (1, 2)]
        self.people: dict[str, Actor] = {
            **{f"tech{i}": Actor(f"tech{i}", roles=("technician",),
                                 attributes={"technician": t})
               for i, t in enumerate(self.techs)},
            "dispatcher": Actor("disp", roles=("dispatcher",), attributes={"regions": []}),
            "supervisor": Actor("sup", roles=("area_supervisor",), attributes={"regions": []}),
            "customer": Actor("cust", roles=("customer",),
                              attributes={"customer": self.customer}),
        }

    def order(self, state: str) -> int:
        priority, path, status = PATHS[state]
        for t in self.techs:  # same profiles every time, so the same technician is offered
            self.rt.records.update(SYSTEM_ACTOR, "technician", t, {
                "open_tasks": 0, "consecutive_anomalies": 0}, expected_version=None)
        order = self.rt.records.create(SYSTEM_ACTOR, "work_order", {
            "title": "空调不制冷", "category": "aircon", "customer": self.customer,
            "priority": priority, "location": {"lat": 31.2, "lng": 121.5}})["id"]
        for who, action in path:
            if action == "assign":
                assign_by_hand(self.rt, self.people[who], "work_order", order, self.techs[1],
                               "客户指定")
            else:
                take_action(self.rt, self.people[who], "work_order", order, action,
                            self.values(action, who))
        assert self.rt.records.get(SYSTEM_ACTOR, "work_order", order)["status"] == status
        return int(order)

    def values(self, action: str, who: str) -> dict[str, Any] | None:
        """Valid form values for ``action`` taken by ``who`` (None for an action without a
        form); a photo is the actor's own upload, as attachment fields require."""
        if action != "complete":
            return None
        photo = store_file(self.rt.engine, b"\x89PNG" + bytes(16), filename="a.png",
                           content_type="image/png", created_by=self.people[who].user_id,
                           max_bytes=1 << 20)
        return {"resolution": "换电容", "customer_absent": True, "photos": [photo.id]}

    def listed(self, who: str, order: int) -> set[str]:
        try:
            items = available_actions(self.rt, self.people[who], "work_order", order)
        except NotFoundError:
            return set()
        return {item["action"] for item in items}


def _all_actions(app: App) -> list[str]:
    return sorted({t.action for flow in compile_flows(app).values()
                   for t in flow.transitions() if t.action})


@pytest.mark.parametrize("state", sorted(PATHS))
def test_the_listed_actions_are_exactly_those_that_succeed(rt, authz_app, state) -> None:
    world = World(rt)
    actions = _all_actions(authz_app)
    assert {"accept", "reject", "assign", "depart", "complete"} <= set(actions)
    order = world.order(state)
    mismatches: list[str] = []
    succeeded_somewhere = 0
    for who in world.people:
        listed = world.listed(who, order)
        for action in actions:
            try:
                take_action(rt, world.people[who], "work_order", order, action,
                            world.values(action, who))
                ok, why = True, ""
            except DispatchflowError as exc:
                ok, why = False, f"{type(exc).__name__}: {exc.message}"
            if ok != (action in listed):
                mismatches.append(f"{who} {action}: listed={action in listed} "
                                  f"taken={ok} {why}")
            if ok:
                succeeded_somewhere += 1
                order = world.order(state)
                listed = world.listed(who, order)
    assert mismatches == []
    assert succeeded_somewhere > 0


def test_the_decision_is_one_function_for_both(rt, authz_app) -> None:
    """A pending offer grants accept and reject only; the assignee's actions need rows."""
    world = World(rt)
    order = world.order("offered")
    with rt.engine.connect() as conn:
        step = Step.open(rt, conn, "work_order", order, rt.clock())
        assert step is not None
        tech0 = world.people["tech0"]
        standing = standing_of(step, tech0)
        assert standing.pending and standing.offered and not standing.visible
        check_action(step, tech0, "accept", standing)
        check_action(step, tech0, "reject", standing)
        with pytest.raises(NotFoundError):
            check_action(step, tech0, "depart", standing)
        with pytest.raises(NotFoundError):  # never offered: not even told it exists
            check_action(step, world.people["tech1"], "accept",
                         standing_of(step, world.people["tech1"]))


