"""``GET /live``: each viewer's stream carries only the changes it may read; replay; re-sync."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dispatchflow.platform import defaults
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.store.db import offers
from tests.live_stream import (
    changes_of,
    open_stream,
    order_near,
    quiet,
    read_until,
    watcher,
)


def offered_to(rt: Runtime, record_id: int) -> set[int]:
    with rt.engine.connect() as conn:
        return {int(c) for c in conn.execute(
            select(offers.c.candidate_id).where(offers.c.record_id == record_id)
            .where(offers.c.state == "pending")).scalars()}


def test_anonymous_gets_401(rt: Runtime) -> None:
    response = watcher(rt, None).get("/live")
    assert response.status_code == 401
    assert "sign in" in response.get_json()["detail"]


def test_technician_gets_its_own_offer_not_anothers(rt: Runtime, world: dict[str, Any]) -> None:
    response, events = open_stream(watcher(rt, "tech0"))
    try:
        mine, theirs = order_near(rt, world, 0), order_near(rt, world, 1)
        techs = [t["id"] for t in world["techs"]]
        assert offered_to(rt, mine) == {techs[0]} and offered_to(rt, theirs) == {techs[1]}
        seen = read_until(events, quiet)
        assert changes_of(seen) == {("work_order", mine)}
        kinds = {e.data["kind"] for e in seen if e.data}
        assert {"create", "dispatch"} <= kinds
        # Ids, kind, version and time only: no field value of the order.
        assert set(seen[0].data or {}) == {"event_id", "entity", "record_id", "kind",
                                           "row_version", "at"}
    finally:
        response.close()


def test_assigned_technician_gets_updates_of_its_order(rt: Runtime,
                                                       world: dict[str, Any]) -> None:
    mine, theirs = order_near(rt, world, 0), order_near(rt, world, 1)
    response, events = open_stream(watcher(rt, "tech0"))
    try:
        for rid, tech in ((mine, world["techs"][0]), (theirs, world["techs"][1])):
            rt.records.update(SYSTEM_ACTOR, "work_order", rid, {"assignee": tech["id"]},
                              expected_version=None)
        seen = read_until(events, quiet)
        assert changes_of(seen) == {("work_order", mine)}
        versions = [e.data["row_version"] for e in seen if e.data]
        assert versions[-1] == rt.records.get(SYSTEM_ACTOR, "work_order", mine)["row_version"]
    finally:
        response.close()


def test_customer_gets_only_its_own_order(rt: Runtime, world: dict[str, Any]) -> None:
    response, events = open_stream(watcher(rt, "cust1"))
    try:
        order_near(rt, world, 0)
        theirs = order_near(rt, world, 1)
        assert changes_of(read_until(events, quiet)) == {("work_order", theirs)}
    finally:
        response.close()


@pytest.mark.parametrize("query", [False, True], ids=["header", "query"])
def test_last_event_id_replays_exactly_what_was_missed(rt: Runtime, world: dict[str, Any],
                                                       query: bool) -> None:
    client = watcher(rt, "tech0")
    response, events = open_stream(client)
    try:
        order_near(rt, world, 0)
        first = read_until(events, quiet)
    finally:
        response.close()
    assert len(first) >= 3
    # The page saw the first two events, then lost its connection; more happened since.
    later = order_near(rt, world, 0)
    response, events = open_stream(client, first[1].id, query=query)
    try:
        replayed = read_until(events, lambda seen: ("work_order", later) in changes_of(seen))
    finally:
        response.close()
    assert [e.name for e in replayed] == ["change"] * len(replayed)
    assert replayed[:len(first) - 2] == first[2:]
    assert changes_of(replayed[len(first) - 2:]) == {("work_order", later)}
    ids = [e.id for e in first + replayed[len(first) - 2:]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("last", ["0-0", "not-an-id", "999999-999999"])
def test_a_gap_too_long_or_a_foreign_id_asks_for_a_resync(rt: Runtime, world: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          last: str) -> None:
    monkeypatch.setattr(defaults, "LIVE_REPLAY_MAX_EVENTS", 5)
    order_near(rt, world, 0)  # the world and this order: many more than 5 changes
    response, events = open_stream(watcher(rt, "tech0"), last)
    try:
        resync = next(e for e in events if e.name != "comment")
        assert resync.name == "resync"
        later = order_near(rt, world, 0)
        seen = read_until(events, quiet)
        assert changes_of(seen) == {("work_order", later)}  # and on from now
    finally:
        response.close()


def test_a_gap_too_old_asks_for_a_resync(rt: Runtime, world: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client = watcher(rt, "tech0")
    response, events = open_stream(client)
    try:
        order_near(rt, world, 0)
        last = read_until(events, quiet)[-1].id
    finally:
        response.close()
    order_near(rt, world, 0)
    monkeypatch.setattr(defaults, "LIVE_REPLAY_MAX_MINUTES", -1.0)  # everything is too old
    response, events = open_stream(client, last)
    try:
        assert next(e for e in events if e.name != "comment").name == "resync"
    finally:
        response.close()


def test_closing_the_stream_unsubscribes(rt: Runtime, world: dict[str, Any]) -> None:
    response, events = open_stream(watcher(rt, "tech0"))
    next(events)  # the retry line: the stream runs
    assert len(rt.live._subscribers) == 1  # type: ignore[attr-defined]
    response.close()
    assert not rt.live._subscribers  # type: ignore[attr-defined]
