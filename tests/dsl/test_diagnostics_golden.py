"""Golden tests: the exact text and position of every diagnostic the compiler emits.

Each case is a tiny bundle (the base bundle of tests/conftest.py plus a file or
two) that triggers one diagnostic and nothing else. The rendered form, with
``path:line:col: CODE: message``, the source line, the caret and the hint, is
pinned verbatim: a change to any user-facing message must show up here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.dsl.diagnostics import (
    CODES,
    Diagnostic,
    DiagnosticBag,
    Severity,
    render_json,
    render_text,
)
from dispatchflow.dsl.source import SourceFile, Span

R = "rules/triage.rules"
T = "rules/sla.yaml"
SITE = "entities/site.yaml"
def test_libyaml_is_available() -> None:
    # The E1001 goldens are libyaml's messages (PyYAML's wheels ship it).
    assert hasattr(yaml, "CSafeLoader"), "pip install --force-reinstall PyYAML (with libyaml)"


def ruleset(*rules: str) -> str:
    return "ruleset triage on work_order.created\n" + "".join(r + "\n" for r in rules)


def policy(*clauses: str) -> str:
    return "dispatch policy nearest for work_order from technician\n" + "".join(
        "  " + c + "\n" for c in clauses)


def site(*field_lines: str, head: str = "entity: site\nlabel: 站点\n") -> str:
    return head + "fields:\n" + "".join("  " + f + "\n" for f in field_lines)


def table(hit: str, inputs: list[str], rows: list[str], outputs: str =
          "{name: respond_within, type: duration}", extra: str = "") -> str:
    return ("table: sla\nentity: work_order\nhit: " + hit + "\n" + extra + "inputs:\n"
            + "".join(f"  - expr: {i}\n" for i in inputs)
            + "outputs:\n  - " + outputs + "\nrows:\n" + "".join(f"  - {r}\n" for r in rows))


FLOW = "flows/repair.yaml"
NOTIFY = "notifications/supervisor_alert.yaml"


def escalations(*lines: str) -> dict[str, str | None]:
    """A flow with an SLA clock and the given ``escalations:`` lines, and a notification."""
    return {NOTIFY: "notification: supervisor_alert\nentity: work_order\nchannels: [inbox]\n"
                    "to:\n  - role: supervisor\nbody: 已升级\n", FLOW: (
        "flow: repair\nentity: work_order\ninitial: new\nstates:\n"
        "  new:\n    transitions:\n      - {to: offered, on: work_order.offered}\n"
        "  offered:\n    transitions:\n      - {to: done, on: work_order.closed}\n"
        "  done: {final: true}\n"
        "sla_clocks:\n  resolution:\n    start_on: work_order.created\n"
        "    stop_on: [work_order.closed]\n    target: 4h\n"
        "escalations:\n" + "".join("  " + line + "\n" for line in lines))}


@dataclass(frozen=True)
class Golden:
    """One diagnostic: the bundle files that trigger it and its rendered text."""

    id: str  # the code, plus a suffix for variants of one code
    files: dict[str, str | None]
    rendered: tuple[str, ...]
    raw: dict[str, bytes] = field(default_factory=dict)
    marks: tuple[Any, ...] = ()

    @property
    def code(self) -> str:
        return self.id[:5]


CASES = [
    # ---------------------------------------------------------------- E1xxx bundle / YAML
    # YAML syntax messages are libyaml's (the loader composes with CSafeLoader).
    Golden("E1001", {SITE: site("name: {type: string")}, (
        "entities/site.yaml:4:22: E1001: YAML syntax error: did not find expected ',' or '}'",
        "    4 |   name: {type: string",
        "      |                      ^",
    )),
    Golden("E1001-colon", {SITE: site("open: {type: string}", "hours: 09:00-12:00 lunch: 13:00")}, (
        "entities/site.yaml:5:27: E1001: YAML syntax error: mapping values are not allowed in "
        "this context",
        "    5 |   hours: 09:00-12:00 lunch: 13:00",
        "      |                           ^",
        "  hint: a ':' inside a plain value needs quotes, e.g. \"09:00-18:00\"",
    )),
    Golden("E1001-tab", {SITE: "entity: site\nlabel: 站点\nfields:\n\tname: {type: string}\n"}, (
        "entities/site.yaml:4:1: E1001: YAML syntax error: found character that cannot start "
        "any token",
        "    4 | \tname: {type: string}",
        "      | ^",
        "  hint: YAML does not allow tabs for indentation; use spaces",
    )),
    Golden("E1002", {SITE: site("name: {type: string}", "name: {type: text}")}, (
        "entities/site.yaml:5:3: E1002: duplicate key 'name'",
        "    5 |   name: {type: text}",
        "      |   ^~~~",
        "  hint: YAML keeps only the last one; remove or rename the duplicate",
    )),
    Golden("E1003", {}, (
        "entities/site.yaml: E1003: file is not valid UTF-8 (invalid start byte at byte 22)",
        "  hint: save the file as UTF-8",
    ), raw={SITE: "entity: site\nlabel: 站点\n".encode("gbk")}),
    Golden("E1010", {SITE: site("code: {type: integer, max_length: 8}")}, (
        "entities/site.yaml:4:25: E1010: 'max_length' does not apply to an integer field",
        "    4 |   code: {type: integer, max_length: 8}",
        "      |                         ^~~~~~~~~~",
        "  hint: 'max_length' is for string / text fields",
    )),
    Golden("E1011", {SITE: "entity: site\nlabel: 站点\nfeilds:\n  name: {type: string}\n"}, (
        "entities/site.yaml:3:1: E1011: unknown key 'feilds' in the entity file",
        "    3 | feilds:",
        "      | ^~~~~~",
        "  hint: did you mean 'fields'?",
    )),
    Golden("E1012", {SITE: site("name: {type: string, required: yes}")}, (
        "entities/site.yaml:4:34: E1012: 'required' must be a boolean (true or false), not a "
        "string",
        "    4 |   name: {type: string, required: yes}",
        "      |                                  ^~~",
        "  hint: write true or false ('yes' is text in bundle YAML)",
    )),
    Golden("E1013", {SITE: "entity: site\nfields:\n  name: {type: string}\n"}, (
        "entities/site.yaml:1:1: E1013: missing required key 'label'",
        "    1 | entity: site",
        "      | ^~~~~~~~~~~~",
        "  hint: add 'label:' — name shown to users",
    )),
    Golden("E1013-priority", {T: table("priority", ["work_order.priority"], ["[P1, '\"一线\"']"],
                                       outputs="{name: team, type: string}")}, (
        "rules/sla.yaml:7:3: E1013: hit policy priority needs a 'priority' list on an output",
        "    7 |   - {name: team, type: string}",
        "      |   ^",
        "  hint: list the output values, highest priority first",
    )),
    Golden("E1014", {SITE: site("name: {type: strng}")}, (
        "entities/site.yaml:4:16: E1014: 'strng' is not one of: string, text, integer, decimal, "
        "boolean, date, datetime, duration, enum, geo, list, reference, attachment",
        "    4 |   name: {type: strng}",
        "      |                ^~~~~",
        "  hint: did you mean 'string'?",
    )),
    Golden("E1014-hit", {R: 'ruleset triage on work_order.created\n  hit any\n'
                            'rule "a" when true then tag work_order "a"\n'}, (
        "rules/triage.rules:2:7: E1014: unknown hit policy 'any' for a rule set",
        "    2 |   hit any",
        "      |       ^~~",
        "  hint: rule sets use 'hit all' (every matching rule fires) or 'hit first'",
    )),
    Golden("E1014-broadcast", {R: policy("offer broadcast top 0, accept within 15m")}, (
        "rules/triage.rules:2:3: E1014: broadcast needs top 1 or more",
        "    2 |   offer broadcast top 0, accept within 15m",
        "      |   ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
    )),
    Golden("E1015", escalations("stuck:", "  while_in: [offered]", "  levels:",
                                "    - {after: 30m, notify: supervisor_alert}",
                                "    - {after: 15m, notify: supervisor_alert}"), (
        "flows/repair.yaml:22:17: E1015: level 2 of escalation 'stuck' (after: 15m) fires "
        "before level 1 (after: 30m)",
        "   22 |       - {after: 15m, notify: supervisor_alert}",
        "      |                 ^~~",
        "  hint: list the levels in the order they fire: 'before' levels first (longest "
        "first), then 'after' levels (shortest first)",
    )),
    Golden("E1015-before", escalations("late:", "  clock: resolution", "  levels:",
                                       "    - {before: 1h, notify: supervisor_alert}",
                                       "    - {before: 1h, emit: late}"), (
        "flows/repair.yaml:22:18: E1015: level 2 of escalation 'late' (before: 1h) fires "
        "at the same time as level 1 (before: 1h)",
        "   22 |       - {before: 1h, emit: late}",
        "      |                  ^~",
        "  hint: list the levels in the order they fire: 'before' levels first (longest "
        "first), then 'after' levels (shortest first)",
    )),
    Golden("E1010-escalation-duration", escalations(
            "stuck:", "  while_in: [offered]", "  levels:",
            "    - {after: 15 min, notify: supervisor_alert}"), (
        "flows/repair.yaml:21:17: E1010: '15 min' is not a valid duration",
        "   21 |       - {after: 15 min, notify: supervisor_alert}",
        "      |                 ^~~~~~",
        "  hint: A duration: a number and a unit s, m, h, d or w (e.g. 15m, 2h, 1.5d).",
    )),
    Golden("E1010-escalation-before", escalations(
            "stuck:", "  while_in: [offered]", "  levels:",
            "    - {before: 15m, notify: supervisor_alert}"), (
        "flows/repair.yaml:21:10: E1010: 'before' is not allowed in level 1 of escalation "
        "'stuck'",
        "   21 |       - {before: 15m, notify: supervisor_alert}",
        "      |          ^~~~~~",
        "  hint: 'before' counts back from an SLA clock's deadline: give the ladder a "
        "'clock', or use 'after'",
    )),
    Golden("E1010-escalation-anchor", escalations(
            "stuck:", "  while_in: [offered]", "  clock: resolution", "  levels:",
            "    - {after: 15m, notify: supervisor_alert}"), (
        "flows/repair.yaml:20:5: E1010: only one of the keys 'while_in' or 'clock' may be "
        "given in escalation 'stuck', found 'while_in' and 'clock'",
        "   20 |     clock: resolution",
        "      |     ^~~~~",
        "  hint: a ladder runs either 'while_in' stalled states or against an SLA 'clock'",
    )),
    Golden("E1013-escalation-level", escalations(
            "stuck:", "  while_in: [offered]", "  levels:", "    - {after: 15m}"), (
        "flows/repair.yaml:21:9: E1013: missing one of the keys 'notify' or 'emit' in "
        "level 1 of escalation 'stuck'",
        "   21 |       - {after: 15m}",
        "      |         ^~~~~~~~~~~~",
        "  hint: a level sends a notification ('notify'), emits an event ('emit'), or both",
    )),
    Golden("E1021-escalation-state", escalations(
            "stuck:", "  while_in: [ofered]", "  levels:",
            "    - {after: 15m, notify: supervisor_alert}"), (
        "flows/repair.yaml:19:16: E1021: unknown state 'ofered'",
        "   19 |     while_in: [ofered]",
        "      |                ^~~~~~",
        "  hint: did you mean 'offered'?",
    )),
    Golden("E1021-escalation-clock", escalations(
            "late:", "  clock: resolutoin", "  levels:",
            "    - {before: 1h, notify: supervisor_alert}"), (
        "flows/repair.yaml:19:12: E1021: unknown SLA clock 'resolutoin'",
        "   19 |     clock: resolutoin",
        "      |            ^~~~~~~~~~",
        "  hint: did you mean 'resolution'?",
    )),
    Golden("E1021-escalation-notification", escalations(
            "stuck:", "  while_in: [offered]", "  levels:",
            "    - {after: 15m, notify: supervisor_alrt}"), (
        "flows/repair.yaml:21:30: E1021: unknown notification 'supervisor_alrt'",
        "   21 |       - {after: 15m, notify: supervisor_alrt}",
        "      |                              ^~~~~~~~~~~~~~~",
        "  hint: did you mean 'supervisor_alert'?",
    )),
    Golden("E1020", {R: ruleset('rule "漏水" when true then tag work_order "a"',
                                'rule "漏水" when true then tag work_order "b"')}, (
        'rules/triage.rules:3:6: E1020: rule "漏水" appears twice in ruleset triage',
        '    3 | rule "漏水" when true then tag work_order "b"',
        "      |      ^~~~",
        "  hint: give every rule of a rule set its own name",
    )),
    Golden("E1020-system-field", {SITE: site("tags: {type: list}")}, (
        "entities/site.yaml:4:3: E1020: 'tags' is a system field every record already has",
        "    4 |   tags: {type: list}",
        "      |   ^~~~",
        "  hint: choose another name",
    )),
    Golden("E1020-policy", {R: policy("require technician.on_shift")
                            + policy("require true")}, (
        "rules/triage.rules:3:1: E1020: dispatch policy 'nearest' is already defined in rules/triage.rules",
        "    3 | dispatch policy nearest for work_order from technician",
        "      | ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: rename one of them; names are unique across the bundle's .rules files",
    )),
    Golden("E1020-ruleset", {"rules/intake.rules": ruleset('rule "a" when true then tag '
                                                           'work_order "a"'),
                             R: ruleset('rule "b" when true then tag work_order "b"')}, (
        "rules/triage.rules:1:1: E1020: ruleset 'triage' is already defined in rules/intake.rules",
        "    1 | ruleset triage on work_order.created",
        "      | ^",
        "  hint: rename one of them; names are unique across the bundle's .rules files",
    )),
    Golden("E1021", {SITE: site("owner: {type: reference, entity: custmer}")}, (
        "entities/site.yaml:4:36: E1021: field 'owner' refers to unknown entity 'custmer'",
        "    4 |   owner: {type: reference, entity: custmer}",
        "      |                                    ^~~~~~~",
        "  hint: did you mean 'customer'?",
    )),
    Golden("E1021-role", {R: policy('offer one at a time, accept within 15m, retry 2 then '
                                    'escalate to role "supervsior"')}, (
        "rules/triage.rules:2:73: E1021: unknown role 'supervsior'",
        '    2 |   offer one at a time, accept within 15m, retry 2 then escalate to role '
        '"supervsior"',
        "      |                                                                         "
        "^~~~~~~~~~~~",
        "  hint: did you mean 'supervisor'?",
    )),
    Golden("E1021-entity", {R: 'ruleset triage on work_ordr.created\n'
                               'rule "a" when true then tag work_ordr "a"\n'}, (
        "rules/triage.rules:1:19: E1021: unknown entity 'work_ordr'",
        "    1 | ruleset triage on work_ordr.created",
        "      |                   ^~~~~~~~~",
        "  hint: did you mean 'work_order'?",
    )),
    Golden("E1022", {"app.yaml": None}, (
        "app.yaml: E1022: missing app.yaml",
        "  hint: every bundle starts with app.yaml (run 'dispatchflow init DIR' for one)",
    )),
    Golden("E1023", {SITE: site("score: {type: integer}")}, (
        "entities/site.yaml:4:3: E1023: 'score' is a reserved word and cannot name a field",
        "    4 |   score: {type: integer}",
        "      |   ^~~~~",
        "  hint: rename it, e.g. 'score_value'",
    )),
    Golden("E1023-entity", {SITE: site("name: {type: string}",
                                       head="entity: rule\nlabel: 规则\n")}, (
        "entities/site.yaml:1:9: E1023: 'rule' is a reserved word and cannot name an entity",
        "    1 | entity: rule",
        "      |         ^~~~",
        "  hint: rename it, e.g. 'rule_record'",
    )),
    # ---------------------------------------------------------------- E2xxx syntax
    Golden("E2001", {R: ruleset('rule "P1" when work_order.priority = "P1" then tag '
                                'work_order "urgent"')}, (
        "rules/triage.rules:2:36: E2001: unexpected '=', expected an operator or 'then'",
        '    2 | rule "P1" when work_order.priority = "P1" then tag work_order "urgent"',
        "      |                                    ^",
        "  hint: use '==' to compare; '=' only appears in 'set field = value'",
    )),
    Golden("E2001-no-ruleset", {R: 'rule "P1" when true then tag work_order "urgent"\n'}, (
        "rules/triage.rules:1:1: E2001: unexpected 'rule', expected 'dispatch', 'ruleset' or "
        "end of input",
        '    1 | rule "P1" when true then tag work_order "urgent"',
        "      | ^~~~",
        "  hint: a rule belongs to a ruleset: start one with 'ruleset NAME on entity.event'",
    )),
    Golden("E2001-missing-then", {R: ruleset('rule "P1" when work_order.priority == "P1" tag '
                                             'work_order "urgent"')}, (
        "rules/triage.rules:2:44: E2001: unexpected 'tag', expected 'then'",
        '    2 | rule "P1" when work_order.priority == "P1" tag work_order "urgent"',
        "      |                                            ^~~",
        '  hint: a rule reads: rule "name" when <condition> then <actions>',
    )),
    Golden("E2001-two-values", {R: ruleset('rule "P1" when work_order.parts_count > 3 5 then '
                                           'tag work_order "urgent"')}, (
        "rules/triage.rules:2:43: E2001: unexpected number '5', expected an operator or 'then'",
        '    2 | rule "P1" when work_order.parts_count > 3 5 then tag work_order "urgent"',
        "      |                                           ^",
        '  hint: a rule reads: rule "name" when <condition> then <actions>',
    )),
    Golden("E2001-keyword", {R: ruleset('rule "P1" when then tag work_order "urgent"')}, (
        "rules/triage.rules:2:16: E2001: unexpected 'then', expected an expression",
        '    2 | rule "P1" when then tag work_order "urgent"',
        "      |                ^~~~",
        "  hint: 'then' is a keyword; an expression is missing before it",
    )),
    Golden("E2001-long-expected", {R: ruleset('rule "a" when true then tag work_order "a"',
                                              "salience 5")}, (
        "rules/triage.rules:3:1: E2001: unexpected 'salience', expected 'dispatch', 'emit', 'notify', 'request', 'rule', 'ruleset', 'set' or 4 more",
        "    3 | salience 5",
        "      | ^~~~~~~~",
        "  hint: salience comes right after the rule's name: rule \"name\" salience 10 when ...",
    )),
    Golden("E2002", {R: ruleset('rule "P1" when work_order.priority == "P1" && true then tag '
                                'work_order "urgent"')}, (
        "rules/triage.rules:2:44: E2002: unexpected character '&'",
        '    2 | rule "P1" when work_order.priority == "P1" && true then tag work_order '
        '"urgent"',
        "      |                                            ^",
        "  hint: use 'and' to combine conditions",
    )),
    Golden("E2002-full-width", {R: ruleset('rule "P1" when work_order.priority == “P1” then '
                                           'tag work_order "urgent"')}, (
        "rules/triage.rules:2:39: E2002: unexpected character '“'",
        '    2 | rule "P1" when work_order.priority == “P1” then tag work_order "urgent"',
        "      |                                       ^",
        "  hint: full-width '“' is not allowed here; use '\"'",
    )),
    Golden("E2002-chinese-name", {R: ruleset('rule "P1" when 工单.priority == "P1" then tag '
                                             'work_order "urgent"')}, (
        "rules/triage.rules:2:16: E2002: unexpected character '工'",
        '    2 | rule "P1" when 工单.priority == "P1" then tag work_order "urgent"',
        "      |                ^",
        "  hint: names are ASCII (letters, digits, _); put other text in quotes",
    )),
    Golden("E2002-open-string", {R: ruleset('rule "P1" when work_order.title == "漏水',
                                            '  then tag work_order "urgent"')}, (
        "rules/triage.rules:2:36: E2002: unexpected character '\"'",
        '    2 | rule "P1" when work_order.title == "漏水',
        "      |                                    ^",
        "  hint: the string is not closed: end it with \" on the same line",
    )),
    Golden("E2003", {R: ruleset('rule "P1" when work_order.priority == ')}, (
        "rules/triage.rules:2:38: E2003: unexpected end of input, expected an expression",
        "    2 | rule \"P1\" when work_order.priority == ",
        "      |                                      ^",
        "  hint: the text stops in the middle; finish it",
    )),
    # ---------------------------------------------------------------- E3xxx names and types
    Golden("E3001", {R: ruleset('rule "VIP" when work_order.customer.tire == "vip" then tag '
                                'work_order "vip"')}, (
        "rules/triage.rules:2:37: E3001: unknown field 'tire' on customer",
        '    2 | rule "VIP" when work_order.customer.tire == "vip" then tag work_order "vip"',
        "      |                                     ^~~~",
        "  hint: did you mean 'tier'?",
    )),
    Golden("E3001-title-field", {SITE: site("name: {type: string}",
                                            head="entity: site\nlabel: 站点\ntitle_field: nmae\n")}, (
        "entities/site.yaml:3:14: E3001: title_field 'nmae' is not a field of site",
        "    3 | title_field: nmae",
        "      |              ^~~~",
        "  hint: did you mean 'name'?",
    )),
    Golden("E3002", {R: ruleset('rule "P1" when priority == "P1" then tag work_order "urgent"')}, (
        "rules/triage.rules:2:16: E3002: unknown name 'priority'",
        '    2 | rule "P1" when priority == "P1" then tag work_order "urgent"',
        "      |                ^~~~~~~~",
        "  hint: fields are reached through their record: write work_order.priority",
    )),
    Golden("E3002-tag", {R: ruleset('rule "a" when true then tag technician "a"')}, (
        "rules/triage.rules:2:25: E3002: unknown record 'technician'",
        '    2 | rule "a" when true then tag technician "a"',
        "      |                         ^~~~~~~~~~~~~~~~~~",
        '  hint: write: tag work_order "a"',
    )),
    Golden("E3003", {R: ruleset('rule "漏水" when contains_ani(work_order.title, ["漏水"]) then '
                                'tag work_order "leak"')}, (
        "rules/triage.rules:2:16: E3003: unknown function 'contains_ani'",
        '    2 | rule "漏水" when contains_ani(work_order.title, ["漏水"]) then tag work_order '
        '"leak"',
        "      |                ^~~~~~~~~~~~",
        "  hint: did you mean 'contains_any' or 'contains_all'?",
    )),
    Golden("E3004", {R: ruleset('rule "漏水" when contains_any(work_order.title) then tag '
                                'work_order "leak"')}, (
        "rules/triage.rules:2:16: E3004: contains_any() takes 2 arguments, got 1",
        "    2 | rule \"漏水\" when contains_any(work_order.title) then tag work_order \"leak\"",
        "      |                ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: signature: contains_any(text: string | list, words: list) -> bool",
    )),
    Golden("E3005", {R: ruleset('rule "short" when len(work_order.parts_count) > 3 then tag '
                                'work_order "parts"')}, (
        "rules/triage.rules:2:19: E3005: len() argument 1 must be string or list, got number",
        '    2 | rule "short" when len(work_order.parts_count) > 3 then tag work_order "parts"',
        "      |                   ^~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: signature: len(x: string | list) -> number",
    )),
    Golden("E3010", {R: ruleset('rule "t" when work_order.title < 3 then tag work_order "x"')}, (
        "rules/triage.rules:2:15: E3010: cannot compare string with number using '<'",
        '    2 | rule "t" when work_order.title < 3 then tag work_order "x"',
        "      |               ^~~~~~~~~~~~~~~~~~~~",
    )),
    Golden("E3010-aggregate", {T: table("collect", ["work_order.priority"],
                                        ["[P1, '\"一线\"']"], outputs="{name: team, type: string}",
                                        extra="aggregate: sum\n")}, (
        "rules/sla.yaml:8:24: E3010: cannot sum string outputs",
        "    8 |   - {name: team, type: string}",
        "      |                        ^~~~~~",
    )),
    Golden("E3011", {R: ruleset('rule "P1" when work_order.priority == "p1" then tag '
                                'work_order "urgent"')}, (
        "rules/triage.rules:2:39: E3011: 'p1' is not a value of work_order.priority (P1, P2, P3)",
        '    2 | rule "P1" when work_order.priority == "p1" then tag work_order "urgent"',
        "      |                                       ^~~~",
        "  hint: did you mean 'P1'?",
    )),
    Golden("E3011-cell", {T: table("first", ["work_order.priority"], ["[P0, 30m]", "['-', 4h]"])}, (
        "rules/sla.yaml:9:6: E3011: 'P0' is not a value of work_order.priority (P1, P2, P3)",
        "    9 |   - [P0, 30m]",
        "      |      ^~",
        "  hint: allowed: 'P1', 'P2' or 'P3'",
    )),
    Golden("E3012", {R: ruleset('rule "long" when work_order.estimated_duration > 90 then tag '
                                'work_order "long"')}, (
        "rules/triage.rules:2:18: E3012: cannot compare duration with number",
        '    2 | rule "long" when work_order.estimated_duration > 90 then tag work_order "long"',
        "      |                  ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: write the number with a unit: 30m, 2h, 1d",
    )),
    Golden("E3012-accept-window", {R: policy("offer grab pool, accept within 15")}, (
        "rules/triage.rules:2:34: E3012: the accept window must be a duration, got a number",
        "    2 |   offer grab pool, accept within 15",
        "      |                                  ^~",
        "  hint: write the number with a unit: 30m, 2h, 1d",
    )),
    Golden("E3012-score", {R: policy("score distance_km(work_order.location, "
                                     "technician.location)")}, (
        "rules/triage.rules:2:9: E3012: a score must be a number, got distance (nullable)",
        "    2 |   score distance_km(work_order.location, technician.location)",
        "      |         ^" + "~" * 52,
        "  hint: divide by a unit to get a number, e.g. distance / 5km",
    )),
    Golden("E3012-cell", {T: table("first", ["work_order.estimated_duration"],
                                   ["['< 90', 30m]", "['-', 4h]"])}, (
        "rules/sla.yaml:9:9: E3012: cell value is number but input "
        "'work_order.estimated_duration' is duration",
        "    9 |   - ['< 90', 30m]",
        "      |         ^~",
        "  hint: write the number with its unit, e.g. 30m or 5km",
    )),
    Golden("E3013", {R: ruleset('rule "t" when work_order.title then tag work_order "x"')}, (
        "rules/triage.rules:2:15: E3013: a rule's 'when' condition must be a boolean, got string",
        '    2 | rule "t" when work_order.title then tag work_order "x"',
        "      |               ^~~~~~~~~~~~~~~~",
        '  hint: compare it, e.g. x == "value" or x > 0',
    )),
    Golden("E3014", {R: ruleset('rule "no budget" when work_order.budget == null then tag '
                                'work_order "待报价"')}, (
        "rules/triage.rules:2:23: E3014: comparison '==' with null is always false",
        '    2 | rule "no budget" when work_order.budget == null then tag work_order "待报价"',
        "      |                       ^~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: use 'is null' or 'is not null' to test for a missing value",
    )),
    Golden("E3015", {R: ruleset('rule "phone" when work_order.title matches "[0-9" then tag '
                                'work_order "phone"')}, (
        "rules/triage.rules:2:44: E3015: invalid regular expression: unterminated character "
        "set at position 0",
        '    2 | rule "phone" when work_order.title matches "[0-9" then tag work_order "phone"',
        "      |                                            ^~~~~~",
    )),
    Golden("E3015-pattern", {SITE: site("code: {type: string, pattern: '[A-Z'}")}, (
        "entities/site.yaml:4:33: E3015: invalid regular expression: unterminated character "
        "set at position 0",
        "    4 |   code: {type: string, pattern: '[A-Z'}",
        "      |                                 ^~~~~~",
    )),
    Golden("E3018", {R: ruleset('rule "repeat" when work_order.title matches "(..)\\\\1" '
                                'then tag work_order "repeat"')}, (
        "rules/triage.rules:2:45: E3018: 'matches' cannot run this pattern: invalid escape "
        "sequence: \\1 (character 5 of the pattern)",
        '    2 | rule "repeat" when work_order.title matches "(..)\\\\1" then tag work_order '
        '"repeat"',
        "      |                                             ^~~~~~~~~",
        "  hint: 'matches' runs in linear time (RE2 syntax): no backreferences (\\1), no "
        "lookaround ((?=...), (?!...), (?<=...), (?<!...)), repeat counts up to 1000; test the "
        'parts separately, e.g. x matches "a" and not (x matches "b")',
    )),
    Golden("E3018-lookahead", {R: ruleset('rule "not vip" when work_order.title matches '
                                          '"^(?!VIP)" then tag work_order "plain"')}, (
        "rules/triage.rules:2:46: E3018: 'matches' cannot run this pattern: invalid perl "
        "operator: (?! (character 2 of the pattern)",
        '    2 | rule "not vip" when work_order.title matches "^(?!VIP)" then tag work_order '
        '"plain"',
        "      |                                              ^~~~~~~~~~",
        "  hint: 'matches' runs in linear time (RE2 syntax): no backreferences (\\1), no "
        "lookaround ((?=...), (?!...), (?<=...), (?<!...)), repeat counts up to 1000; test the "
        'parts separately, e.g. x matches "a" and not (x matches "b")',
    )),
    Golden("E3018-pattern", {SITE: site("code: {type: string, pattern: '(?=A)[A-Z]+'}")}, (
        "entities/site.yaml:4:33: E3018: field patterns run on RE2 and cannot use this one: "
        "invalid perl operator: (?= (character 1 of the pattern)",
        "    4 |   code: {type: string, pattern: '(?=A)[A-Z]+'}",
        "      |                                 ^~~~~~~~~~~~~",
        "  hint: field patterns run in linear time (RE2 syntax): no backreferences (\\1), no "
        "lookaround ((?=...), (?!...), (?<=...), (?<!...)), repeat counts up to 1000; keep the "
        "pattern to what every value must match and check the rest in a rule",
    )),
    Golden("E3016", {R: ruleset('rule "p" when true then set work_order.budget = if '
                                'work_order.escalated then 100 else "免费"')}, (
        "rules/triage.rules:2:49: E3016: 'then' gives number but 'else' gives string",
        '    2 | rule "p" when true then set work_order.budget = if work_order.escalated then '
        '100 else "免费"',
        "      |                                                 "
        "^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: both branches must give the same kind of value",
    )),
    Golden("E3017", {R: ruleset('rule "p" when work_order.parts_count in [1, "两个"] then tag '
                                'work_order "x"')}, (
        "rules/triage.rules:2:45: E3017: list mixes number and string",
        '    2 | rule "p" when work_order.parts_count in [1, "两个"] then tag work_order "x"',
        "      |                                             ^~~~",
    )),
    Golden("E3020", {R: ruleset('rule "p" when true then set work_order.customer.tier = '
                                '"vip"')}, (
        "rules/triage.rules:2:29: E3020: set a field of the record itself, not of a related "
        "record",
        '    2 | rule "p" when true then set work_order.customer.tier = "vip"',
        "      |                             ^~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: rules change the record that triggered them",
    )),
    Golden("E3020-other-record", {R: ruleset('rule "a" when true then set technician.level = '
                                             '3')}, (
        "rules/triage.rules:2:29: E3020: a rule on work_order can only set work_order's fields",
        '    2 | rule "a" when true then set technician.level = 3',
        "      |                             ^~~~~~~~~~",
        "  hint: write: set work_order.<field> = ...",
    )),
    Golden("E3020-system-field", {R: ruleset('rule "a" when true then set work_order.tags = '
                                             '["a"]')}, (
        "rules/triage.rules:2:40: E3020: 'tags' is a system field and cannot be set",
        '    2 | rule "a" when true then set work_order.tags = ["a"]',
        "      |                                        ^~~~",
        "  hint: use 'tag'/'untag' for tags",
    )),
    Golden("E3020-emit", {R: ruleset('rule "a" when true then emit technician.busy')}, (
        "rules/triage.rules:2:25: E3020: a rule on work_order emits work_order events",
        '    2 | rule "a" when true then emit technician.busy',
        "      |                         ^~~~~~~~~~~~~~~~~~~~",
        "  hint: write: emit work_order.busy",
    )),
    Golden("E3020-policy", {R: "dispatch policy self for work_order from work_order\n"
                               "  require true\n"}, (
        "rules/triage.rules:1:1: E3020: a policy dispatches one entity to another (e.g. "
        "work_order from technician)",
        "    1 | dispatch policy self for work_order from work_order",
        "      | ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
    )),
    Golden("E3021", {R: ruleset('rule "p" when true then set work_order.budget = "一百"')}, (
        "rules/triage.rules:2:49: E3021: work_order.budget must be a number, got a string",
        "    2 | rule \"p\" when true then set work_order.budget = \"一百\"",
        "      |                                                 ^~~~",
    )),
    Golden("E3021-score", {R: policy("score technician.name")}, (
        "rules/triage.rules:2:9: E3021: a score must be a number, got string",
        "    2 |   score technician.name",
        "      |         ^~~~~~~~~~~~~~~",
    )),
    Golden("E3021-default", {SITE: site("level: {type: enum, values: [a, b], default: c}")}, (
        "entities/site.yaml:4:48: E3021: default of 'level': 'c' is not one of a, b",
        "    4 |   level: {type: enum, values: [a, b], default: c}",
        "      |                                                ^",
    )),
    Golden("E3030", {R: ruleset('rule "p" when true then notify supervisor_alert')}, (
        "rules/triage.rules:2:25: E3030: unknown notification 'supervisor_alert'",
        '    2 | rule "p" when true then notify supervisor_alert',
        "      |                         ^~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: no notification is defined",
    )),
    Golden("E3030-policy", {R: ruleset('rule "a" when true then request dispatch using nearst')
                            + policy("require technician.on_shift")}, (
        "rules/triage.rules:2:25: E3030: unknown dispatch policy 'nearst'",
        '    2 | rule "a" when true then request dispatch using nearst',
        "      |                         ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: did you mean 'nearest'?",
    )),
    Golden("E3030-policy-entity", {
        SITE: site("name: {type: string}"),
        R: ruleset('rule "a" when true then request dispatch using nearest')
        + "dispatch policy nearest for site from technician\n  require technician.on_shift\n"}, (
        "rules/triage.rules:2:25: E3030: dispatch policy nearest dispatches site, not work_order",
        '    2 | rule "a" when true then request dispatch using nearest',
        "      |                         ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
    )),
    # ---------------------------------------------------------------- W4xxx
    Golden("W4001", {R: ruleset('rule "warranty" when work_order.under_warranty then tag '
                                'work_order "保修"')}, (
        "rules/triage.rules:2:22: W4001: a rule's 'when' condition may be null; null counts as "
        "false",
        '    2 | rule "warranty" when work_order.under_warranty then tag work_order "保修"',
        "      |                      ^~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: make it explicit: compare with '== true' or use coalesce(..., false)",
    )),
    Golden("W4001-score", {R: policy("score technician.rating")}, (
        "rules/triage.rules:2:9: W4001: score term may be null; a null term counts as 0",
        "    2 |   score technician.rating",
        "      |         ^~~~~~~~~~~~~~~~~",
        "  hint: make it explicit with coalesce(value, 0)",
    )),
    Golden("W4001-set", {R: ruleset('rule "a" when true then set work_order.parts_count = '
                                    'work_order.required_level')}, (
        "rules/triage.rules:2:54: W4001: work_order.parts_count may be null",
        '    2 | rule "a" when true then set work_order.parts_count = work_order.required_level',
        "      |                                                      ^~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: give a fallback with coalesce(value, default)",
    )),
    # ---------------------------------------------------------------- E5xxx / W5xxx tables
    Golden("E5001", {T: table("unique", ["work_order.parts_count"],
                              ["['<= 5', 30m]", "['>= 5', 4h]"])}, (
        "rules/sla.yaml:10:5: E5001: rows 1 and 2 both match when work_order.parts_count = 5",
        "   10 |   - ['>= 5', 4h]",
        "      |     ^~~~~~~~~~~~",
        "  hint: make the rows exclusive, or use hit policy first / priority / collect",
    )),
    Golden("E5002", {T: table("any", ["work_order.parts_count"],
                              ["['<= 5', 30m]", "['>= 5', 4h]"])}, (
        "rules/sla.yaml:10:5: E5002: rows 1 and 2 both match when work_order.parts_count = 5",
        "   10 |   - ['>= 5', 4h]",
        "      |     ^~~~~~~~~~~~",
        "  hint: make the rows exclusive, or use hit policy first / priority / collect",
    )),
    Golden("W5003", {T: table("unique", ["work_order.parts_count"],
                              ["['< 5', 30m]", "['> 5', 4h]"])}, (
        "rules/sla.yaml:1:8: W5003: no row matches when work_order.parts_count = 5",
        "    1 | table: sla",
        "      |        ^~~",
        "  hint: add a row for these cases, or a last row of '-' cells as the default",
    )),
    Golden("W5004", {T: table("first", ["work_order.priority"], ["['-', 4h]", "[P1, 30m]"])}, (
        "rules/sla.yaml:10:5: W5004: row 2 can never be chosen: earlier rows match every case "
        "it matches",
        "   10 |   - [P1, 30m]",
        "      |     ^~~~~~~~~",
        "  hint: move it above the rows that shadow it, or delete it",
    )),
    Golden("E5005", {T: table("first", ["work_order.priority"], ["[P1, 30m]", "[P2]"])}, (
        "rules/sla.yaml:10:5: E5005: row 2 has 1 cell, expected 2 (1 input then 1 output)",
        "   10 |   - [P2]",
        "      |     ^~~~",
    )),
    Golden("E5006", {T: table("first", ["work_order.escalated"],
                              ["['> true', 30m]", "['-', 4h]"])}, (
        "rules/sla.yaml:9:9: E5006: '>' needs an ordered input; 'work_order.escalated' is bool",
        "    9 |   - ['> true', 30m]",
        "      |         ^~~~",
    )),
    Golden("E5006-syntax", {T: table("first", ["work_order.parts_count"],
                                     ["['[1..5', 30m]", "['-', 4h]"])}, (
        "rules/sla.yaml:9:12: E5006: unexpected end of input, expected ')', '+', '-' or ']'",
        "    9 |   - ['[1..5', 30m]",
        "      |            ^",
        "  hint: the text stops in the middle; finish it",
    )),
    # ---------------------------------------------------------------- E6xxx / W7xxx
    Golden("E6001", {R: ruleset('rule "P1" when work_order.priority == "P1" then tag '
                                'work_order "urgent"'),
                     "tests/triage.yaml": "cases:\n  - name: 紧急工单\n    ruleset: triag\n"
                                          "    given: {work_order: {title: 漏水, priority: P1}}\n"
                                          "    expect: {tags: [urgent]}\n"}, (
        'tests/triage.yaml:3:14: E6001: case "紧急工单": unknown ruleset \'triag\'',
        "    3 |     ruleset: triag",
        "      |              ^~~~~",
        "  hint: did you mean 'triage'?",
    )),
    Golden("E6001-event", {R: ruleset('rule "P1" when true then tag work_order "urgent"'),
                           "tests/triage.yaml": "cases:\n  - name: 紧急工单\n"
                                                "    event: work_order.closed\n"
                                                "    given: {work_order: {title: 漏水}}\n"
                                                "    expect: {tags: [urgent]}\n"}, (
        "tests/triage.yaml:3:12: E6001: case \"紧急工单\": unknown event 'work_order.closed'",
        "    3 |     event: work_order.closed",
        "      |            ^~~~~~~~~~~~~~~~~",
        "  hint: did you mean 'work_order.created'?",
    )),
    Golden("W7001", {R: ruleset('rule "a" when work_order.escalated then set '
                                'work_order.priority = "P1"',
                                'rule "b" when work_order.parts_count > 3 then set '
                                'work_order.priority = "P2"')}, (
        'rules/triage.rules:3:47: W7001: rules "a" and "b" both set work_order.priority at '
        "salience 0",
        '    3 | rule "b" when work_order.parts_count > 3 then set work_order.priority = "P2"',
        "      |                                               ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
        "  hint: when both match, the later rule wins silently; give one a higher salience to "
        "make the order explicit",
    )),
]


def _compile(case: Golden, make_bundle) -> list[Diagnostic]:
    root = make_bundle(case.files)
    for rel, data in case.raw.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return compile_bundle(root).diagnostics


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_golden(case: Golden, make_bundle) -> None:
    diagnostics = _compile(case, make_bundle)
    # The bundle is minimal: exactly the one diagnostic under test comes out.
    assert [d.code for d in diagnostics] == [case.code], render_text(diagnostics)
    assert diagnostics[0].render() == "\n".join(case.rendered)
    assert diagnostics[0].is_error is case.code.startswith("E")


def test_every_code_has_a_golden_case() -> None:
    # Flow graph codes (W8xxx/E8xxx) have theirs in tests/flows/test_flow_diagnostics.py.
    assert {c.code for c in CASES} == {c for c in CODES if not c[1:].startswith("8")}


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


def test_missing_bundle_folder(tmp_path) -> None:
    (d,) = compile_bundle(tmp_path / "没有").diagnostics
    assert d.code == "E1003"
    assert d.render() == f"{tmp_path / '没有'}: E1003: bundle folder does not exist or is not a folder"


# ------------------------------------------------------------------ rendering


def _bag_with(text: str, *errors: tuple[str, str, Span, str | None]) -> DiagnosticBag:
    bag = DiagnosticBag()
    bag.add_source(SourceFile("rules/x.rules", text))
    for code, message, span, hint in errors:
        bag.error(code, message, "rules/x.rules", span, hint)
    return bag


def test_caret_keeps_tabs_so_it_lines_up() -> None:
    bag = _bag_with("\twhen x = 1\n", ("E2001", "unexpected '='", Span.point(1, 9), None))
    assert bag.sorted()[0].render().splitlines()[1:] == [
        "    1 | \twhen x = 1",
        "      | \t       ^",
    ]


def test_multi_line_span_underlines_one_character() -> None:
    bag = _bag_with("rule \"a\"\n  when x\n", ("E3013", "bad", Span(1, 1, 2, 9), None))
    assert bag.sorted()[0].render().splitlines()[2] == "      | ^"


def test_render_text_sorts_and_summarises() -> None:
    bag = _bag_with("a\nb\n", ("E3002", "unknown name 'b'", Span.point(2, 1), None),
                    ("E3002", "unknown name 'a'", Span.point(1, 1), None))
    bag.warning("W4001", "maybe null", "rules/x.rules", Span.point(2, 1))
    bag.error("E3002", "unknown name 'a'", "rules/x.rules", Span.point(1, 1))  # duplicate
    text = render_text(bag.sorted())
    assert text.splitlines()[0] == "rules/x.rules:1:1: E3002: unknown name 'a'"
    assert text.endswith("\n\n2 error(s), 1 warning(s)")
    assert text.count("unknown name 'a'") == 1


def test_render_json() -> None:
    bag = _bag_with("工单.x\n", ("E2002", "unexpected character '工'", Span.point(1, 1),
                                "names are ASCII"))
    data = json.loads(render_json(bag.sorted()))
    assert data == {"errors": 1, "warnings": 0, "diagnostics": [{
        "severity": "error", "code": "E2002", "message": "unexpected character '工'",
        "file": "rules/x.rules", "line": 1, "column": 1, "end_column": 2,
        "hint": "names are ASCII", "source_line": "工单.x"}]}
    assert "工" in render_json(bag.sorted())  # not \\u-escaped


def test_unregistered_codes_are_refused() -> None:
    with pytest.raises(AssertionError, match="unregistered diagnostic code E9999"):
        DiagnosticBag().error("E9999", "nope", "x")


def test_headline_without_position() -> None:
    d = Diagnostic(Severity.ERROR, "E1022", "missing app.yaml", "app.yaml")
    assert d.headline() == "app.yaml: E1022: missing app.yaml"
    assert d.render() == "app.yaml: E1022: missing app.yaml"
