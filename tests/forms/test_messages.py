"""messages.py: the catalogue is complete in both languages; locale and label fallbacks."""

from __future__ import annotations

import string

import pytest

from dispatchflow.forms.messages import (
    EXPECTED,
    FIELD_MESSAGES,
    UI_TEXT,
    expected_text,
    field_message,
    join_list,
    label_text,
    normalize_locale,
    ui_text,
)


@pytest.mark.parametrize("catalogue", [FIELD_MESSAGES, UI_TEXT, EXPECTED])
def test_every_text_exists_in_both_languages_with_the_same_placeholders(
        catalogue: dict[str, dict[str, str]]) -> None:
    for key, texts in catalogue.items():
        assert set(texts) == {"zh", "en"}, key
        names = [{f[1] for f in string.Formatter().parse(t) if f[1]} for t in texts.values()]
        assert names[0] == names[1], key


@pytest.mark.parametrize("tag, expected", [
    ("zh", "zh"), ("zh-CN", "zh"), ("zh_Hans", "zh"), ("EN", "en"), ("en-GB", "en"),
    ("fr", "zh"), ("", "zh"), (None, "zh"),
])
def test_normalize_locale(tag: str | None, expected: str) -> None:
    assert normalize_locale(tag) == expected
    assert normalize_locale("fr", "en") == "en"


def test_label_text_falls_back() -> None:
    assert label_text({"zh": "工单", "en": "Work order"}, "en") == "Work order"
    assert label_text({"zh": "工单"}, "en") == "工单"
    assert label_text({"en": "Order"}, "zh", default_locale="zh") == "Order"
    assert label_text({}, "zh", "work_order") == "work_order"
    assert label_text(None, "zh", "x") == "x"


def test_field_message_formats_and_falls_back() -> None:
    assert field_message("max_length", "zh", label="标题", limit=5) == "“标题”最多 5 个字符。"
    assert field_message("no_such_code", "en", label="Title") == "Title is not valid."
    assert field_message("enum", "en", label="X") == "X must be one of: {values}."  # missing


def test_ui_and_expected_texts() -> None:
    assert ui_text("files_kept", "zh", count=2) == "已上传 2 个文件"
    assert ui_text("submit", "en") == "Submit"
    with pytest.raises(KeyError):
        ui_text("nope", "en")
    assert expected_text("integer", "zh") == "整数"
    assert expected_text("weird", "en") == "text"
    assert join_list(["a", "b"], "zh") == "a、b" and join_list(["a", "b"], "en") == "a, b"
