"""Completion and hover in process: names resolve as the checker resolves them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.lsp import assist

REFERENCE_BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "field-service"

POLICY = """\
dispatch policy p for work_order from technician
  require technician.
"""


@pytest.fixture(scope="module")
def app() -> App:
    draft = compile_bundle(REFERENCE_BUNDLE).draft
    assert draft is not None
    return draft


def labels(found: list[assist.Suggestion]) -> list[str]:
    return [s.label for s in found]


def test_a_policy_offers_the_fields_of_its_second_entity(app: App) -> None:
    lines = POLICY.splitlines()
    found = assist.complete(app, lines, 1, len(lines[1]), rules_file=True)
    assert {"on_duty", "skills", "level", "location"} <= set(labels(found))
    on_duty = next(s for s in found if s.label == "on_duty")
    assert (on_duty.kind, on_duty.detail) == ("field", "bool")


def test_a_partial_field_name_narrows_the_fields(app: App) -> None:
    lines = ["ruleset r on work_order.created", "rule \"x\" when work_order.customer.ti"]
    assert labels(assist.complete(app, lines, 1, len(lines[1]), True)) == ["tier"]


def test_a_ruleset_sees_its_entity_and_the_tables_over_it_not_other_entities(app: App) -> None:
    lines = ["ruleset r on work_order.created", "rule \"x\" when "]
    names = [s.label for s in assist.complete(app, lines, 1, len(lines[1]), True)
             if s.kind == "name"]
    assert "work_order" in names and "sla_targets" in names and "technician" not in names


def test_yaml_expressions_see_every_entity_and_user(app: App) -> None:
    lines = ["    guard: user.", ""]
    assert "roles" in labels(assist.complete(app, lines, 0, len(lines[0]), False))
    names = [s.label for s in assist.complete(app, ["x: "], 0, 3, False) if s.kind == "name"]
    assert {"work_order", "technician", "customer", "user"} <= set(names)


def test_nothing_is_offered_after_a_path_that_does_not_resolve(app: App) -> None:
    lines = ["ruleset r on work_order.created", "  when work_order.nope."]
    assert assist.complete(app, lines, 1, len(lines[1]), True) == []


def test_hover_on_a_reference_field_names_the_entity(app: App) -> None:
    lines = ["ruleset r on work_order.created", "  when work_order.customer?.tier"]
    text = assist.hover(app, lines, 1, lines[1].index("customer") + 2, True)
    assert text is not None and text.startswith("`work_order.customer`: customer")


def test_hover_has_nothing_to_say_about_unknown_words(app: App) -> None:
    lines = ["ruleset r on work_order.created", "  when banana(work_order.nope)"]
    assert assist.hover(app, lines, 1, 8, True) is None
    assert assist.hover(app, lines, 1, lines[1].index("nope") + 1, True) is None
    assert assist.hover(app, lines, 5, 0, True) is None


def test_keywords_come_from_the_grammar() -> None:
    assert {"ruleset", "rule", "when", "then", "require", "score", "offer", "salience"} <= \
        set(assist.keywords())


def test_a_string_compared_to_an_enum_field_offers_its_values(app: App) -> None:
    lines = ["ruleset r on work_order.created", 'rule "x" when work_order.priority == "']
    found = assist.complete(app, lines, 1, len(lines[1]), True)
    assert labels(found) == ["P1", "P2", "P3", "P4"]
    assert {s.kind for s in found} == {"value"}
    lines[1] = "  when work_order.customer.tier != 'g"
    assert labels(assist.complete(app, lines, 1, len(lines[1]), True)) == ["gold"]
    lines[1] = '  when work_order.title == "'  # a string, not an enum: nothing to offer
    assert assist.complete(app, lines, 1, len(lines[1]), True) == []
