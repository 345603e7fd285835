"""Issue #22, finding 8 (part): ``/dispatch`` showed customers the ids, scores and
distances of the candidate technicians (customers may not read technicians).

Now a role that may not read the pool entity sees rounds and offers without
candidates, and timeline dispatch entries without details; a role that may read
the pool but not some rows (a dispatcher limited to a region) sees those
candidates cut to their ids.
"""

from __future__ import annotations

import json
from typing import Any

from dispatchflow.platform.records.actors import SYSTEM_ACTOR

from . import api_world

reference_app, rt, client, world, token_for = (api_world.reference_app, api_world.rt,
                                               api_world.client, api_world.world,
                                               api_world.token_for)
auth = api_world.auth


def _dispatch(client: Any, token: str, order_id: int) -> dict[str, Any]:
    res = client.get(f"/api/v1/work_order/{order_id}/dispatch", headers=auth(token))
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def test_a_customer_sees_no_candidate_ids_scores_or_distances(client, world, token_for) -> None:
    order_id = world["orders"][0]["id"]
    rounds = _dispatch(client, token_for("customer", 0), order_id)["rounds"]
    assert rounds and rounds[0]["status"] == "offered"
    for rnd in rounds:
        assert rnd["decision"] == {"policy": rnd["policy"]}
        for offer in rnd["offers"]:
            assert set(offer) == {"id", "mode", "state", "created_at", "expires_at",
                                  "answered_at"}
    timeline = client.get(f"/api/v1/work_order/{order_id}/timeline",
                          headers=auth(token_for("customer", 0))).get_json()["items"]
    dispatch = [i for i in timeline if i["kind"] == "dispatch"]
    assert dispatch and all(i["detail"] == {} and i["summary"] == "dispatch" for i in dispatch)
    text = json.dumps(rounds)
    assert "score" not in text and "terms" not in text and "candidate" not in text


def test_a_dispatcher_sees_scores_of_the_candidates_it_may_read(client, rt, world,
                                                                token_for) -> None:
    order_id = world["orders"][0]["id"]
    token = token_for("dispatcher")
    ranked = _dispatch(client, token, order_id)["rounds"][0]["decision"]["ranked"]
    assert ranked and all("score" in c and "terms" in c for c in ranked)
    # Move one candidate out of the dispatcher's regions: it is cut to its id.
    hidden = ranked[0]["id"]
    region = rt.records.create(SYSTEM_ACTOR, "region", {"code": "XH", "name": "徐汇区"})
    version = rt.records.get(SYSTEM_ACTOR, "technician", hidden)["row_version"]
    rt.records.update(SYSTEM_ACTOR, "technician", hidden, {"region": region["id"]},
                      expected_version=version)
    rnd = _dispatch(client, token, order_id)["rounds"][0]
    assert {"id": hidden} in rnd["decision"]["ranked"]
    assert all("score" in c for c in rnd["decision"]["ranked"] if c["id"] != hidden)
    assert all(o["score"] is None for o in rnd["offers"] if o["candidate"] == hidden)
