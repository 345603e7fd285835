"""Tests for dispatchflow.rules.bundle_tests: case verdicts, failure reasons, coverage."""

from __future__ import annotations

import textwrap

import pytest

from dispatchflow.rules.bundle_tests import DEFAULT_NOW, CaseResult, run_bundle_tests

RULES = """\
ruleset triage on work_order.created
rule "漏水优先" salience 10
  when contains_any(work_order.description, ["漏水", "leak"])
  then set work_order.priority = "P1"
       tag work_order "urgent"
       notify supervisor_alert
       request dispatch using nearest
rule "大单升级"
  when work_order.parts_count > 5 and work_order.priority == "P1"
  then set work_order.escalated = true
       emit work_order.escalated
rule "夜间工单"
  when hour_of(now()) >= 20
  then tag work_order "夜间"
rule "从不触发"
  when work_order.parts_count < 0
  then tag work_order "负数"

dispatch policy nearest for work_order from technician
  require technician.on_shift as "在岗"
  require technician.level >= 2
  score 10 - technician.open_orders as "负载"
  score coalesce(technician.rating, 0) as "评分"
"""

SLA = """\
table: sla
entity: work_order
hit: unique
inputs:
  - expr: work_order.priority
outputs:
  - {name: respond_within, type: duration}
  - {name: team, type: string}
rows:
  - [P1, 30m, '"一线"']
  - [P2, 2h, '"一线"']
  - [P3, 8h, '"二线"']
"""


@pytest.fixture
def run_cases(compile_ok, support_files):
    """``run_cases(cases_yaml)`` -> (report, {case name: CaseResult})."""
    def run(cases: str):
        app = compile_ok({**support_files, "rules/triage.rules": RULES, "rules/sla.yaml": SLA,
                          "tests/cases.yaml": "cases:\n" + textwrap.indent(
                              textwrap.dedent(cases), "  ")})
        report = run_bundle_tests(app)
        return report, {c.name: c for c in report.cases}
    return run


def test_passing_cases(run_cases) -> None:
    report, cases = run_cases("""\
        - name: 漏水变P1
          event: work_order.created
          given:
            work_order: {title: 厨房漏水, description: 厨房水管漏水, parts_count: 9}
          expect:
            set: {priority: P1, work_order.escalated: true}
            tags: [urgent]
            fired: [漏水优先, 大单升级]
            not_fired: [从不触发, 夜间工单]
            emits: [work_order.escalated]
            notifies: [supervisor_alert]
            dispatch: nearest
        - name: P2 两小时
          table: sla
          given: {work_order: {title: 报修, priority: P2}}
          expect: {output: {respond_within: 2h, team: 一线}}
        - name: 李师傅合格
          policy: nearest
          given:
            work_order: {title: 报修}
            technician: {name: 李师傅, on_shift: true, level: 3, open_orders: 2, rating: 4.5}
          expect: {eligible: true, score: 12.5}
        - name: 王师傅不在岗
          policy: nearest
          given:
            work_order: {title: 报修}
            technician: {name: 王师傅, on_shift: false, level: 3}
          expect: {eligible: false, excluded_by: 在岗}
        - name: 夜间
          ruleset: triage
          now: 2026-03-02T21:30:00+08:00
          given: {work_order: {title: 报修}}
          expect: {tags: [夜间]}
        """)
    assert report.passed, [(c.name, c.problems) for c in report.cases]
    assert [c.name for c in report.cases] == ["漏水变P1", "P2 两小时", "李师傅合格", "王师傅不在岗",
                                              "夜间"]
    assert cases["漏水变P1"] == CaseResult("漏水变P1", "tests/cases.yaml", 2, True, [])
    assert cases["P2 两小时"].line == 14


def test_cases_without_now_run_at_a_fixed_instant(run_cases) -> None:
    assert DEFAULT_NOW == "2026-01-05T10:00:00"
    _, cases = run_cases("""\
        - name: 白天
          event: work_order.created
          given: {work_order: {title: 报修}}
          expect: {not_fired: [夜间工单]}
        """)
    assert cases["白天"].passed


def test_failing_rule_case_names_every_reason(run_cases) -> None:
    report, cases = run_cases("""\
        - name: 期望落空
          event: work_order.created
          given:
            work_order: {title: 厨房漏水, description: 厨房水管漏水, parts_count: 1}
          expect:
            set: {priority: P2, escalated: true, colour: red}
            tags: [加急]
            fired: [大单升级, 不存在的规则]
            not_fired: [漏水优先]
            emits: [work_order.escalated]
            notifies: [other_alert]
            dispatch: farthest
        """)
    assert not report.passed
    case = cases["期望落空"]
    assert not case.passed
    because = ('; "大单升级" failed on `work_order.parts_count > 5`; "夜间工单" failed on '
               '`hour_of(now()) >= 20`; "从不触发" failed on `work_order.parts_count < 0`')
    assert case.problems == [
        "expected work_order.priority = 'P2', got 'P1'",
        "expected work_order.escalated = True, but no rule set it" + because,
        "expect.set names unknown field 'colour'",
        "expected tag '加急'; got ['urgent']" + because,
        "expected rule \"大单升级\" to fire; its condition `work_order.parts_count > 5` was false",
        "expected rule \"不存在的规则\" to fire (no such rule ran)",
        "expected rule \"漏水优先\" not to fire, but it did",
        "expected emit work_order.escalated; got none",
        "expected notify other_alert; got ['supervisor_alert']",
        "expected request dispatch using farthest; got ['nearest']",
    ]


