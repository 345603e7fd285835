"""A dispatch policy failing on a record raises EvaluationError, not NameError.

The generated policy function runs with restricted builtins; its ``except``
clause once named ``TypeError`` & co. directly, which are not visible there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.errors import EvaluationError
from dispatchflow.rules.engine import Engine

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"


def test_a_policy_on_malformed_records_raises_an_evaluation_error() -> None:
    app = compile_bundle(REFERENCE).app
    assert app is not None
    policy = Engine(app).policy("nearby_skilled")
    order = {"category": "aircon", "required_level": 1, "priority": "P3",
             "location": {"lat": 31.2, "lng": 121.5}, "region": "HP"}  # region not a record
    tech = {"on_duty": True, "skills": ["aircon"], "level": 3, "open_tasks": 0,
            "location": {"lat": 31.2, "lng": 121.5}, "region": "XH"}
    with pytest.raises(EvaluationError, match="nearby_skilled"):
        policy.evaluate(order, tech, datetime(2026, 3, 2, tzinfo=UTC))
