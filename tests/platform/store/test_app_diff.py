"""Tests for dispatchflow.platform.store.app_diff: semantic differences between two compiled apps.

Variants of the reference bundle are made by editing its sources in memory and
compiling them with ``compile_sources``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatchflow.dsl.compiler import App, compile_bundle, compile_sources
from dispatchflow.dsl.diagnostics import render_text
from dispatchflow.platform.store.app_diff import Change, diff_apps, render_changes

BUNDLE = Path(__file__).resolve().parents[3] / "examples" / "field-service"


@pytest.fixture(scope="module")
def base() -> App:
    result = compile_bundle(BUNDLE)
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


def variant(base: App, *edits: tuple[str, str, str]) -> App:
    """``base`` with each (file, old, new) text replacement applied once."""
    files = dict(base.sources)
    for path, old, new in edits:
        assert old in files[path], (path, old)
        files[path] = files[path].replace(old, new, 1)
    result = compile_sources(files)
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


def test_the_same_app_has_no_changes(base: App) -> None:
    assert diff_apps(base, base) == []
    assert render_changes([]) == ["no changes"]


def test_whitespace_and_comments_give_no_change(base: App) -> None:
    files = {}
    for path, text in base.sources.items():
        text = "# reviewed 2026-03 / 已复核\n" + text.replace("\n\n", "\n\n\n")
        files[path] = text
    files["rules/triage.rules"] = files["rules/triage.rules"].replace(
        'when work_order.customer.tier == "VIP"\n',
        'when   work_order.customer.tier=="VIP"   # VIP first\n')
    files["rules/dispatch.rules"] = files["rules/dispatch.rules"].replace(
        "require technician.on_duty == true", "require  (technician.on_duty == true)")
    files["flows/work_order.yaml"] = files["flows/work_order.yaml"].replace(
        "guard: work_order.assignee is not null", "guard: 'work_order.assignee   is not null'")
    other = compile_sources(files).app
    assert other is not None and other.digest != base.digest
    assert diff_apps(base, other) == []


def test_typical_changes_render_grouped_by_item_kind(base: App) -> None:
    wo, triage = "entities/work_order.yaml", "rules/triage.rules"
    other = variant(
        base,
        ("app.yaml", 'version: "1.0"', 'version: "1.1"'),
        (wo, "  feedback:\n    type: text", "  feedback:\n    type: string"),
        (wo, "      - {value: P4, label: {zh: P4 低, en: P4 Low}}\n",
         "      - {value: P4, label: {zh: P4 低, en: P4 Low}}\n"
         "      - {value: P5, label: {zh: P5 最低, en: P5 Lowest}}\n"),
        (wo, "  address:\n    type: string\n", "  address:\n    type: string\n    required: true\n"),
        (wo, "  asset_code:", "  cost_travel:\n    type: decimal\n  asset_code:"),
        (triage, 'salience 80\n  when work_order.customer.tier == "VIP"',
         'salience 88\n  when work_order.customer.tier == "VIP" and work_order.urgent'),
        ("rules/sla_targets.yaml", "  - [P1, gold,                   20m,",
         "  - [P1, gold,                   25m,"),
        ("rules/dispatch.rules", "retry 3 then", "retry 4 then"),
        ("roles.yaml", "allow: [read, create, update, assign, redispatch, cancel, "
                       "confirm_completion]",
         "allow: [read, create, update, assign, cancel, confirm_completion, close]"),
        ("flows/work_order.yaml", "      - action: close\n        roles: [area_supervisor]",
         "      - action: close\n        roles: [area_supervisor, dispatcher]"),
        ("forms/repair_request.yaml", "      - field: contact_phone\n        widget: text\n", ""),
    )
    assert render_changes(diff_apps(base, other)) == [
        "app:",
        "  ~ app: version 1.0 -> 1.1",
        "fields:",
        "  + field work_order.cost_travel: decimal",
        "  ~ field work_order.priority: enum values added: P5",
        "  ~ field work_order.address: required false -> true",
        "  ~ field work_order.feedback: type text -> string",
        "rules:",
        '  ~ rule triage/"VIP customers go to senior technicians": salience 80 -> 88',
        '  ~ rule triage/"VIP customers go to senior technicians": condition changed',
        "decision tables:",
        "  ~ table sla_targets: row 2 changed",
        "dispatch policies:",
        "  ~ policy nearby_skilled: retries 3 -> 4",
        "flows:",
        "  ~ flow work_order: transition exception -> closed (action close) changed: roles",
        "forms:",
        "  ~ form repair_request: field contact_phone removed",
        "roles:",
        "  ~ role dispatcher: work_order: allow added: close",
        "  ~ role dispatcher: work_order: allow removed: redispatch",
    ]


def test_entities_and_fields_added_removed_and_retargeted(base: App) -> None:
    site = "entity: site\nlabel: {zh: 站点, en: Site}\nfields:\n  code: {type: string}\n"
    wo = "entities/work_order.yaml"
    files = {**base.sources, "entities/site.yaml": site}
    files[wo] = files[wo].replace("  asset_code:", "  depot:\n    type: reference\n"
                                  "    entity: customer\n  asset_code:", 1)
    files[wo] = files[wo].replace("      - {value: other, label: {zh: 其他, en: Other}}\n", "")
    one = compile_sources(files).app
    files[wo] = files[wo].replace("    entity: customer\n  asset_code:",
                                  "    entity: site\n  asset_code:")
    two = compile_sources(files).app
    assert one is not None and two is not None
    changes = diff_apps(base, one)
    assert Change("added", "entity site", "Site") in changes
    assert Change("added", "field work_order.depot", "reference to customer") in changes
    assert Change("changed", "field work_order.category", "enum values removed: other") \
        in changes
    assert Change("removed", "entity site") in diff_apps(one, base)
    assert Change("removed", "field work_order.depot", "reference") in diff_apps(one, base)
    assert diff_apps(one, two) == [
        Change("changed", "field work_order.depot", "reference customer -> site")]


def test_rules_added_removed_and_ruleset_settings(base: App) -> None:
    text = base.sources["rules/triage.rules"]
    start = text.index('# 30 天内重复报修')
    end = text.index('# 按类别和设备年限')
    other = variant(
        base,
        ("rules/triage.rules", text[start:end], ""),
        ("rules/triage.rules", 'rule "stamp SLA due times" salience 0\n  when true\n',
         'rule "stamp SLA due times" salience 0\n  when true\n  then tag work_order "sla"\n'
         '\nrule "tag weekend orders" salience 0\n  when true\n'),
    )
    changes = diff_apps(base, other)
    assert Change("removed", 'rule triage/"repeat repair within 30 days"') in changes
    assert Change("added", 'rule triage/"tag weekend orders"', "salience 0") in changes
    assert Change("changed", 'rule triage/"stamp SLA due times"', "actions changed") in changes


def test_table_rows_inserted_in_the_middle_are_one_change(base: App) -> None:
    row = '  - {cells: [true, "-", "-", 50], note: "urgent service / 加急服务费"}\n'
    other = variant(base, ("rules/surcharges.yaml", row,
                           row + '  - {cells: [true, "-", 6, 30], note: "urgent Saturday"}\n'))
    changes = [c for c in diff_apps(base, other) if c.item == "table surcharges"]
    assert [c.detail for c in changes] == ["rows 4 -> 5", "row 3 added"]


def test_table_hit_policy_and_inputs(base: App) -> None:
    other = variant(base, ("rules/service_class.yaml", "hit: priority", "hit: first"),
                    ("rules/service_class.yaml",
                     "    priority: [emergency, priority, standard]\n", ""))
    details = [c.detail for c in diff_apps(base, other) if c.item == "table service_class"]
    assert details == ["hit priority -> first", "output class priority order changed"]


def test_policy_clauses_and_offer(base: App) -> None:
    other = variant(
        base,
        ("rules/dispatch.rules", '  require technician.level >= work_order.required_level as '
                                 '"level too low / 等级不足"\n', ""),
        ("rules/dispatch.rules", "  tiebreak technician.open_tasks asc\n",
         "  tiebreak technician.open_tasks asc\n  require technician.rating_30d > 0.5 as "
         '"rating too low"\n'),
        ("rules/dispatch.rules", "offer one at a time", "offer broadcast top 2"),
    )
    details = [c.detail for c in diff_apps(base, other) if c.item == "policy nearby_skilled"]
    assert details == ["require added: rating too low",
                       "require removed: level too low / 等级不足",
                       "offer one_at_a_time -> broadcast", "offer top 1 -> 2"]


def test_flow_states_and_transitions(base: App) -> None:
    flow = "flows/work_order.yaml"
    other = variant(
        base,
        (flow, "  closed:\n    label: {zh: 已关闭, en: Closed}\n",
         "  waiting_customer:\n    label: {zh: 待客户, en: Waiting for the customer}\n    transitions:\n"
         "      - {on: work_order.customer_replied, to: in_service}\n"
         "  closed:\n    label: {zh: 已关闭, en: Closed}\n"),
        (flow, "        label: {zh: 开始服务, en: Start service}\n",
         "        label: {zh: 开始服务, en: Start service}\n"
         "      - action: wait_for_customer\n        roles: [technician]\n"
         "        to: waiting_customer\n"),
        (flow, "    warn_at: 0.8\n", "    warn_at: 0.9\n"),
    )
    details = [c.detail for c in diff_apps(base, other) if c.item == "flow work_order"]
    assert details == [
        "state waiting_customer added",
        "transition on_site -> waiting_customer (action wait_for_customer) added",
        "transition waiting_customer -> in_service (on work_order.customer_replied) added",
        "SLA clock response changed: warn_at",
    ]


def test_roles_added_and_removed(base: App) -> None:
    text = base.sources["roles.yaml"]
    other = variant(base, ("roles.yaml", "\nroles:\n",
                           "\nroles:\n  auditor:\n    label: {zh: 审计, en: Auditor}\n"
                           "    permissions:\n      work_order:\n        allow: [read]\n"))
    assert "auditor" not in text
    assert Change("added", "role auditor") in diff_apps(base, other)
    assert Change("removed", "role auditor") in diff_apps(other, base)


def test_every_change_line_names_its_item(base: App) -> None:
    other = variant(base, ("entities/work_order.yaml", "  asset_code:",
                           "  cost_travel:\n    type: decimal\n  asset_code:"))
    for line in render_changes(diff_apps(base, other)):
        assert re.match(r"^(\w[\w ]*:|  [+~-] \w+ .+)$", line), line
