"""Issue #21, item 1: an action's required form was skipped when the body was empty.

``POST /api/v1/work_order/ID/actions/complete`` with ``{}`` answered 200 and the
order was completed with no resolution, photos or signature (``take_action``
validated the form only ``if form_values:``), while a partly filled body was
checked. Now the form is checked whatever the body; an action without a form
still takes an empty one.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatchflow.flows import compile_flows

#: Actions of the reference bundle whose form has a required field -> their form.
FORM_ACTIONS = {"complete": "completion_report"}

BODIES: dict[str, dict[str, Any]] = {
    "missing": {},
    "empty object": {"json": {}},
    "null": {"data": "null", "content_type": "application/json"},
}


def test_every_form_action_of_the_reference_bundle_is_covered(reference_app) -> None:
    found = {t.action: t.form for flow in compile_flows(reference_app).values()
             for t in flow.transitions() if t.action and t.form}
    assert found == FORM_ACTIONS  # a new one needs its own test below


def _in_service(client, people) -> int:
    order = people.order()
    for action in ("accept", "depart", "arrive", "start_service"):
        res = client.post(f"/api/v1/work_order/{order}/actions/{action}",
                          headers=people.headers("tech0"))
        assert res.status_code == 200, (action, res.get_json())
    return order


@pytest.mark.parametrize("body", sorted(BODIES))
def test_complete_with_no_values_is_422_per_required_field(client, people, body) -> None:
    order = _in_service(client, people)
    before = people.writes(order)
    res = client.post(f"/api/v1/work_order/{order}/actions/complete",
                      headers=people.headers("tech0"), **BODIES[body])
    assert res.status_code == 422, res.get_json()
    problem = res.get_json()
    assert sorted((e["field"], e["code"]) for e in problem["errors"]) == [
        ("photos", "required"), ("resolution", "required"), ("signature", "required")]
    assert people.get(order)["status"] == "in_service"
    assert people.writes(order) == before  # nothing written, no event queued


def test_complete_with_part_of_the_form_is_422_for_the_rest(client, people) -> None:
    order = _in_service(client, people)
    before = people.writes(order)
    res = client.post(f"/api/v1/work_order/{order}/actions/complete",
                      headers=people.headers("tech0"), json={"resolution": "换电容"})
    assert res.status_code == 422
    assert sorted(e["field"] for e in res.get_json()["errors"]) == ["photos", "signature"]
    assert people.writes(order) == before


def test_complete_with_the_whole_form_completes(client, people, stored_photo) -> None:
    order = _in_service(client, people)
    res = client.post(f"/api/v1/work_order/{order}/actions/complete",
                      headers=people.headers("tech0"),
                      json={"resolution": "换电容", "customer_absent": True,
                            "photos": [stored_photo()]})
    assert res.status_code == 200, res.get_json()
    assert people.get(order)["status"] == "completed"
    assert people.get(order)["resolution"] == "换电容"


@pytest.mark.parametrize("body", sorted(BODIES))
def test_an_action_without_a_form_takes_an_empty_body(client, people, body) -> None:
    order = people.order()
    res = client.post(f"/api/v1/work_order/{order}/actions/accept",
                      headers=people.headers("tech0"), **BODIES[body])
    assert res.status_code == 200, res.get_json()
    assert people.get(order)["status"] == "accepted"
