"""Tests for dispatchflow.cli.bundle: init, check (text and JSON), test and eval, with exit codes."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# ------------------------------------------------------------------ init, check, test


def test_init_then_check_then_test(cli, tmp_path: Path) -> None:
    target = tmp_path / "我的服务"
    result = cli("init", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"created {target}; next: dispatchflow check {target} && "
                             f"dispatchflow test {target}\n")
    assert (target / "app.yaml").is_file()
    assert (target / "rules" / "triage.rules").is_file()

    result = cli("check", target)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: my-service 0.1: 1 entities, 1 rulesets, 0 tables, "
                                    "0 dispatch policies, 0 flows, 0 forms (")
    assert result.stderr == ""

    result = cli("test", target)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "PASS a leak becomes P1  (tests/triage.yaml:2)"
    assert lines[1] == "PASS an ordinary order keeps its priority  (tests/triage.yaml:9)"
    assert "coverage: rules 1/1, table rows 0/0" in lines
    assert lines[-1] == "2 passed, 0 failed"


def test_init_refuses_a_non_empty_folder(cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("已有文件", encoding="utf-8")
    result = cli("init", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path}: exists and is not empty; choose a new folder\n"
    assert not (tmp_path / "app.yaml").exists()


def test_check_json_of_a_clean_bundle(cli, make_bundle) -> None:
    result = cli("check", make_bundle(), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"diagnostics": [], "errors": 0, "warnings": 0}


def test_missing_folder_is_a_usage_error(cli, tmp_path: Path) -> None:
    for command in ("check", "test"):
        result = cli(command, tmp_path / "nope")
        assert result.exit_code == 2
        assert result.stderr == f"{tmp_path / 'nope'}: not a folder\n"


def test_test_command_reports_failures(cli, make_bundle) -> None:
    root = make_bundle({
        "rules/triage.rules": """\
            ruleset triage on work_order.created
            rule "漏水优先" when contains_any(work_order.description, ["漏水"])
              then set work_order.priority = "P1"
            rule "没人测" when work_order.parts_count > 100 then tag work_order "大单"
            """,
        "tests/triage.yaml": """\
            cases:
              - name: 漏水应为P2
                event: work_order.created
                given: {work_order: {title: 厨房漏水, description: 厨房漏水}}
                expect: {set: {priority: P2}}
            """})
    result = cli("test", root)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "FAIL 漏水应为P2  (tests/triage.yaml:2)",
        "     expected work_order.priority = 'P2', got 'P1'",
        "",
        "coverage: rules 1/2, table rows 0/0",
        '  not reached: rule "没人测" in ruleset triage (rules/triage.rules:4)',
        "0 passed, 1 failed",
    ]


# ------------------------------------------------------------------ check: three mistakes


THREE_MISTAKES = {
    # 1. an unknown field in a .rules file
    "rules/triage.rules": """\
        ruleset triage on work_order.created
        rule "VIP 客户"
          when work_order.customer.tire == "vip"
          then tag work_order "vip"
        """,
    # 2. an enum typo in a decision-table cell
    "rules/sla.yaml": """\
        table: sla
        entity: work_order
        hit: first
        inputs:
          - expr: work_order.priority
        outputs:
          - {name: respond_within, type: duration}
        rows:
          - [p1, 30m]
          - ['-', 4h]
        """,
    # 3. a syntax error in another .rules file
    "rules/dispatch.rules": """\
        dispatch policy nearest for work_order from technician
          require technician.on_shift = true
          score 10 - technician.open_orders
        """,
}

EXPECTED = [
    ("E2001", "rules/dispatch.rules", 2, 31, "unexpected '=', expected an operator, 'as', "
     "'dispatch', 'offer', 'require', 'ruleset', 'score' or 2 more",
     "use '==' to compare; '=' only appears in 'set field = value'"),
    ("E3011", "rules/sla.yaml", 9, 6, "'p1' is not a value of work_order.priority (P1, P2, P3)",
     "did you mean 'P1'?"),
    ("E3001", "rules/triage.rules", 3, 28, "unknown field 'tire' on customer",
     "did you mean 'tier'?"),
]


def test_check_reports_every_mistake_with_position_caret_and_hint(cli, make_bundle) -> None:
    result = cli("check", make_bundle(THREE_MISTAKES))
    assert result.exit_code == 1
    assert result.stdout == ""
    text = result.stderr
    assert text.endswith("3 error(s), 0 warning(s)\n")
    blocks = text.split("\n\n")
    assert len(blocks) == 4
    for block, (code, file, line, column, message, hint) in zip(blocks, EXPECTED, strict=False):
        headline, source, caret, hint_line = block.splitlines()
        assert headline == f"{file}:{line}:{column}: {code}: {message}"
        assert source.startswith(f"{line:>5} | ")
        assert caret.index("^") == len(f"{line:>5} | ") + column - 1
        assert hint_line == f"  hint: {hint}"
    assert blocks[2].splitlines()[1:3] == [
        '    3 |   when work_order.customer.tire == "vip"',
        "      | " + " " * 27 + "^~~~",
    ]


def test_check_json_reports_the_same_mistakes(cli, make_bundle) -> None:
    root = make_bundle(THREE_MISTAKES)
    text_result = cli("check", root)
    result = cli("check", root, "--format", "json")
    assert result.exit_code == 1
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert (data["errors"], data["warnings"]) == (3, 0)
    found = [(d["code"], d["file"], d["line"], d["column"], d["message"], d["hint"])
             for d in data["diagnostics"]]
    assert found == EXPECTED
    assert all(d["severity"] == "error" and d["source_line"] for d in data["diagnostics"])
    # The text form says the same things in the same order.
    for code, file, line, column, *_ in found:
        assert f"{file}:{line}:{column}: {code}:" in text_result.stderr



def test_check_sarif_reports_the_same_mistakes_as_code_scanning_results(cli, make_bundle) -> None:
    root = make_bundle(THREE_MISTAKES)
    result = cli("check", root, "--format", "sarif")
    assert result.exit_code == 1  # exit codes do not depend on the format
    assert result.stderr == ""
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "dispatchflow"
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["originalUriBaseIds"]["BUNDLE"]["uri"] == root.resolve().as_uri() + "/"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({code for code, *_ in EXPECTED})
    assert all(r["shortDescription"]["text"] for r in rules)
    found = []
    for res in run["results"]:
        assert set(res) == {"ruleId", "ruleIndex", "level", "message", "locations"}
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"] and res["level"] == "error"
        [loc] = res["locations"]
        artifact, region = loc["physicalLocation"]["artifactLocation"], \
            loc["physicalLocation"]["region"]
        assert artifact["uriBaseId"] == "BUNDLE"
        assert region["endLine"] == region["startLine"]
        assert region["endColumn"] > region["startColumn"]
        found.append((res["ruleId"], artifact["uri"], region["startLine"],
                      region["startColumn"], res["message"]["text"]))
    assert found == [(code, file, line, column, f"{message} (hint: {hint})")
                     for code, file, line, column, message, hint in EXPECTED]
    tire = next(r for r in run["results"] if "tire" in r["message"]["text"])
    assert tire["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3, "startColumn": 28, "endLine": 3, "endColumn": 32}


def test_check_sarif_of_a_clean_bundle_has_no_results(cli, make_bundle) -> None:
    result = cli("check", make_bundle(), "--format", "sarif")
    assert result.exit_code == 0
    [run] = json.loads(result.stdout)["runs"]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []

def test_warnings_alone_do_not_fail_check(cli, make_bundle) -> None:
    root = make_bundle({"rules/triage.rules": """\
        ruleset triage on work_order.created
        rule "保修" when work_order.under_warranty then tag work_order "保修"
        """})
    result = cli("check", root)
    assert result.exit_code == 0
    assert "W4001" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("ok: field-service 1.0: 3 entities, ")


# ------------------------------------------------------------------ eval


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    path = tmp_path / "record.yaml"
    path.write_text("work_order:\n  title: 厨房漏水\n  parts_count: 3\n  budget: 120.5\n"
                    "  scheduled_at: '2026-03-02T14:00:00+08:00'\n"
                    "  customer: {name: 张三, tier: vip}\n"
                    "technician:\n  name: 李师傅\n  skills: [空调, 水工]\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("expression, printed", [
    ("work_order.parts_count * 2", "6  : number"),
    ("work_order.budget / 2", "60.25  : number (nullable)"),
    ('work_order.customer?.tier == "vip"', "true  : bool"),
    ('"水工" in technician.skills', "true  : bool"),
    ("work_order.title + '（加急）'", '"厨房漏水（加急）"  : string'),
    ("hours_between(now(), work_order.scheduled_at)", "4.0  : number (nullable)"),
    ("work_order.scheduled_at - now()", '"4:00:00"  : duration (nullable)'),
    ("work_order.required_level", "null  : number (nullable)"),
])
def test_eval_prints_the_value_and_its_type(cli, make_bundle, record_file, expression,
                                            printed) -> None:
    result = cli("eval", make_bundle(), expression, "--record", record_file,
                 "--now", "2026-03-02T10:00:00+08:00")
    assert result.exit_code == 0, result.output
    assert result.stdout == printed + "\n"


def test_eval_without_a_record_uses_defaults(cli, make_bundle) -> None:
    result = cli("eval", make_bundle(), "technician.open_orders + technician.level")
    assert result.exit_code == 0
    assert result.stdout == "1  : number\n"


def test_eval_reports_an_expression_error(cli, make_bundle) -> None:
    result = cli("eval", make_bundle(), "work_order.priorty == 'P1'")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:4] == [
        "<expression>:1:12: E3001: unknown field 'priorty' on work_order",
        "    1 | work_order.priorty == 'P1'",
        "      |            ^~~~~~~",
        "  hint: did you mean 'priority'?",
    ]


def test_eval_reports_a_bad_record_file(cli, make_bundle, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: {name: x}\n", encoding="utf-8")
    result = cli("eval", make_bundle(), "1", "--record", bad)
    assert result.exit_code == 2
    assert result.stderr == (f"{bad}: expected a mapping of entity name to record; entities: "
                             "customer, technician, work_order\n")


def test_eval_reports_bad_record_values(cli, make_bundle, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("work_order: {colour: red}\n", encoding="utf-8")
    result = cli("eval", make_bundle(), "1", "--record", bad)
    assert result.exit_code == 1
    assert result.stderr == "error: work_order has no field 'colour'\n"


def test_eval_on_a_broken_bundle_reports_the_bundle(cli, make_bundle) -> None:
    result = cli("eval", make_bundle(THREE_MISTAKES), "1")
    assert result.exit_code == 1
    assert "3 error(s), 0 warning(s)" in result.stderr


@pytest.fixture
def machine_clock_in_utc():
    """Run with the process's local time zone set to UTC (restored afterwards)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_eval_now_defaults_to_the_current_instant(cli, make_bundle,
                                                  machine_clock_in_utc) -> None:
    result = cli("eval", make_bundle(), "now()")
    assert result.exit_code == 0
    shown = datetime.fromisoformat(json.loads(result.stdout.split("  : ")[0]))
    assert abs(shown - datetime.now(UTC)) < timedelta(minutes=2)


