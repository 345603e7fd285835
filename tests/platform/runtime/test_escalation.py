"""Escalation ladders end to end: a published bundle, records, the scheduler moving time.

Records are created and changed through the record service (inline queue: events
are processed right after the commit); :func:`~dispatchflow.platform.runtime.scheduler.tick`
fires the level timers at chosen instants. What a ladder did is read back from
the timeline (``df_timeline``), the planned notifications (``df_notifications``)
and the pending timers. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.dsl.diagnostics import render_text
from dispatchflow.errors import ConflictError, NotFoundError, PermissionDenied
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.users import add_user, create_token
from dispatchflow.platform.runtime.escalation import acknowledge
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.runtime.timers import pending_timers
from dispatchflow.platform.store.db import notifications, outbox, timeline
from dispatchflow.platform.store.versions import publish

#: Monday 2 March 2026, 10:00 in Shanghai.
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

WORK_ORDER = """\
entity: work_order
label: {zh: 工单, en: Work order}
title_field: title
fields:
  title: {type: string, required: true}
  priority: {type: enum, required: true, default: P3, values: [P1, P2, P3]}
  stage: {type: enum, required: true, default: open, values: [open, accepted, returned, fixed]}
"""

ROLES = """\
roles:
  dispatcher:
    permissions:
      work_order: {allow: [read, update]}
  supervisor:
    permissions:
      work_order: {allow: [read]}
  manager:
    permissions:
      work_order: {allow: [read]}
"""


def _notification(name: str, role: str) -> str:
    return (f"notification: {name}\nentity: work_order\nchannels: [inbox]\nto:\n"
            f"  - role: {role}\nsubject: \"{{{{ work_order.title }}}}\"\nbody: {name}\n")


# Offered on creation; `stage` drives the rest (every update is a work_order.updated).
FLOW = """\
flow: job
entity: work_order
initial: new
states:
  new:
    transitions:
      - {on: work_order.created, to: offered}
  offered:
    transitions:
      - {on: work_order.updated, guard: 'work_order.stage == "accepted"', to: working}
      - {on: work_order.updated, to: offered}
  working:
    transitions:
      - {on: work_order.updated, guard: 'work_order.stage == "returned"', to: offered}
      - {on: work_order.updated, guard: 'work_order.stage == "fixed"', to: fixed}
      - {on: work_order.updated, to: working}
  fixed:
    on_enter: [{emit: repaired}]
    transitions:
      - {on: work_order.closed, to: closed}
  closed: {final: true}
sla_clocks:
  resolution:
    start_on: work_order.created
    stop_on: [work_order.repaired]
    target: 'if work_order.priority == "P1" then 1h else 4h'
escalations:
  offer_unanswered:
    label: {zh: 接单超时升级, en: Offer not accepted}
    while_in: [offered]
    levels:
      - {after: 15m, notify: supervisor_alert}
      - {after: 30m, notify: manager_alert, emit: stalled}
  at_risk:
    clock: resolution
    levels:
      - {before: 30m, notify: risk_alert}
      - {after: 0m, emit: late}