def test_failing_table_cases(run_cases) -> None:
    _, cases = run_cases("""\
        - name: 错误时限
          table: sla
          given: {work_order: {title: 报修, priority: P2}}
          expect: {output: {respond_within: 1h}}
        - name: 输出不对
          table: sla
          given: {work_order: {title: 报修, priority: P1}}
          expect: {output: {team: 二线}}
        - name: 期望报错
          table: sla
          given: {work_order: {title: 报修, priority: P1}}
          expect: {error: true}
        """)
    assert cases["错误时限"].problems == [
        "expected {'respond_within': '1h'}, got {'respond_within': "
        "datetime.timedelta(seconds=7200)} (row [2])"]
    assert cases["输出不对"].problems == [
        "expected {'team': '二线'}, got {'team': '一线'} (row [1])"]
    assert cases["期望报错"].problems == ["expected evaluation to fail, but it succeeded"]


def test_failing_policy_cases(run_cases) -> None:
    _, cases = run_cases("""\
        - name: 不在岗却期望合格
          policy: nearest
          given:
            work_order: {title: 报修}
            technician: {name: 王师傅, on_shift: false, level: 3, open_orders: 2}
          expect: {eligible: true, score: 8}
        - name: 分数不对
          policy: nearest
          given:
            work_order: {title: 报修}
            technician: {name: 李师傅, on_shift: true, level: 1, open_orders: 2}
          expect: {excluded_by: 在岗}
        - name: 分数
          policy: nearest
          given:
            work_order: {title: 报修}
            technician: {name: 赵师傅, on_shift: true, level: 2, open_orders: 4}
          expect: {score: 7}
        """)
    assert cases["不在岗却期望合格"].problems == [
        'expected eligible = True, got False (excluded by "在岗")',
        "expected score 8, got None (负载: 8, 评分: 0)"]
    assert cases["分数不对"].problems == [
        'expected excluded by "在岗", got \'technician.level >= 2\'']
    assert cases["分数"].problems == ["expected score 7, got 6 (负载: 6, 评分: 0)"]


def test_bad_test_data_and_evaluation_failures(run_cases) -> None:
    _, cases = run_cases("""\
        - name: 未知字段
          event: work_order.created
          given: {work_order: {title: 报修, colour: red}}
          expect: {tags: [urgent]}
        - name: 坏时间
          event: work_order.created
          given: {work_order: {title: 报修, scheduled_at: 明天}}
          expect: {tags: [urgent]}
        - name: 缺少标题
          ruleset: triage
          given: {work_order: {description: 漏水}}
          expect: {tags: [urgent]}
        """)
    assert cases["未知字段"].problems == ["bad test data: work_order has no field 'colour'"]
    # The field's name is lost here: coerce_record only adds it to ValueErrors.
    assert cases["坏时间"].problems == [
        "bad test data: work_order.scheduled_at: not an ISO date-time: '明天' "
        "(hint: write e.g. 2026-03-02T10:00:00+08:00)"]
    # A record without a required field is still evaluated (title is not read here).
    assert cases["缺少标题"].passed


def test_coverage_lists_unreached_rules_and_rows(run_cases) -> None:
    report, _ = run_cases("""\
        - name: 漏水
          event: work_order.created
          given: {work_order: {title: 厨房漏水, description: leak}}
          expect: {tags: [urgent]}
        - name: P3
          table: sla
          given: {work_order: {title: 报修, priority: P3}}
          expect: {output: {team: 二线}}
        """)
    assert report.passed
    assert (report.total_rules, report.total_rows) == (4, 3)
    assert report.unreached_rules == [
        ("triage", "大单升级", "rules/triage.rules", 8),
        ("triage", "夜间工单", "rules/triage.rules", 12),
        ("triage", "从不触发", "rules/triage.rules", 15),
    ]
    assert report.unreached_rows == [("sla", 1, "rules/sla.yaml", 10),
                                     ("sla", 2, "rules/sla.yaml", 11)]


def test_a_failing_case_still_counts_towards_coverage(run_cases) -> None:
    report, cases = run_cases("""\
        - name: 错的期望
          event: work_order.created
          given: {work_order: {title: 厨房漏水, description: leak, parts_count: 8}}
          expect: {tags: [别的]}
        """)
    assert not cases["错的期望"].passed
    assert [r[1] for r in report.unreached_rules] == ["夜间工单", "从不触发"]


def test_collect_and_aggregate_table_cases(compile_ok) -> None:
    fees = """\
table: {name}
entity: work_order
hit: collect
{aggregate}inputs:
  - expr: work_order.parts_count
outputs:
  - {{name: fee, type: number}}
rows:
  - ['> 0', 50]
  - ['> 5', 100]
"""
    app = compile_ok({
        "rules/fees.yaml": fees.format(name="fees", aggregate=""),
        "rules/fee_total.yaml": fees.format(name="fee_total", aggregate="aggregate: sum\n"),
        "tests/fees.yaml": """\
            cases:
              - name: 列出
                table: fees
                given: {work_order: {title: 报修, parts_count: 6}}
                expect: {outputs: [{fee: 50}, {fee: 100}]}
              - name: 合计
                table: fee_total
                given: {work_order: {title: 报修, parts_count: 6}}
                expect: {output: {fee: 150}}
              - name: 合计错
                table: fee_total
                given: {work_order: {title: 报修, parts_count: 1}}
                expect: {output: {fee: 150}}
              - name: 列出错
                table: fees
                given: {work_order: {title: 报修, parts_count: 1}}
                expect: {outputs: []}
            """})
    report = run_bundle_tests(app)
    assert [(c.name, c.problems) for c in report.cases] == [
        ("列出", []),
        ("合计", []),
        ("合计错", ["expected 150, got 50"]),
        ("列出错", ["expected [], got [{'fee': 50}]"]),
    ]
    assert report.unreached_rows == []
