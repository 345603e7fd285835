"""Tests for dispatchflow.platform.notify.templates and .sandbox: rendering, escaping,
the sandbox's refusals, the time limit and size caps, and template_problems."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify_world import MONDAY_10, SHANGHAI, compile_variant

from dispatchflow.dsl.compiler import App
from dispatchflow.dsl.items import CheckedItem
from dispatchflow.platform import defaults
from dispatchflow.platform.notify.errors import TemplateRenderError
from dispatchflow.platform.notify.templates import render_message, template_problems

ORDER = {"id": 7, "title": "空调不制冷", "status": "offered", "priority": "P1",
         "category": "aircon", "assignee": 3, "response_due": MONDAY_10 + timedelta(hours=2),
         "resolution_due": None, "address": "浦东新区世纪大道 1 号", "urgent": True,
         "rating": None, "feedback": None}
TECHNICIANS = {3: {"id": 3, "name": "王师傅", "level": 3}}


def resolve(entity: str, rid: Any) -> dict[str, Any] | None:
    return TECHNICIANS.get(rid) if entity == "technician" else None


def with_template(app: App, body: str, subject: str | None = None,
                  name: str = "probe") -> App:
    """``app`` plus a notification ``name`` with these templates (a new app version)."""
    data: dict[str, Any] = {"notification": name, "entity": "work_order",
                            "channels": ["inbox"], "to": [{"role": "dispatcher"}], "body": body}
    if subject is not None:
        data["subject"] = subject
    item = CheckedItem("notification", name, f"notifications/{name}.yaml", data)
    return dataclasses.replace(app, notifications={**app.notifications, name: item},
                               digest=f"probe-{hash((body, subject))}")


def render(app: App, body: str, subject: str | None = None, record: dict | None = None,
           locale: str = "zh", **kw: Any) -> Any:
    return render_message(with_template(app, body, subject), "probe", record or ORDER,
                          locale=locale, now=MONDAY_10, tz=SHANGHAI, resolve=resolve, **kw)


@pytest.fixture(scope="module")
def app() -> App:
    return compile_variant()


# ------------------------------------------------------------------ rendering


def test_reference_templates_render_in_both_languages(app: App) -> None:
    zh = render_message(app, "customer_status_update", ORDER, locale="zh", now=MONDAY_10,
                        tz=SHANGHAI, resolve=resolve)
    assert zh.subject == "您的工单进度更新：空调不制冷"
    assert zh.text.splitlines() == ["您好！您的报修“空调不制冷”当前状态：待接单。",
                                    "服务技师：王师傅。", "如有疑问请致电客服。"]
    en = render_message(app, "customer_status_update", ORDER, locale="en", now=MONDAY_10,
                        tz=SHANGHAI, resolve=resolve)
    assert en.subject == "Update on your request: 空调不制冷"
    assert "is now: Offered." in en.text and "Your technician: 王师傅." in en.text


def test_values_print_for_people(app: App) -> None:
    body = ("{{ work_order.response_due }}|{{ work_order.resolution_due }}|{{ work_order.urgent }}"
            "|{{ work_order.priority }}|{{ work_order.status == 'offered' }}|{{ now }}"
            "|{{ notification.name }}|{{ locale }}|{{ record.assignee }}")
    zh = render(app, body).text
    assert zh == "2026-03-02 12:00||是|P1 紧急|是|2026-03-02 10:00|probe|zh|王师傅"
    assert render(app, body, locale="en").text.split("|")[2] == "yes"


def test_missing_subject_is_the_label(app: App) -> None:
    message = render_message(app, "assignee_note", ORDER, locale="zh", now=MONDAY_10,
                             tz=SHANGHAI, resolve=resolve)
    assert message.subject == "assignee_note"
    assert message.text == "技师：王师傅"


def test_html_part_escapes_record_values_and_text_part_does_not(app: App) -> None:
    order = {**ORDER, "title": "<script>alert(1)</script> & <b>"}
    message = render(app, "工单 {{ work_order.title }}\n第二行", "【新】{{ work_order.title }}",
                     record=order)
    assert message.subject == "【新】<script>alert(1)</script> & <b>"
    assert message.text == "工单 <script>alert(1)</script> & <b>\n第二行"
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in message.html
    assert message.html.startswith('<div style="white-space: pre-line">')


def test_record_values_cannot_be_marked_safe(app: App) -> None:
    with pytest.raises(TemplateRenderError, match="No filter named 'safe'"):
        render(app, "{{ work_order.title|safe }}")


def test_subject_is_one_line(app: App) -> None:
    order = {**ORDER, "title": "first\r\nBcc: evil@example.com"}
    assert render(app, "x", "{{ work_order.title }}", record=order).subject == \
        "first Bcc: evil@example.com"


# ------------------------------------------------------------------ errors


def test_undefined_name_is_an_error_not_empty_text(app: App) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render(app, "hello {{ customer_name }}")
    assert str(info.value) == "notification 'probe' (body, zh): 'customer_name' is undefined"
    assert (info.value.notification, info.value.locale, info.value.part) == ("probe", "zh",
                                                                            "body")


def test_misspelt_field_names_the_entity_and_suggests(app: App) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render(app, "{{ work_order.titel }}", locale="en")
    assert str(info.value) == ("notification 'probe' (body, en): work_order has no field "
                               "'titel' (did you mean 'title'?)")


def test_reading_through_an_empty_reference_is_an_error(app: App) -> None:
    with pytest.raises(TemplateRenderError, match="cannot read 'name' of an empty value"):
        render(app, "{{ work_order.assignee.name }}", record={**ORDER, "assignee": None})


def test_syntax_error_names_the_line(app: App) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render(app, "ok\n{% if work_order.urgent %}urgent")
    assert "(body, zh): line 2: Unexpected end of template" in str(info.value)


# ------------------------------------------------------------------ sandbox


@pytest.mark.parametrize("body", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ work_order.__init__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ record._data }}",
])
def test_sandbox_blocks_internals(app: App, body: str) -> None:
    with pytest.raises(TemplateRenderError, match="unsafe|undefined"):
        render(app, body)


def test_templates_cannot_mutate_values(app: App) -> None:
    with pytest.raises(TemplateRenderError, match="unsafe"):
        render(app, "{% set l = [1] %}{{ l.append(2) }}")


def test_an_endless_loop_is_stopped_by_the_time_limit(app: App) -> None:
    loop = ("{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}"
            "{% endfor %}")
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match=r"ran longer than 0.2 s of CPU time"):
        render(app, loop, timeout=0.2)
    assert time.monotonic() - started < 10


def test_a_huge_range_is_stopped(app: App) -> None:
    with pytest.raises(TemplateRenderError, match="Range too big"):
        render(app, "{% for i in range(10**9) %}x{% endfor %}")


def test_the_time_limit_works_in_worker_threads(app: App) -> None:
    caught: list[BaseException] = []

    def work() -> None:
        try:
            render(app, "{% for i in range(100000) %}{% for j in range(100000) %}"
                   "{% endfor %}{% endfor %}", timeout=0.2)
        except TemplateRenderError as exc:
            caught.append(exc)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert len(caught) == 1 and "time limit" in str(caught[0])


@pytest.mark.parametrize("body", [
    "{{ 'a' * 10**9 }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'.ljust(999999999) }}",
    "{% set s = 'a' * 60000 %}{{ s ~ s }}",
    "{% set s = 'a' * 60000 %}{{ s|replace('a', 'aaaa') }}",
    "{{ 10 ** 100000 }}",
    "{% set s = 'a' * 60000 %}{{ s|replace('a', s) }}",
    "{% set s = 'a' * 60000 %}{{ [s] * 60000 }}",
    "{% set s = 'a' * 60000 %}{% set l = [s, s, s] %}{{ l|join }}",
    "{% set s = 'a' * 60000 %}{% set l = [s, s, s] %}{{ ''.join(l) }}",
    "{% set s = 'a' * 60000 %}{% set l = [s, s, s] %}{{ l|upper }}",
    "{% set s = 'a' * 60000 %}{% set l = [s, s, s] %}{{ l ~ '' }}",
    "{% set s = 'a' * 60000 %}{% set l = [s, s, s] %}{{ '%s' % (l,) }}",
    "{% set s = 'a' * 60000 %}{% set l = [s, s, s] %}{{ '{}'.format(l) }}",
    "{% set s = 'a' * 60000 %}{% set l = [s, s, s] %}{{ l }}",
    "{% set s = 'a' * 40000 %}{{ '{0}{0}{0}'.format(s) }}",
])
def test_values_past_the_size_cap_are_refused_before_they_are_built(app: App,
                                                                      body: str) -> None:
    with pytest.raises(TemplateRenderError, match="size cap|at most|too large|not allowed"):
        render(app, body)


def test_output_longer_than_the_cap_is_refused(app: App) -> None:
    with pytest.raises(TemplateRenderError, match="longer than 64000 characters"):
        render(app, "{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}")


def test_oversize_template_is_refused(app: App) -> None:
    body = "x" * (defaults.NOTIFY_TEMPLATE_MAX_CHARS + 1)
    with pytest.raises(TemplateRenderError, match="at most 16000 are allowed"):
        render(app, body)


def test_lipsum_is_not_available(app: App) -> None:
    with pytest.raises(TemplateRenderError, match="'lipsum' is undefined"):
        render(app, "{{ lipsum(1000) }}")


def test_ordinary_filters_still_work(app: App) -> None:
    text = render(app, "{{ work_order.title|length }} {{ [3, 1, 2]|sort|join(',') }} "
                  "{{ '%05.1f'|format(3.14159) }} {{ 'ab'|upper }} {{ '{:>4}'.format(7) }}").text
    assert text == "5 1,2,3 003.1 AB    7"


# ------------------------------------------------------------------ static checks


def test_template_problems_finds_unknown_fields_names_and_filters() -> None:
    app = compile_variant({"notifications/bad.yaml": """\
