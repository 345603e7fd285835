"""The forms layer's words, in Chinese and English: field messages and UI strings.

Every text a submitter can see comes from here, so a wording change is made in
one place and the golden tests (``tests/forms/test_messages.py``) show it.
Field messages name the field by its label (``“标题”是必填项。`` / ``Title is
required.``): they read well next to the input and on their own in an API
response.

Locales are ``zh`` and ``en``; anything else (``zh-CN``, ``en_US``, ``fr``) is
mapped by :func:`normalize_locale`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOCALES = ("zh", "en")

#: Field-level messages by error code. ``{label}`` is the field's label in the
#: locale; other placeholders are listed in the code's docs in validation.py.
FIELD_MESSAGES: dict[str, dict[str, str]] = {
    "required": {"zh": "“{label}”是必填项。", "en": "{label} is required."},
    "type": {"zh": "“{label}”应为{expected}。", "en": "{label} must be {expected}."},
    "enum": {"zh": "“{label}”必须是以下之一：{values}。",
             "en": "{label} must be one of: {values}."},
    "max_length": {"zh": "“{label}”最多 {limit} 个字符。",
                   "en": "{label} must be at most {limit} characters long."},
    "min_length": {"zh": "“{label}”至少 {limit} 个字符。",
                   "en": "{label} must be at least {limit} characters long."},
    "pattern": {"zh": "“{label}”的格式不正确。", "en": "{label} is not in the expected format."},
    "minimum": {"zh": "“{label}”不能小于 {limit}。", "en": "{label} must be at least {limit}."},
    "maximum": {"zh": "“{label}”不能大于 {limit}。", "en": "{label} must be at most {limit}."},
    "format_date": {"zh": "“{label}”应为日期，例如 2026-03-02。",
                    "en": "{label} must be a date like 2026-03-02."},
    "format_datetime": {
        "zh": "“{label}”应为带时区的日期时间，例如 2026-03-02T10:00:00+08:00。",
        "en": "{label} must be a date and time with an offset, like 2026-03-02T10:00:00+08:00."},
    "format_duration": {"zh": "“{label}”应为时长，例如 15m、2h、1d（单位 s、m、h、d、w）。",
                        "en": "{label} must be a duration like 15m, 2h or 1d "
                              "(units s, m, h, d, w)."},
    "format_file_id": {"zh": "“{label}”应为已上传文件的编号。",
                       "en": "{label} must be the id of an uploaded file."},
    "format_characters": {"zh": "“{label}”含有不允许的字符。",
                          "en": "{label} contains characters that are not allowed."},
    "format_data_url": {"zh": "“{label}”不是有效的图片数据。",
                        "en": "{label} is not valid image data."},
    "format": {"zh": "“{label}”的格式不正确。", "en": "{label} is not in the expected format."},
    "unique_items": {"zh": "“{label}”中有重复项。", "en": "{label} contains duplicates."},
    "unknown_field": {"zh": "未知字段“{name}”。", "en": "Unknown field '{name}'."},
    "unknown_field_hint": {"zh": "未知字段“{name}”，您是不是要写“{suggestion}”？",
                           "en": "Unknown field '{name}'; did you mean '{suggestion}'?"},
    "read_only": {"zh": "您不能填写或修改“{label}”。", "en": "You may not set {label}."},
    "file_too_large": {"zh": "“{label}”的文件“{filename}”超过 {limit} MB。",
                       "en": "The file {filename} for {label} is larger than {limit} MB."},
    "file_type": {"zh": "“{label}”不接受文件“{filename}”（{type}），允许的类型：{accept}。",
                  "en": "{label} does not accept {filename} ({type}); allowed: {accept}."},
    "file_empty": {"zh": "文件“{filename}”是空的。", "en": "The file {filename} is empty."},
    "file_unknown": {"zh": "“{label}”：没有您上传的文件 {id}，请先上传该文件。",
                     "en": "{label}: there is no file {id} that you uploaded; upload it first."},
    "too_many_files": {"zh": "“{label}”只能上传一个文件。", "en": "{label} takes a single file."},
    "upload_failed": {"zh": "文件“{filename}”无法保存：{reason}",
                      "en": "The file {filename} could not be saved: {reason}"},
    "invalid": {"zh": "“{label}”的值无效。", "en": "{label} is not valid."},
    "body": {"zh": "请求内容应为 JSON 对象。", "en": "The request body must be a JSON object."},
}

#: What a field of each kind must hold, for "type" messages.
EXPECTED: dict[str, dict[str, str]] = {
    "string": {"zh": "文本", "en": "text"},
    "text": {"zh": "文本", "en": "text"},
    "integer": {"zh": "整数", "en": "a whole number"},
    "decimal": {"zh": "数字", "en": "a number"},
    "number": {"zh": "数字", "en": "a number"},
    "boolean": {"zh": "是或否（true 或 false）", "en": "true or false"},
    "date": {"zh": "日期", "en": "a date"},
    "datetime": {"zh": "日期时间", "en": "a date and time"},
    "duration": {"zh": "时长", "en": "a duration"},
    "enum": {"zh": "选项之一", "en": "one of the options"},
    "geo": {"zh": "包含 lat 和 lng 的位置", "en": "a location with lat and lng"},
    "list": {"zh": "文本列表", "en": "a list of text"},
    "reference": {"zh": "记录编号（正整数）", "en": "a record id (a positive whole number)"},
    "attachment": {"zh": "文件编号", "en": "a file id"},
    "attachments": {"zh": "文件编号列表", "en": "a list of file ids"},
    "item": {"zh": "文本", "en": "text"},
}

#: Words the rendered form shows (buttons, hints, the geo and signature widgets).
UI_TEXT: dict[str, dict[str, str]] = {
    "submit": {"zh": "提交", "en": "Submit"},
    "required_note": {"zh": "带 * 的为必填项", "en": "Fields marked * are required"},
    "required": {"zh": "必填", "en": "required"},
    "error_summary": {"zh": "请修正以下问题：", "en": "Please fix the following:"},
    "choose": {"zh": "请选择", "en": "Choose…"},
    "yes": {"zh": "是", "en": "Yes"},
    "no": {"zh": "否", "en": "No"},
    "latitude": {"zh": "纬度", "en": "Latitude"},
    "longitude": {"zh": "经度", "en": "Longitude"},
    "use_my_location": {"zh": "使用我的位置", "en": "Use my location"},
    "locating": {"zh": "正在定位…", "en": "Finding your location…"},
    "location_found": {"zh": "已填入当前位置", "en": "Your location was filled in"},
    "location_failed": {"zh": "无法获取位置，请手动填写经纬度",
                        "en": "Could not get your location; enter it by hand"},
    "location_unsupported": {"zh": "此浏览器不支持定位，请手动填写经纬度",
                             "en": "This browser cannot locate you; enter the location by hand"},
    "signature_hint": {"zh": "请在框内签名", "en": "Sign inside the box"},
    "signature_pad": {"zh": "签名区域", "en": "Signature pad"},
    "clear_signature": {"zh": "清除签名", "en": "Clear signature"},
    "signature_kept": {"zh": "已有签名；重新签名将替换它",
                       "en": "A signature is on file; signing again replaces it"},
    "tags_hint": {"zh": "多个值用逗号分隔", "en": "Separate values with commas"},
    "duration_hint": {"zh": "例如 15m、2h、1d", "en": "e.g. 15m, 2h, 1d"},
    "files_kept": {"zh": "已上传 {count} 个文件", "en": "{count} file(s) already uploaded"},
    "file_too_large_client": {"zh": "文件超过 {limit} MB",
                              "en": "A file is larger than {limit} MB"},
    "record_id": {"zh": "记录编号", "en": "Record id"},
}


class _KeepMissing(dict):
    """Format parameters that leave a placeholder nobody passed visible (``{values}``)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def normalize_locale(locale: str | None, default: str = "zh") -> str:
    """``zh``/``en`` for a locale tag (``zh-CN`` -> ``zh``); ``default`` for anything else."""
    tag = (locale or "").strip().lower().replace("_", "-")
    for known in LOCALES:
        if tag == known or tag.startswith(known + "-"):
            return known
    return default if default in LOCALES else "zh"


