"""Issue #22.6: the template sandbox's CPU limit could be outrun.

The limit was checked between template operations, so one call in between ran
as long as it liked: ``urlize`` on a long field took 12.9 s (quadratic inside
``re``), and any filter doing Python work on a large value overran the budget by
that call's whole duration. A hostile template must now fail within 1.5 s, and
within its budget plus a little when one call is long, while other renders go on.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.dsl.items import CheckedItem
from dispatchflow.platform.notify.errors import TemplateRenderError
from dispatchflow.platform.notify.templates import render_message

from .webapp import REFERENCE

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def app() -> App:
    result = compile_bundle(REFERENCE)
    assert result.app is not None
    return result.app


def render(app: App, body: str, record: dict[str, Any], **kw: Any) -> Any:
    item = CheckedItem("notification", "probe", "notifications/probe.yaml", {
        "notification": "probe", "entity": "work_order", "channels": ["inbox"],
        "to": [{"role": "dispatcher"}], "body": body})
    probe = dataclasses.replace(app, notifications={**app.notifications, "probe": item},
                                digest=f"probe-{hash(body)}")
    return render_message(probe, "probe", record, locale="en", now=NOW, tz=UTC, **kw)


def test_urlize_on_a_long_field_fails_fast_while_other_renders_go_on(app: App) -> None:
    hostile = {"id": 1, "title": "t", "description": "." * 20000 + "x."}
    outcome: dict[str, Any] = {}

    def hostile_render() -> None:
        started = time.monotonic()
        try:
            render(app, "{{ work_order.description|urlize }}", hostile)
            outcome["error"] = None
        except TemplateRenderError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=hostile_render)
    worker.start()
    started = time.monotonic()
    ordinary = render(app, "{{ work_order.title }} ok", {"id": 2, "title": "空调不制冷"})
    ordinary_seconds = time.monotonic() - started
    worker.join(60)
    assert ordinary.text == "空调不制冷 ok"
    assert ordinary_seconds < 1.0
    assert outcome["seconds"] <= 1.5, f"the hostile render took {outcome['seconds']:.1f} s"
    assert outcome["error"] is not None


def test_one_long_call_cannot_outrun_the_budget(app: App) -> None:
    # wordwrap(1) of 60 000 spaces is one filter call of ~0.7 s of pure Python work.
    body = "{% set s = ' ' * 60000 ~ 'x' %}{{ s|wordwrap(1) }}"
    started = time.thread_time()
    with pytest.raises(TemplateRenderError, match=r"ran longer than 0.1 s of CPU time"):
        render(app, body, {"id": 1, "title": "t"}, timeout=0.1)
    spent = time.thread_time() - started
    assert spent < 0.35, f"the render went on for {spent:.2f} s of CPU time"
