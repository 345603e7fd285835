from datetime import UTC, date, datetime, timedelta

import pytest

from dispatchflow.dsl import ast
from dispatchflow.dsl.diagnostics import DiagnosticBag
from dispatchflow.dsl.parser import parse_expression
from dispatchflow.dsl.source import Origin
from dispatchflow.dsl.wording import a, duration_text, plural, show_value


@pytest.mark.parametrize("value, written", [
    (timedelta(minutes=15), "15m"), (timedelta(hours=2), "2h"), (timedelta(days=1), "1d"),
    (timedelta(weeks=2), "2w"), (timedelta(seconds=90), "90s"), (timedelta(0), "0s"),
    (timedelta(minutes=90), "90m"), (timedelta(minutes=-30), "-30m"),
])
def test_duration_text_round_trips_through_the_parser(value: timedelta, written: str) -> None:
    assert duration_text(value) == written
    if value >= timedelta(0):
        node = parse_expression(written, Origin("t"), DiagnosticBag())
        assert isinstance(node, ast.Literal) and node.value == value


def test_articles_and_plurals() -> None:
    assert a("integer") == "an integer"
    assert a("duration") == "a duration"
    assert a("enum (P1, P2)") == "an enum (P1, P2)"
    assert plural(1, "cell") == "1 cell"
    assert plural(3, "cell") == "3 cells"
    assert plural(0, "input") == "0 inputs"


@pytest.mark.parametrize("value, shown", [
    (None, "null"), (True, "true"), (False, "false"), (timedelta(hours=4), "4h"),
    (2.0, "2"), (2.5, "2.5"), (7, "7"), ("漏水", '"漏水"'), (["a", 1], '["a", 1]'),
    ({"respond": timedelta(hours=2)}, "{respond: 2h}"),
    (date(2026, 10, 1), "2026-10-01"),
    (datetime(2026, 3, 2, 2, 0, tzinfo=UTC), "2026-03-02T02:00:00+00:00"),
])
def test_values_are_shown_in_dsl_notation(value: object, shown: str) -> None:
    assert show_value(value) == shown