def label_text(label: Mapping[str, str] | None, locale: str, fallback: str = "",
               default_locale: str = "zh") -> str:
    """A bundle Label in ``locale``; else in ``default_locale``; else any; else ``fallback``."""
    if not label:
        return fallback
    for lang in (locale, default_locale, *LOCALES):
        text = label.get(lang)
        if text:
            return text
    return fallback


def field_message(code: str, locale: str, **params: Any) -> str:
    """The text of a field message ``code`` (a key of :data:`FIELD_MESSAGES`) in ``locale``.

    Unknown codes fall back to the generic "invalid" message.
    """
    texts = FIELD_MESSAGES.get(code) or FIELD_MESSAGES["invalid"]
    template = texts.get(locale) or texts["en"]
    params.setdefault("label", "")
    return template.format_map(_KeepMissing(params))


def expected_text(kind: str, locale: str) -> str:
    """What a value of ``kind`` must be, for "type" messages ("整数" / "a whole number")."""
    words = EXPECTED.get(kind) or EXPECTED["string"]
    return words.get(locale) or words["en"]


def ui_text(key: str, locale: str, **params: Any) -> str:
    """A UI string (a key of :data:`UI_TEXT`) in ``locale``; raises KeyError for unknown keys."""
    texts = UI_TEXT[key]
    template = texts.get(locale) or texts["en"]
    return template.format(**params) if params else template


def join_list(items: list[str], locale: str) -> str:
    """``a、b、c`` in Chinese, ``a, b, c`` in English."""
    return ("、" if locale == "zh" else ", ").join(items)