# ------------------------------------------------------------------ check --env


def test_check_env_reports_channels_lacking_configuration(
        cli, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = Path(__file__).resolve().parents[2] / "examples" / "field-service"
    configured = {"WECHAT_WEBHOOK_SECRET": "a", "EMAIL_CHANNEL_SECRET": "b",
                  "DISPATCHFLOW_SMTP_HOST": "smtp.example.com",
                  "DISPATCHFLOW_WEBHOOK_SECRET": "c",
                  "DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE": "http://127.0.0.1:9/hook"}
    for key, value in configured.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DISPATCHFLOW_WEBHOOK_ALLOW", raising=False)
    monkeypatch.delenv("WECHAT_WEBHOOK_SECRET")
    assert cli("check", reference).exit_code == 0  # without --env, the environment is not read
    result = cli("check", reference, "--env")
    assert result.exit_code == 1
    blocks = result.stderr.split("\n\n")
    assert blocks[0].splitlines() == [
        "channels/wechat.yaml:12:1: E9001: intake channel 'wechat': WECHAT_WEBHOOK_SECRET is "
        "not set: it refuses every message (503)",
        "   12 | secret_env: WECHAT_WEBHOOK_SECRET",
        "      | ^",
        "  hint: export WECHAT_WEBHOOK_SECRET=<the secret shared with the sender>"]
    assert blocks[1].splitlines()[0] == (
        "notifications/customer_status_update.yaml:6:1: E9001: notification "
        "'customer_status_update' (webhook): webhook destination refused: 127.0.0.1 resolves "
        "to 127.0.0.1 (loopback)")
    assert result.stderr.endswith("2 error(s), 0 warning(s)\n")
    monkeypatch.setenv("WECHAT_WEBHOOK_SECRET", "a")
    monkeypatch.setenv("DISPATCHFLOW_WEBHOOK_ALLOW", "127.0.0.1")
    assert cli("check", reference, "--env").exit_code == 0
