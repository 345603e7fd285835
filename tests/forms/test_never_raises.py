"""Property tests: no JSON body, form post or shown value makes the forms layer raise."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatchflow.dsl.compiler import App
from dispatchflow.forms.render import render_form
from dispatchflow.forms.submission import BufferedUpload, parse_form_submission
from dispatchflow.forms.validation import FieldError, Validated, validate_payload

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
FIELD_NAMES = ["title", "category", "location", "photos", "signature", "scheduled_at",
               "required_level", "customer", "rating", "urgent", "contact_phone", "tags", "id",
               "last_repair_at", "cost_labor", "priority", "asset_code", "customer_absent"]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
           | st.sampled_from(["2026-03-02", "2026-03-02T10:00:00+08:00", "15m", "P1",
                              "plumbing", "A1b2C3d4E5f6G7h8_-x9", "", "\x00", "2026-02-30",
                              "9999-12-31T23:59:60Z"]))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["lat", "lng", "id", "x"]) | st.text(max_size=5),
                      inner, max_size=4), max_leaves=12)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=12)
bodies = st.dictionaries(keys, json_values, max_size=8) | json_values


@SETTINGS
@given(data=bodies, mode=st.sampled_from(["create", "update"]),
       form=st.sampled_from([None, "repair_request", "completion_report", "callcentre_intake",
                             "customer_feedback"]),
       locale=st.sampled_from(["zh", "en", "xx", None]))
def test_validate_payload_never_raises(app: App, data: Any, mode: str, form: str | None,
                                       locale: str | None) -> None:
    result = validate_payload(app, "work_order", data, mode=mode, form=form, locale=locale,
                              now=NOW, current={"id": 1, "category": "elevator"})
    assert isinstance(result, Validated)
    assert all(isinstance(e, FieldError) and e.message for e in result.errors)
    if result.ok:
        assert set(result.values) <= set(app.entities["work_order"].fields)


@SETTINGS
@given(data=st.dictionaries(st.text(max_size=10), json_values, max_size=12))
def test_every_kind_never_raises(kinds_app: App, data: Any) -> None:
    for mode in ("create", "update"):
        assert isinstance(validate_payload(kinds_app, "sample", data, mode=mode), Validated)


field_posts = st.dictionaries(
    st.sampled_from(FIELD_NAMES + ["location_lat", "location_lng", "csrf_token"]),
    st.lists(st.text(max_size=20) | st.sampled_from(["data:image/png;base64,iVBORw0KGgo=",
                                                     "data:,x", "true", "31.2"]),
             max_size=3), max_size=10)


@SETTINGS
@given(fields=field_posts, form=st.sampled_from(["repair_request", "completion_report",
                                                 "callcentre_intake", "customer_feedback"]),
       mode=st.sampled_from(["create", "update"]))
def test_parse_and_render_never_raise(app: App, fields: dict, form: str, mode: str) -> None:
    def store(field: str, upload: BufferedUpload) -> str:
        return "S" * 20

    def store_data(field: str, data: bytes, content_type: str) -> str:
        return "D" * 20
    payload, errors = parse_form_submission(app, form, fields, {}, store_file=store,
                                            store_data_url=store_data, mode=mode)
    result = validate_payload(app, "work_order", payload, mode=mode, form=form, now=NOW)
    html = render_form(app, form, locale="en", values=payload, errors=errors + result.errors,
                       csrf_token="t", action="/x", now=NOW)
    assert html.startswith("<form") and html.endswith("</form>")


@settings(SETTINGS, max_examples=40)
@given(values=st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=10))
def test_render_shows_any_values(app: App, values: dict) -> None:
    for form in app.forms:
        assert render_form(app, form, locale="zh", values=values, csrf_token="t", action="/",
                           now=NOW).endswith("</form>")
