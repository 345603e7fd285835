"""``GET /live?track=<token>``: a tracking link's stream carries its one record, nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dispatchflow.platform import defaults
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from tests.live_stream import changes_of, order_near, parse, quiet, read_until, watcher
from tests.portal_world import cancel_now, track_path


def live_path(client: Any, record_id: int) -> str:
    return "/live?track=" + track_path(client, record_id).removeprefix("/track/")


def test_a_tracking_stream_gets_its_order_and_no_other(rt: Runtime,
                                                        world: dict[str, Any]) -> None:
    mine, theirs = order_near(rt, world, 0), order_near(rt, world, 1)
    client = watcher(rt, None)  # no session: the token is the authorization
    response = client.get(live_path(client, mine), buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = parse(response.response)
    try:
        for rid in (theirs, mine, theirs):
            rt.records.update(SYSTEM_ACTOR, "work_order", rid, {"assignee": world["techs"][1]["id"]},
                              expected_version=None)
        later = order_near(rt, world, 0)  # same customer, same technician: still another order
        seen = read_until(events, quiet)
        assert changes_of(seen) == {("work_order", mine)}
        assert ("work_order", later) not in changes_of(seen)
        assert {e.data["kind"] for e in seen if e.data} >= {"update"}
        # Ids, kind and time only: no field value, not even the row version.
        assert {e.data["row_version"] for e in seen if e.data} == {None}
    finally:
        response.close()


@pytest.mark.parametrize("token", ["forged-token", ""])
def test_a_bad_token_gets_404(rt: Runtime, token: str) -> None:
    response = watcher(rt, None).get(f"/live?track={token}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "tracking link" in response.get_json()["detail"]


def test_a_link_older_than_its_lifetime_gets_404(rt: Runtime, world: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    client = watcher(rt, None)
    path = live_path(client, order_near(rt, world, 0))
    monkeypatch.setattr(defaults, "TRACKING_LINK_DAYS", -1)
    assert client.get(path).status_code == 404


def test_an_ended_link_is_refused_after_the_grace(rt: Runtime, world: dict[str, Any]) -> None:
    order = order_near(rt, world, 0)
    client = watcher(rt, None)
    path = live_path(client, order)
    cancelled_at = cancel_now(rt, "cust0", order)
    rt.clock = lambda: cancelled_at + timedelta(days=2, hours=23)
    within = client.get(path, buffered=False)
    assert within.status_code == 200
    within.close()
    rt.clock = lambda: cancelled_at + timedelta(days=3, minutes=1)
    ended = client.get(path)
    assert ended.status_code == 410
    assert ended.get_json()["type"].endswith("/gone")
    # The page and its status fragment agree.
    page = path.replace("/live?track=", "/track/")
    assert client.get(page).status_code == 410
    assert client.get(page + "/status").status_code == 410


def test_a_session_stream_is_unchanged_without_track(rt: Runtime) -> None:
    assert watcher(rt, None).get("/live").status_code == 401
