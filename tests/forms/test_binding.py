"""Which forms create records and which act on an existing one (forms/binding.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from dispatchflow.dsl.compiler import App
from dispatchflow.forms.binding import (
    action_label,
    bound_forms,
    create_forms,
    form_offered,
    form_use,
)

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_a_flow_actions_form_and_an_acts_on_existing_form_are_bound(app: App) -> None:
    completion = form_use(app, "completion_report")
    assert completion is not None and completion.bound
    assert (completion.action, completion.flow) == ("complete", "work_order")
    feedback = form_use(app, "customer_feedback")
    assert feedback is not None and feedback.bound and feedback.action is None
    assert create_forms(app) == ["callcentre_intake", "repair_request"]
    assert {u.form for u in bound_forms(app, "work_order")} == {"completion_report",
                                                                "customer_feedback"}
    assert form_use(app, "nope") is None


def test_available_if_decides_when_a_bound_form_is_offered(app: App) -> None:
    assert form_offered(app, "customer_feedback", {"status": "feedback", "rating": None}, NOW)
    assert not form_offered(app, "customer_feedback", {"status": "feedback", "rating": 4}, NOW)
    assert not form_offered(app, "customer_feedback", {"status": "in_service"}, NOW)
    # No available_if: offered whenever the flow offers its action.
    assert form_offered(app, "completion_report", {}, NOW)


def test_action_labels_come_from_the_flow(app: App) -> None:
    assert action_label(app, "work_order", "cancel") == {"zh": "取消工单", "en": "Cancel"}
    assert action_label(app, "work_order", "nope") is None
