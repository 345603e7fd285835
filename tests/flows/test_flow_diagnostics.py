"""Golden texts of the flow graph diagnostics (W8001-E8005) reported by ``check``."""

from __future__ import annotations

import pytest

from dispatchflow.dsl.diagnostics import CODES
from dispatchflow.flows.analysis import flow_diagnostics

HEAD = "flow: repair\nentity: work_order\ninitial: new\nstates:\n"

CASES = {
    "W8001": HEAD + """\
  new:
    transitions:
      - {to: done, on: work_order.closed}
  lost:
    transitions:
      - {to: done, on: work_order.closed}
  done: {final: true}
""",
    "E8002": HEAD + """\
  new:
    transitions:
      - {to: stuck, on: work_order.assigned}
      - {to: done, on: work_order.closed}
  stuck: {}
  done: {final: true}
""",
    "W8003": HEAD + """\
  new:
    transitions:
      - {to: done, on: work_order.closed}
  done:
    final: true
    transitions:
      - {to: new, on: work_order.reopened}
""",
    "W8004": HEAD + """\
  new:
    transitions:
      - {to: both, on: work_order.assigned}
  both:
    regions:
      repair:
        initial: working
        states:
          working:
            transitions:
              - {to: fixed, on: work_order.repaired}
          fixed: {final: true}
      parts:
        initial: waiting
        states:
          waiting:
            transitions:
              - {to: waiting, on: work_order.parts_checked}
    join: done
  done: {final: true}
""",
}


def rendered(compile_ok, flow_yaml: str) -> list[str]:
    app = compile_ok({"flows/repair.yaml": flow_yaml})
    return [d.render() for d in flow_diagnostics(app)]


GOLDEN = {
    "W8001": [
        "flows/repair.yaml:8:3: W8001: state 'lost' can never be reached from 'new'",
        "    8 |   lost:",
        "      |   ^~~~",
        "  hint: add a transition to it, or remove it",
    ],
    "E8002": [
        "flows/repair.yaml:9:3: E8002: state 'stuck' is not final but nothing leads out of it",
        "    9 |   stuck: {}",
        "      |   ^~~~~",
        "  hint: add a transition or a timer with 'to', or mark it final: true",
    ],
    "W8003": [
        "flows/repair.yaml:10:5: W8003: final state 'done' has transitions; they are never "
        "taken",
        "   10 |     transitions:",
        "      |     ^~~~~~~~~~~",
        "  hint: remove them, or drop final: true if the flow goes on from here",
    ],
    "W8004": [
        "flows/repair.yaml:17:7: W8004: region parts of 'both' has no final state, so the join "
        "to 'done' never happens",
        "   17 |       parts:",
        "      |       ^~~~~",
        "  hint: mark the region's last state final: true",
    ],
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_flow_diagnostic(code: str, compile_ok) -> None:
    assert rendered(compile_ok, CASES[code]) == ["\n".join(GOLDEN[code])]


def test_a_flow_that_cannot_compile_is_e8005(compile_ok) -> None:
    # A region whose initial state lies outside it passes the name checks.
    out = rendered(compile_ok, HEAD + """\
  new:
    transitions:
      - {to: both, on: work_order.assigned}
  both:
    regions:
      one:
        initial: done
        states:
          inner: {final: true}
    join: done
  done: {final: true}
""")
    assert len(out) == 1 and out[0].startswith(
        "flows/repair.yaml: E8005: flow repair cannot be compiled: "), out


def test_duplicate_state_names_are_reported_by_the_compiler(compile_files) -> None:
    result = compile_files({"flows/repair.yaml": HEAD + """\
  new:
    transitions:
      - {to: both, on: work_order.assigned}
  both:
    regions:
      one:
        initial: new
        states:
          new: {final: true}
    join: done
  done: {final: true}
"""})
    (d,) = [d for d in result.diagnostics if d.is_error]
    assert (d.code, d.file, d.line, d.column) == ("E1020", "flows/repair.yaml", 13, 11)


def test_the_reference_flow_is_clean(compile_ok) -> None:
    from dispatchflow.dsl.compiler import compile_bundle

    app = compile_bundle("examples/field-service").app
    assert app is not None and flow_diagnostics(app) == []


def test_flow_codes_are_registered() -> None:
    assert {"W8001", "E8002", "W8003", "W8004", "E8005"} <= set(CODES)


def test_an_invalid_calendar_is_e8006_at_its_position(compile_ok) -> None:
    from dispatchflow.flows.calendar import calendar_diagnostics

    app = compile_ok({"app.yaml": """\
app: test
version: "1"
timezone: Asia/Shanghai
calendars:
  standard:
    working_hours:
      mon: ["09:00-12:00", "11:00-18:00"]
"""})
    assert [d.render() for d in calendar_diagnostics(app)] == ["\n".join([
        "app.yaml:7:12: E8006: calendar standard: time ranges overlap or are out of order",
        '    7 |       mon: ["09:00-12:00", "11:00-18:00"]',
        "      |            ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: list each day's ranges in order without overlaps, e.g. "
        '["09:00-12:00", "13:00-18:00"]',
    ])]


def test_check_reports_calendar_problems(tmp_path, make_bundle) -> None:
    from click.testing import CliRunner

    from dispatchflow.cli import main

    root = make_bundle({"app.yaml": """\
app: test
version: "1"
timezone: Asia/Shanghai
calendars:
  standard:
    working_hours:
      mon: ["18:00-09:00"]
"""})
    result = CliRunner().invoke(main, ["check", str(root)])
    assert result.exit_code == 1 and "E8006" in result.output