"""

FILES = {
    "entities/work_order.yaml": WORK_ORDER,
    "roles.yaml": ROLES,
    "flows/job.yaml": FLOW,
    "notifications/supervisor_alert.yaml": _notification("supervisor_alert", "supervisor"),
    "notifications/manager_alert.yaml": _notification("manager_alert", "manager"),
    "notifications/risk_alert.yaml": _notification("risk_alert", "supervisor"),
}


class World:
    """A runtime on a fresh database with a clock the test moves."""

    def __init__(self, rt: Runtime, now: list[datetime]) -> None:
        self.rt, self._now = rt, now

    def at(self, when: datetime) -> None:
        """Move the clock to ``when`` and let the scheduler fire what is due."""
        self._now[0] = when
        tick(self.rt, when)

    def order(self, **values: Any) -> int:
        record = self.rt.records.create(SYSTEM_ACTOR, "work_order", {"title": "空调漏水",
                                                                     **values})
        return int(record["id"])

    def update(self, record_id: int, **values: Any) -> None:
        self.rt.records.update(SYSTEM_ACTOR, "work_order", record_id, values,
                               expected_version=None)

    def escalations(self, record_id: int) -> list[tuple[datetime, str]]:
        with self.rt.engine.connect() as conn:
            rows = conn.execute(select(timeline.c.at, timeline.c.summary)
                                .where(timeline.c.record_id == record_id)
                                .where(timeline.c.kind == "escalation")
                                .order_by(timeline.c.id)).all()
        return [(_utc(at), summary) for at, summary in rows]

    def planned(self, record_id: int) -> list[tuple[str, str, str]]:
        with self.rt.engine.connect() as conn:
            rows = conn.execute(select(notifications.c.notification,
                                       notifications.c.recipient, notifications.c.cause)
                                .where(notifications.c.record_id == record_id)
                                .order_by(notifications.c.id)).all()
        return [tuple(r) for r in rows]

    def events(self, record_id: int) -> list[str]:
        with self.rt.engine.connect() as conn:
            return list(conn.execute(select(outbox.c.event)
                                     .where(outbox.c.record_id == record_id)
                                     .order_by(outbox.c.id)).scalars())

    def pending(self, record_id: int) -> list[tuple[str, datetime]]:
        with self.rt.engine.connect() as conn:
            rows = pending_timers(conn, "work_order", record_id, "escalation")
        return [(r["key"].split(":", 1)[1], _utc(r["fire_at"])) for r in rows]


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


@pytest.fixture
def world(database_url: str, tmp_path: Path, make_bundle: Callable[..., Path]
          ) -> Iterator[World]:
    result = compile_bundle(make_bundle(FILES))
    assert result.app is not None, render_text(result.diagnostics)
    assert not result.diagnostics, render_text(result.diagnostics)
    now = [T0]
    settings = Settings.from_env(home=tmp_path / "home", database_url=database_url,
                                 secret_key="test-secret", redis_url=None)
    rt = Runtime(settings, clock=lambda: now[0])
    publish(rt.engine, result.app, created_by="test")
    rt.refresh()
    for user, role in (("sup", "supervisor"), ("boss", "manager"), ("disp", "dispatcher")):
        add_user(rt.engine, user, name=user, password=None, roles=[role])
    yield World(rt, now)
    rt.engine.dispose()


DISPATCHER = Actor("disp", "disp", roles=("dispatcher",), channel="api")


# ------------------------------------------------------------------ while_in ladders

def test_levels_fire_at_15_and_30_minutes(world: World) -> None:
    order = world.order()
    assert world.pending(order)[:2] == [("offer_unanswered:1", T0 + 15 * MIN),
                                        ("offer_unanswered:2", T0 + 30 * MIN)]
    world.at(T0 + 14 * MIN)
    assert world.escalations(order) == []
    world.at(T0 + 16 * MIN)
    assert world.escalations(order) == [(T0 + 15 * MIN, "escalation offer_unanswered: level 1")]
    assert world.planned(order) == [
        ("supervisor_alert", "sup", "escalation offer_unanswered level 1")]
    world.at(T0 + 31 * MIN)
    assert world.escalations(order)[1:] == [
        (T0 + 30 * MIN, "escalation offer_unanswered: level 2")]
    assert world.planned(order)[1:] == [
        ("manager_alert", "boss", "escalation offer_unanswered level 2")]
    assert "stalled" in world.events(order)
    world.at(T0 + 3 * 60 * MIN)  # nothing more: each level fires once per stay
    assert len([s for _, s in world.escalations(order) if "offer_unanswered" in s]) == 2


def test_moving_within_the_state_continues_the_stay(world: World) -> None:
    order = world.order()
    world.at(T0 + 10 * MIN)
    world.update(order, priority="P2")  # offered -> offered
    assert world.pending(order)[:1] == [("offer_unanswered:1", T0 + 15 * MIN)]


def test_leaving_the_state_stops_the_ladder_and_coming_back_restarts_it(world: World) -> None:
    order = world.order()
    world.at(T0 + 10 * MIN)
    world.update(order, stage="accepted")  # offered -> working
    assert [k for k, _ in world.pending(order) if k.startswith("offer")] == []
    world.at(T0 + 40 * MIN)
    assert [s for _, s in world.escalations(order) if "offer" in s] == []
    world.update(order, stage="returned")  # working -> offered: a new stay
    assert [p for p in world.pending(order) if p[0].startswith("offer")] == [
        ("offer_unanswered:1", T0 + 55 * MIN), ("offer_unanswered:2", T0 + 70 * MIN)]
    world.at(T0 + 56 * MIN)
    assert [s for _, s in world.escalations(order) if "offer" in s] == [
        "escalation offer_unanswered: level 1"]


def test_acknowledge_stops_the_ladder_until_the_next_stay(world: World) -> None:
    order = world.order()
    world.at(T0 + 16 * MIN)
    acknowledge(world.rt, DISPATCHER, "work_order", order, "offer_unanswered")
    assert [k for k, _ in world.pending(order) if k.startswith("offer")] == []
    assert world.escalations(order)[-1] == (
        T0 + 16 * MIN, "escalation offer_unanswered: acknowledged by disp")
    acknowledge(world.rt, DISPATCHER, "work_order", order, "offer_unanswered")  # no-op
    world.at(T0 + 40 * MIN)
    assert [s for _, s in world.escalations(order) if "level" in s and "offer" in s] == [
        "escalation offer_unanswered: level 1"]
    world.update(order, priority="P2")  # still the same stay: stays acknowledged
    assert [k for k, _ in world.pending(order) if k.startswith("offer")] == []
    world.update(order, stage="accepted")
    world.update(order, stage="returned")  # the next stay runs again
    assert [k for k, _ in world.pending(order) if k.startswith("offer")] == [
        "offer_unanswered:1", "offer_unanswered:2"]


def test_acknowledge_needs_update_rights_visibility_and_a_running_ladder(world: World
                                                                         ) -> None:
    order = world.order()
    supervisor = Actor("sup", "sup", roles=("supervisor",), channel="api")
    with pytest.raises(PermissionDenied):
        acknowledge(world.rt, supervisor, "work_order", order, "offer_unanswered")
    with pytest.raises(NotFoundError, match="did you mean 'offer_unanswered'"):
        acknowledge(world.rt, DISPATCHER, "work_order", order, "offer_unanswerd")
    with pytest.raises(NotFoundError):
        acknowledge(world.rt, DISPATCHER, "work_order", order + 100, "offer_unanswered")
    world.update(order, stage="accepted")
    with pytest.raises(ConflictError, match="not running"):
        acknowledge(world.rt, DISPATCHER, "work_order", order, "offer_unanswered")
    assert [s for _, s in world.escalations(order) if "acknowledged" in s] == []


def test_acknowledge_over_the_api(world: World) -> None:
    from dispatchflow.web.app import create_app

    order = world.order()
    client = create_app(runtime=world.rt, TESTING=True).test_client()
    token = create_token(world.rt.engine, "disp", name="test").token
    url = f"/api/v1/work_order/{order}/escalations/offer_unanswered/acknowledge"
    response = client.post(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204, response.get_data(as_text=True)
    assert [k for k, _ in world.pending(order) if k.startswith("offer")] == []
    missing = client.post(url.replace("offer_unanswered", "nope"),
                          headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 404
    other = create_token(world.rt.engine, "sup", name="test").token
    assert client.post(url, headers={"Authorization": f"Bearer {other}"}).status_code == 403


# ------------------------------------------------------------------ clock ladders

def test_clock_ladder_counts_from_the_deadline(world: World) -> None:
    order = world.order()  # P3: resolution deadline T0 + 4h
    deadline = T0 + 4 * 60 * MIN
    assert [p for p in world.pending(order) if p[0].startswith("at_risk")] == [
        ("at_risk:1", deadline - 30 * MIN), ("at_risk:2", deadline)]
    world.update(order, stage="accepted")
    world.at(deadline - 29 * MIN)
    assert world.escalations(order)[-1] == (deadline - 30 * MIN, "escalation at_risk: level 1")
    assert world.planned(order)[-1] == ("risk_alert", "sup", "escalation at_risk level 1")
    world.at(deadline + MIN)
    assert world.escalations(order)[-1] == (deadline, "escalation at_risk: level 2")
    assert world.events(order)[-1] == "late"


def test_clock_ladder_follows_a_deadline_change(world: World) -> None:
    order = world.order()
    world.update(order, stage="accepted")
    world.at(T0 + 10 * MIN)
    world.update(order, priority="P1")  # target 4h -> 1h: deadline T0 + 1h
    assert [p for p in world.pending(order) if p[0].startswith("at_risk")] == [
        ("at_risk:1", T0 + 30 * MIN), ("at_risk:2", T0 + 60 * MIN)]
    world.at(T0 + 31 * MIN)
    assert world.escalations(order)[-1] == (T0 + 30 * MIN, "escalation at_risk: level 1")
    world.at(T0 + 40 * MIN)
    world.update(order, priority="P3")  # back to 4h: level 1 lies ahead again
    assert [p for p in world.pending(order) if p[0].startswith("at_risk")] == [
        ("at_risk:1", T0 + 210 * MIN), ("at_risk:2", T0 + 240 * MIN)]
    world.update(order, priority="P1")  # at risk again: level 1 is due at once
    assert [p for p in world.pending(order) if p[0].startswith("at_risk")] == [
        ("at_risk:1", T0 + 40 * MIN), ("at_risk:2", T0 + 60 * MIN)]
    world.at(T0 + 61 * MIN)
    assert [s for _, s in world.escalations(order)][-2:] == [
        "escalation at_risk: level 1", "escalation at_risk: level 2"]


def test_a_sent_level_is_not_repeated_when_the_deadline_moves_earlier(world: World) -> None:
    order = world.order()
    world.update(order, stage="accepted")
    world.update(order, priority="P2")  # a settle; the deadline stays T0 + 4h
    world.at(T0 + 211 * MIN)  # level 1 fired at T0 + 3h30
    world.update(order, priority="P1")  # deadline T0 + 1h, long past
    assert [p for p in world.pending(order) if p[0].startswith("at_risk")] == [
        ("at_risk:2", T0 + 211 * MIN)]
    world.at(T0 + 212 * MIN)
    assert [s for _, s in world.escalations(order)] == [
        "escalation at_risk: level 1", "escalation at_risk: level 2"]


def test_a_deadline_already_close_fires_at_once(world: World) -> None:
    order = world.order()
    world.update(order, stage="accepted")
    world.at(T0 + 45 * MIN)
    world.update(order, priority="P1")  # deadline T0 + 1h: "30m before" has passed
    world.at(T0 + 45 * MIN)
    assert world.escalations(order)[-1] == (T0 + 45 * MIN, "escalation at_risk: level 1")


def test_clock_ladder_ends_when_the_clock_stops(world: World) -> None:
    order = world.order()
    world.update(order, stage="accepted")
    world.update(order, stage="fixed")  # emits repaired: the clock stops
    assert world.pending(order) == []
    world.at(T0 + 5 * 60 * MIN)
    assert [s for _, s in world.escalations(order) if "at_risk" in s] == []