notification: bad
entity: work_order
channels: [inbox]
to: [{role: dispatcher}]
subject: {zh: "{{ work_order.titel }}", en: "{{ work_order.assignee.nmae }}"}
body: "{{ costumer }} {{ work_order.title|shout }} {{ record.customer.tier }}"
"""})
    problems = [p for p in template_problems(app) if "'bad'" in p[1]]
    assert problems == [
        ("notifications/bad.yaml", "notification 'bad' subject.zh: work_order has no field "
                                   "'titel' (did you mean 'title'?)"),
        ("notifications/bad.yaml", "notification 'bad' subject.en: work_order.assignee has "
                                   "no field 'nmae' (did you mean 'name'?)"),
        ("notifications/bad.yaml", "notification 'bad' body: line 1: No filter named "
                                   "'shout'."),
    ]
    fixed = compile_variant({"notifications/bad.yaml": """\
notification: bad
entity: work_order
channels: [inbox]
to: [{role: dispatcher}]
body: "{{ costumer }} {{ record.customer.tier }}"
"""})
    assert [p[1] for p in template_problems(fixed) if "'bad'" in p[1]] == [
        "notification 'bad' body: unknown name 'costumer'; templates see work_order, record, "
        "notification, now and locale"]


def test_the_reference_bundle_has_no_template_problems(app: App) -> None:
    assert template_problems(app) == []


def test_compiled_templates_are_cached_per_app_version(app: App) -> None:
    from dispatchflow.platform.notify.templates import compiled

    first = compiled(app, "escalation", "body", "zh", True)
    assert compiled(app, "escalation", "body", "zh", True) is first
    assert compiled(app, "escalation", "body", "zh", False) is not first
    other = dataclasses.replace(app, digest="another-version")
    assert compiled(other, "escalation", "body", "zh", True) is not first


def test_now_is_shown_in_the_app_time_zone(app: App) -> None:
    utc_now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    message = render_message(with_template(app, "{{ now }}"), "probe", ORDER, locale="zh",
                             now=utc_now, tz=SHANGHAI)
    assert message.text == "2026-03-02 10:00"


# ------------------------------------------------------------------ caps and the watchdog


def test_long_field_values_reach_templates_cut(app: App) -> None:
    long = "漏" * (defaults.NOTIFY_FIELD_MAX_CHARS + 500)
    text = render(app, "{{ work_order.title|length }} {{ work_order.title[-1] }}",
                  record={**ORDER, "title": long}).text
    assert text == f"{defaults.NOTIFY_FIELD_MAX_CHARS} …"


def test_urlize_is_not_available(app: App) -> None:
    with pytest.raises(TemplateRenderError, match="No filter named 'urlize'"):
        render(app, "{{ work_order.title|urlize }}")


def test_an_interrupted_render_leaves_its_thread_clean(app: App) -> None:
    # Budgets around the length of the call, so the watchdog fires at every point:
    # before, during and just after it; nothing may arrive once render() returned.
    body = "{% set s = ' ' * 20000 ~ 'x' %}{{ s|wordwrap(1) }}"
    outcomes = set()
    for budget in (0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3):
        try:
            render(app, body, timeout=budget)
            outcomes.add("done")
        except TemplateRenderError:
            outcomes.add("stopped")
        deadline = time.thread_time() + 0.1
        while time.thread_time() < deadline:  # Python work the watchdog must leave alone
            sum(range(1000))
    assert "stopped" in outcomes
