"""Reading a ``/live`` Server-Sent Events stream in tests, and the people who watch one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.records.users import add_user
from dispatchflow.web.app import create_app
from tests.portal_world import login


class Event(NamedTuple):
    """One SSE event (``name`` "comment" for a comment line such as a heartbeat)."""

    id: str | None
    name: str
    data: dict[str, Any] | None


def parse(chunks: Iterable[bytes | str]) -> Iterator[Event]:
    """The events of a stream given as the chunks its server wrote."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    fields.setdefault("comment", line[1:].strip())
                else:
                    key, _, value = line.partition(": ")
                    fields[key] = value
            if "comment" in fields:
                yield Event(None, "comment", None)
            elif "event" in fields:
                yield Event(fields.get("id"), fields["event"],
                            json.loads(fields["data"]) if "data" in fields else None)


def read_until(events: Iterator[Event], done: Callable[[list[Event]], bool],
               timeout: float = 20.0) -> list[Event]:
    """Events (not comments) read from ``events`` until ``done(events so far)`` is true
    at a heartbeat; fails after ``timeout`` seconds."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    for event in events:
        if event.name != "comment":
            seen.append(event)
        elif done(seen):
            return seen
        assert time.monotonic() < deadline, f"stream did not get there; seen {seen}"
    raise AssertionError(f"the stream ended; seen {seen}")


def quiet(_seen: list[Event]) -> bool:
    """Read until the first heartbeat: the stream has sent all the feed had."""
    return True


def changes_of(seen: list[Event]) -> set[tuple[str, int]]:
    """The records the ``change`` events are about."""
    return {(e.data["entity"], e.data["record_id"]) for e in seen
            if e.name == "change" and e.data is not None}


def people(rt: Runtime) -> dict[str, Any]:
    """Two technicians far apart, two normal customers, and users for each (password
    ``pw``): an order near one technician is offered to that one alone."""
    create, a = rt.records.create, SYSTEM_ACTOR
    region = create(a, "region", {"code": "PD", "name": "浦东新区"})
    customers = [create(a, "customer", {"name": n, "phone": p, "tier": "normal",
                                        "region": region["id"]})
                 for n, p in (("张伟", "13800000001"), ("李娜", "13800000002"))]
    spots = [(31.20, 121.50), (31.40, 121.70)]
    techs = [create(a, "technician", {"name": n, "level": 3, "on_duty": True,
                                      "skills": ["aircon"], "location": {"lat": la, "lng": lo}})
             for n, (la, lo) in zip(("王师傅", "赵师傅"), spots, strict=True)]
    for i in range(2):
        add_user(rt.engine, f"tech{i}", name=f"tech{i}", password="pw", roles=["technician"],
                 attributes={"technician": techs[i]["id"], "regions": ["PD"]})
        add_user(rt.engine, f"cust{i}", name=f"cust{i}", password="pw", roles=["customer"],
                 attributes={"customer": customers[i]["id"]})
    return {"region": region, "customers": customers, "techs": techs, "spots": spots}


def order_near(rt: Runtime, world: dict[str, Any], i: int) -> int:
    """A new order of customer ``i`` next to technician ``i`` (offered to them)."""
    lat, lng = world["spots"][i]
    order = rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": f"空调不制冷 {i}", "category": "aircon",
        "customer": world["customers"][i]["id"], "region": world["region"]["id"],
        "location": {"lat": lat + 0.001, "lng": lng}, "contact_phone": "13700000000"})
    return int(order["id"])


def watcher(rt: Runtime, user: str | None) -> Any:
    """A test client of a new web app for ``rt``, signed in as ``user`` (None: anonymous)."""
    client = create_app(runtime=rt, TESTING=True).test_client()
    if user is not None:
        login(client, user, "pw")
    return client


def open_stream(client: Any, last_event_id: str | None = None,
                query: bool = False) -> tuple[Any, Iterator[Event]]:
    """``GET /live`` unbuffered: the response (close it) and its events."""
    headers = {} if last_event_id is None or query else {"Last-Event-ID": last_event_id}
    path = f"/live?last_event_id={last_event_id}" if query and last_event_id else "/live"
    response = client.get(path, headers=headers, buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return response, parse(response.response)
