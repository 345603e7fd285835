"""validation.py: payload validation, runtime values, field masks and form conditions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatchflow.dsl.compiler import App
from dispatchflow.forms.validation import FieldError, payload_validator, validate_payload

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
FID = "A1b2C3d4E5f6G7h8_-x9"
Codes = Callable[[list[Any]], dict[str, str]]

VALID_ORDER = {"title": "卫生间漏水", "category": "plumbing", "customer": 3,
               "location": {"lat": 31.23, "lng": 121.47}}


def check(app: App, data: Any, mode: str = "create", **kw: Any) -> Any:
    kw.setdefault("now", NOW)
    return validate_payload(app, "work_order", data, mode=mode, **kw)


# ------------------------------------------------------------------ golden messages

GOLDEN: list[tuple[dict[str, Any], str, str, str, str]] = [
    # payload, field, code, zh, en
    ({**VALID_ORDER, "title": None}, "title", "required",
     "“标题”是必填项。", "Title is required."),
    ({**VALID_ORDER, "title": ""}, "title", "required",
     "“标题”是必填项。", "Title is required."),
    ({k: v for k, v in VALID_ORDER.items() if k != "title"}, "title", "required",
     "“标题”是必填项。", "Title is required."),
    ({**VALID_ORDER, "required_level": "3"}, "required_level", "type",
     "“所需技师等级”应为整数。", "Required technician level must be a whole number."),
    ({**VALID_ORDER, "urgent": "yes"}, "urgent", "type",
     "“加急”应为是或否（true 或 false）。", "Urgent must be true or false."),
    ({**VALID_ORDER, "priority": "P9"}, "priority", "enum",
     "“优先级”必须是以下之一：P1、P2、P3、P4。", "Priority must be one of: P1, P2, P3, P4."),
    ({**VALID_ORDER, "contact_phone": "12345"}, "contact_phone", "pattern",
     "“联系电话”的格式不正确。", "Contact phone is not in the expected format."),
    ({**VALID_ORDER, "title": "x" * 121}, "title", "max_length",
     "“标题”最多 120 个字符。", "Title must be at most 120 characters long."),
    ({**VALID_ORDER, "required_level": 9}, "required_level", "maximum",
     "“所需技师等级”不能大于 5。", "Required technician level must be at most 5."),
    ({**VALID_ORDER, "cost_labor": -1}, "cost_labor", "minimum",
     "“人工费”不能小于 0。", "Labour cost must be at least 0."),
    ({**VALID_ORDER, "scheduled_at": "2026-03-02T10:00"}, "scheduled_at", "format",
     "“预约上门时间”应为带时区的日期时间，例如 2026-03-02T10:00:00+08:00。",
     "Scheduled visit must be a date and time with an offset, like 2026-03-02T10:00:00+08:00."),
    ({**VALID_ORDER, "titel": "x"}, "titel", "unknown_field",
     "未知字段“titel”，您是不是要写“title”？", "Unknown field 'titel'; did you mean 'title'?"),
    ({**VALID_ORDER, "zzz": 1}, "zzz", "unknown_field",
     "未知字段“zzz”。", "Unknown field 'zzz'."),
    ({**VALID_ORDER, "id": 5}, "id", "read_only",
     "您不能填写或修改“编号”。", "You may not set ID."),
    ({**VALID_ORDER, "location": {"lat": 91, "lng": 0}}, "location.lat", "maximum",
     "“上门位置（纬度）”不能大于 90。", "Location (latitude) must be at most 90."),
    ({**VALID_ORDER, "location": {"lat": 1}}, "location.lng", "required",
     "“上门位置（经度）”是必填项。", "Location (longitude) is required."),
    ({**VALID_ORDER, "photos": ["no"]}, "photos.0", "format",
     "“现场照片（第 1 项）”应为已上传文件的编号。",
     "Photos (item 1) must be the id of an uploaded file."),
]


@pytest.mark.parametrize("data, field, code, zh, en", GOLDEN,
                         ids=[f"{g[1]}-{g[2]}" for g in GOLDEN])
def test_golden_messages(app: App, data: dict, field: str, code: str, zh: str, en: str) -> None:
    for locale, text in (("zh", zh), ("en", en)):
        result = check(app, data, locale=locale)
        assert result.errors == [FieldError(field, code, text)]


def test_read_only_follows_the_field_mask(app: App) -> None:
    result = check(app, {**VALID_ORDER, "priority": "P1"}, writable={"title", "category",
                                                                     "customer", "location"},
                   locale="en")
    assert result.errors == [FieldError("priority", "read_only", "You may not set Priority.")]
    assert check(app, VALID_ORDER, writable=set(VALID_ORDER)).ok


def test_read_only_wins_over_other_problems(app: App, codes: Codes) -> None:
    result = check(app, {**VALID_ORDER, "priority": 42, "row_version": 3, "tags": ["x"]},
                   writable=set(VALID_ORDER))
    assert codes(result.errors) == {"priority": "read_only", "row_version": "read_only",
                                    "tags": "read_only"}


def test_body_must_be_an_object(app: App) -> None:
    for data in ([], "x", None, 3, {1: "a"}):
        result = check(app, data, locale="en")
        assert result.errors == [FieldError("", "type",
                                            "The request body must be a JSON object.")]
        assert result.values == {}


def test_every_problem_is_reported_in_field_order(app: App) -> None:
    result = check(app, {"category": "x", "location": {"lat": 100}, "bogus": 1,
                         "contact_phone": "1", "title": 5})
    assert [e.field for e in result.errors] == [
        "title", "category", "customer", "location.lat", "location.lng", "contact_phone",
        "bogus"]


def test_values_are_runtime_typed(kinds_app: App) -> None:
    result = validate_payload(kinds_app, "sample", {
        "name": "ab", "count": 3.0, "price": 2, "active": False, "due_on": "2026-03-02",
        "starts_at": "2026-03-02T10:00:00+08:00", "within": "1.5h", "level": "high",
        "spot": {"lat": 31, "lng": 121}, "words": ["a"], "owner": 7, "photo": FID,
        "photos": [FID], "code": None}, mode="create")
    assert result.ok, result.errors
    v = result.values
    assert v["count"] == 3 and isinstance(v["count"], int)
    assert v["price"] == 2.0 and isinstance(v["price"], float)
    assert v["due_on"] == date(2026, 3, 2)
    assert v["starts_at"] == datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
    assert v["starts_at"].tzinfo is not None
    assert v["within"] == timedelta(minutes=90)
    assert v["spot"] == {"lat": 31.0, "lng": 121.0}
    assert v["owner"] == 7 and v["photo"] == FID and v["photos"] == [FID]
    assert v["code"] is None


def test_bounds_json_schema_cannot_express(kinds_app: App, codes: Codes) -> None:
    def run(data: dict) -> dict[str, str]:
        return codes(validate_payload(kinds_app, "sample", data, mode="update").errors)
    assert run({"due_on": "2025-12-31"}) == {"due_on": "minimum"}
    assert run({"within": "10m"}) == {"within": "minimum"}
    assert run({"within": "4d"}) == {"within": "maximum"}
    assert run({"within": "3d", "due_on": "2026-01-01"}) == {}
    message = validate_payload(kinds_app, "sample", {"within": "10m"}, mode="update",
                               locale="en").errors[0].message
    assert message == "Within must be at least 15m."


def test_the_whole_text_must_match_the_pattern(kinds_app: App, codes: Codes) -> None:
    def run(value: str) -> dict[str, str]:
        return codes(validate_payload(kinds_app, "sample", {"code": value},
                                      mode="update").errors)
    assert run("AB-123") == {}
    assert run("AB-123\n") == {"code": "pattern"}  # `$` alone would let this through


def test_characters_a_database_cannot_store(kinds_app: App, codes: Codes) -> None:
    for value in ("a\x00b", "\ud800"):
        result = validate_payload(kinds_app, "sample", {"notes": value, "words": [value]},
                                  mode="update")
        assert codes(result.errors) == {"notes": "format", "words": "format"}


def test_non_finite_numbers(kinds_app: App, codes: Codes) -> None:
    for value in (float("nan"), float("inf")):
        result = validate_payload(kinds_app, "sample", {"price": value, "count": value},
                                  mode="update")
        assert codes(result.errors) == {"price": "type", "count": "type"}


def test_update_requires_nothing_but_rejects_null_for_non_null_fields(app: App,
                                                                     codes: Codes) -> None:
    assert check(app, {}, mode="update").ok
    result = check(app, {"priority": None, "title": None, "description": None}, mode="update")
    assert codes(result.errors) == {"priority": "required", "title": "required"}


def test_unknown_entity_and_form_mismatch(app: App) -> None:
    with pytest.raises(LookupError):
        validate_payload(app, "ticket", {}, mode="create")
    with pytest.raises(ValueError, match="form 'repair_request' is for work_order"):
        validate_payload(app, "customer", {}, mode="create", form="repair_request")
    with pytest.raises(ValueError):
        validate_payload(app, "work_order", {}, mode="upsert")


def test_one_validator_per_schema(app: App) -> None:
    assert payload_validator(app, "work_order", "create") is \
        payload_validator(app, "work_order", "create")
    assert payload_validator(app, "work_order", "create", "repair_request") is not \
        payload_validator(app, "work_order", "create")


def test_field_error_as_dict() -> None:
    assert FieldError("a", "required", "x").as_dict() == {"field": "a", "code": "required",
                                                          "message": "x"}


# ------------------------------------------------------------------ forms

STORED = {"id": 7, "title": "电梯异响", "category": "elevator", "customer": 1,
          "customer_absent": False, "tags": [], "photos": None}


def complete(app: App, data: dict, current: dict | None = None, **kw: Any) -> Any:
    return validate_payload(app, "work_order", data, mode="update", form="completion_report",
                            current=STORED if current is None else current, now=NOW, **kw)


def test_completion_report_requires_what_its_conditions_say(app: App, codes: Codes) -> None:
    result = complete(app, {}, locale="en")
    assert codes(result.errors) == {"resolution": "required", "asset_code": "required",
                                    "photos": "required", "signature": "required"}
    assert result.errors[3].message == "Customer signature is required."


def test_an_absent_customer_hides_and_unrequires_the_signature(app: App, codes: Codes) -> None:
    result = complete(app, {"resolution": "换了轴承", "asset_code": "EL-1", "photos": [FID],
                            "customer_absent": True, "signature": "not an id"})
    assert result.ok, result.errors
    assert "signature" not in result.values  # invisible: dropped, never an error
    assert result.values["customer_absent"] is True


def test_invisible_fields_are_dropped_even_when_invalid(app: App) -> None:
    stored = {**STORED, "category": "plumbing"}
    result = complete(app, {"resolution": "ok", "photos": [FID], "signature": FID,
                            "asset_code": "x" * 100}, current=stored)
    assert result.ok, result.errors
    assert "asset_code" not in result.values


def test_required_if_sees_the_stored_record(app: App, codes: Codes) -> None:
    data = {"resolution": "ok", "photos": [FID], "signature": FID}
    assert codes(complete(app, data).errors) == {"asset_code": "required"}
    assert complete(app, data, current={**STORED, "category": "aircon"}).ok
    assert complete(app, data, current={**STORED, "asset_code": "EL-9"}).ok


def test_stored_values_satisfy_required_if(app: App) -> None:
    stored = {**STORED, "resolution": "earlier", "photos": [FID], "asset_code": "EL-1"}
    assert complete(app, {"signature": FID}, current=stored).ok


def test_only_the_forms_fields_may_be_sent(app: App, codes: Codes) -> None:
    result = complete(app, {"resolution": "ok", "priority": "P1"})
    assert codes(result.errors)["priority"] == "unknown_field"


def test_readonly_form_fields_are_read_only(kinds_app: App, codes: Codes) -> None:
    result = validate_payload(kinds_app, "sample", {"name": "ab", "notes": "x"}, mode="create",
                              form="sample_form", now=NOW)
    assert codes(result.errors) == {"notes": "read_only"}


def test_create_fills_the_forms_defaults(app: App) -> None:
    result = validate_payload(app, "work_order", VALID_ORDER, mode="create",
                              form="repair_request", now=NOW)
    assert result.ok, result.errors
    assert result.values["channel"] == "web"
    assert result.values["urgent"] is False


def test_visibility_uses_defaults_and_the_payload(app: App, codes: Codes) -> None:
    # repair_request: scheduled_at visible_if not urgent (urgent defaults to false)
    with_time = {**VALID_ORDER, "scheduled_at": "2026-03-03T09:00:00+08:00"}
    result = validate_payload(app, "work_order", with_time, mode="create",
                              form="repair_request", now=NOW)
    assert "scheduled_at" in result.values
    result = validate_payload(app, "work_order", {**with_time, "urgent": True}, mode="create",
                              form="repair_request", now=NOW)
    assert result.ok and "scheduled_at" not in result.values


def test_required_if_on_create(app: App, codes: Codes) -> None:
    data = {**VALID_ORDER, "priority": "P4"}
    result = validate_payload(app, "work_order", data, mode="create", form="callcentre_intake",
                              now=NOW)
    assert codes(result.errors) == {"scheduled_at": "required"}
    data["scheduled_at"] = "2026-03-05T09:00:00+08:00"
    assert validate_payload(app, "work_order", data, mode="create", form="callcentre_intake",
                            now=NOW).ok


def test_feedback_is_required_for_a_low_rating(app: App, codes: Codes) -> None:
    def run(data: dict) -> dict[str, str]:
        return codes(validate_payload(app, "work_order", data, mode="update",
                                      form="customer_feedback", current=STORED,
                                      now=NOW).errors)
    assert run({"rating": 2}) == {"feedback": "required"}
    assert run({"rating": 2, "feedback": "来晚了"}) == {}
    assert run({"rating": 5}) == {}
    # The rating itself is required; a null rating does not make feedback required
    # ("rating <= 2" is false).
    assert run({}) == {"rating": "required"}
