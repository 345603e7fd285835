"""submission.py: HTML form posts -> JSON payloads; file size and type checks."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from dispatchflow.dsl.compiler import App
from dispatchflow.errors import ValidationError
from dispatchflow.forms.submission import (
    BufferedUpload,
    accepts,
    effective_type,
    parse_form_submission,
    sniff_type,
)
from dispatchflow.forms.validation import validate_payload

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"0" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
Codes = Callable[[list[Any]], dict[str, str]]


@dataclass
class Upload:
    """A stand-in for werkzeug's FileStorage."""

    filename: str | None
    content_type: str | None
    data: bytes

    def read(self, size: int = -1, /) -> bytes:
        return self.data if size < 0 else self.data[:size]


class Store:
    """Records what the callbacks receive; returns fresh ids."""

    def __init__(self) -> None:
        self.files: list[tuple[str, BufferedUpload]] = []
        self.data_urls: list[tuple[str, bytes, str]] = []

    def file(self, field: str, upload: BufferedUpload) -> str:
        self.files.append((field, upload))
        return f"file{len(self.files):016d}"

    def data_url(self, field: str, data: bytes, content_type: str) -> str:
        self.data_urls.append((field, data, content_type))
        return f"sign{len(self.data_urls):016d}"


def parse(app: App, fields: dict[str, list[str]], files: dict[str, list[Any]] | None = None,
          store: Store | None = None, **kw: Any) -> tuple[dict, list]:
    store = store or Store()
    return parse_form_submission(app, "sample_form", fields, files or {},
                                 store_file=store.file, store_data_url=store.data_url, **kw)


def test_strings_become_json_values(kinds_app: App) -> None:
    payload, errors = parse(kinds_app, {
        "csrf_token": ["t"], "name": ["  ab "], "count": ["3"], "price": ["2.50"],
        "active": ["true"], "confirmed": ["false"], "level": ["high"],
        "due_on": ["2026-03-02"], "starts_at": ["2026-03-02T10:00"], "within": ["2h"],
        "spot_lat": ["31.230416"], "spot_lng": ["121.473701"], "words": ["a, b，c,,"],
        "owner": ["7"], "secret": ["1234"], "notes": ["readonly: ignored"]})
    assert errors == []
    assert payload == {
        "name": "ab", "count": 3, "price": 2.5, "active": True, "confirmed": False,
        "level": "high", "due_on": "2026-03-02", "starts_at": "2026-03-02T10:00:00+08:00",
        "within": "2h", "spot": {"lat": 31.230416, "lng": 121.473701},
        "words": ["a", "b", "c"], "owner": 7, "secret": "1234"}
    assert validate_payload(kinds_app, "sample", payload, mode="create",
                            form="sample_form").ok


def test_an_unchecked_checkbox_is_false(kinds_app: App) -> None:
    payload, _ = parse(kinds_app, {"name": ["ab"]})
    assert payload["active"] is False
    payload, _ = parse(kinds_app, {"active": ["false", "true"]})  # hidden companion + box
    assert payload["active"] is True


def test_empty_inputs_are_absent_on_create_and_null_on_update(kinds_app: App) -> None:
    fields = {"name": [""], "count": [""], "spot_lat": [""], "spot_lng": [""], "words": [" "],
              "confirmed": [""], "starts_at": [""]}
    payload, _ = parse(kinds_app, fields)
    assert payload == {"active": False}
    payload, _ = parse(kinds_app, fields, mode="update")
    assert payload["name"] is None and payload["count"] is None and payload["spot"] is None
    assert payload["words"] is None and payload["confirmed"] is None
    assert payload["photo"] is None and payload["photos"] is None


def test_text_that_does_not_parse_reaches_validation(kinds_app: App, codes: Codes) -> None:
    payload, _ = parse(kinds_app, {"name": ["ab"], "count": ["three"], "starts_at": ["soon"],
                                   "spot_lat": ["31.2"], "spot_lng": [""]})
    assert payload["count"] == "three" and payload["starts_at"] == "soon"
    assert payload["spot"] == {"lat": 31.2}
    result = validate_payload(kinds_app, "sample", payload, mode="create", form="sample_form")
    assert codes(result.errors) == {"count": "type", "starts_at": "format", "spot.lng": "required"}


def test_textarea_newlines_are_normalised(app: App) -> None:
    payload, _ = parse_form_submission(app, "callcentre_intake",
                                       {"description": ["line 1\r\nline 2\r"]}, {})
    assert payload["description"] == "line 1\nline 2\n"


def test_files_are_checked_and_stored(kinds_app: App) -> None:
    store = Store()
    payload, errors = parse(kinds_app, {"photos": ["kept" + "k" * 16]}, {
        "photo": [Upload("me.jpg", "image/jpeg", JPEG)],
        "photos": [Upload("a.png", "image/png", PNG), Upload("", None, b"")],
        "doc": [Upload("C:\\Users\\x\\report.pdf", "application/pdf", PDF)]}, store=store)
    assert errors == []
    assert payload["photo"] == "file0000000000000001"
    assert payload["photos"] == ["kept" + "k" * 16, "file0000000000000002"]
    assert payload["doc"] == "file0000000000000003"
    field, upload = store.files[2]
    assert (field, upload.filename, upload.content_type) == ("doc", "report.pdf",
                                                               "application/pdf")
    assert upload.read() == PDF and upload.size == len(PDF)


def test_file_size_limit_of_the_field(kinds_app: App) -> None:
    big = JPEG + b"\x00" * (1024 * 1024)
    store = Store()
    payload, errors = parse(kinds_app, {}, {"photo": [Upload("big.jpg", "image/jpeg", big)]},
                            store=store, locale="en")
    assert [(e.field, e.code, e.message) for e in errors] == [
        ("photo", "file_too_large", "The file big.jpg for Photo is larger than 1 MB.")]
    assert store.files == [] and "photo" not in payload


def test_default_size_limit_applies_without_max_size_mb(kinds_app: App) -> None:
    data = PNG + b"\x00" * 2048
    _, errors = parse(kinds_app, {}, {"photos": [Upload("a.png", "image/png", data)]},
                      default_max_mb=0.001)
    assert [(e.field, e.code) for e in errors] == [("photos", "file_too_large")]


@pytest.mark.parametrize("field, upload", [
    ("photo", Upload("report.pdf", "application/pdf", PDF)),
    ("photo", Upload("evil.svg", "image/svg+xml", SVG)),
    ("photo", Upload("evil.png", "image/png", SVG)),          # an SVG posing as PNG
    ("doc", Upload("fake.pdf", "application/pdf", b"MZ\x90\x00 not a pdf")),
    ("photos", Upload("pic.gif", "image/gif", b"GIF89a" + b"\x00" * 10)),  # png/jpeg only
])
def test_file_type_must_fit_accept(kinds_app: App, field: str, upload: Upload) -> None:
    store = Store()
    payload, errors = parse(kinds_app, {}, {field: [upload]}, store=store)
    assert [(e.field, e.code) for e in errors] == [(field, "file_type")]
    assert store.files == [] and field not in payload


def test_file_type_message(kinds_app: App) -> None:
    _, errors = parse(kinds_app, {}, {"photos": [Upload("a.pdf", "application/pdf", PDF)]})
    assert errors[0].message == \
        "“多张照片”不接受文件“a.pdf”（application/pdf），允许的类型：image/png、image/jpeg。"


def test_an_empty_named_file_and_too_many_files(kinds_app: App) -> None:
    _, errors = parse(kinds_app, {}, {"photo": [Upload("x.jpg", "image/jpeg", b"")]},
                      locale="en")
    assert [(e.code, e.message) for e in errors] == [("file_empty", "The file x.jpg is empty.")]
    _, errors = parse(kinds_app, {}, {"photo": [Upload("a.jpg", "image/jpeg", JPEG),
                                                Upload("b.jpg", "image/jpeg", JPEG)]})
    assert [e.code for e in errors] == ["too_many_files"]


def test_a_new_file_replaces_the_kept_one(kinds_app: App) -> None:
    payload, errors = parse(kinds_app, {"photo": ["old" + "o" * 17]},
                            {"photo": [Upload("a.jpg", "image/jpeg", JPEG)]})
    assert errors == [] and payload["photo"] == "file0000000000000001"


def test_a_refused_store_becomes_a_field_error(kinds_app: App) -> None:
    def refuse(field: str, upload: BufferedUpload) -> str:
        raise ValidationError("the disk is full")
    _, errors = parse_form_submission(kinds_app, "sample_form", {},
                                      {"photo": [Upload("a.jpg", "image/jpeg", JPEG)]},
                                      store_file=refuse, locale="en")
    assert [(e.code, e.message) for e in errors] == [
        ("upload_failed", "The file a.jpg could not be saved: the disk is full")]


def test_files_need_a_store_callback(kinds_app: App) -> None:
    with pytest.raises(ValueError, match="store_file"):
        parse_form_submission(kinds_app, "sample_form", {},
                              {"photo": [Upload("a.jpg", "image/jpeg", JPEG)]})


def data_url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


def test_signature_data_url(kinds_app: App) -> None:
    store = Store()
    payload, errors = parse(kinds_app, {"sign": [data_url(PNG)]}, store=store)
    assert errors == []
    assert payload["sign"] == "sign0000000000000001"
    assert store.data_urls == [("sign", PNG, "image/png")]


def test_signature_without_a_data_url_callback_goes_to_store_file(kinds_app: App) -> None:
    store = Store()
    payload, _ = parse_form_submission(kinds_app, "sample_form", {"sign": [data_url(PNG)]}, {},
                                       store_file=store.file)
    assert store.files[0][1] == BufferedUpload("signature.png", "image/png", PNG)
    assert payload["sign"] == "file0000000000000001"


@pytest.mark.parametrize("value, code", [
    ("data:image/png;base64,%%%", "format"),
    ("data:image/png,plain", "format"),
    ("data:image/png;base64,", "format"),
    (data_url(JPEG, "image/jpeg"), "file_type"),              # accept: image/png
    (data_url(SVG, "image/png"), "file_type"),
    (data_url(PNG + b"\x00" * 2000), "file_too_large"),       # max_size_mb: 0.001
])
def test_bad_signatures(kinds_app: App, value: str, code: str) -> None:
    store = Store()
    payload, errors = parse(kinds_app, {"sign": [value]}, store=store)
    assert [(e.field, e.code) for e in errors] == [("sign", code)]
    assert store.data_urls == [] and "sign" not in payload


def test_a_kept_signature_id_passes_through(kinds_app: App) -> None:
    payload, errors = parse(kinds_app, {"sign": ["S" * 20]})
    assert errors == [] and payload["sign"] == "S" * 20


def test_reference_completion_report_post(app: App) -> None:
    store = Store()
    payload, errors = parse_form_submission(
        app, "completion_report",
        {"resolution": ["更换轴承"], "signature": [data_url(PNG)], "csrf_token": ["x"]},
        {"photos": [Upload("after.jpg", "image/jpeg", JPEG)]},
        store_file=store.file, store_data_url=store.data_url, mode="update")
    assert errors == []
    assert payload == {"resolution": "更换轴承", "asset_code": None,
                       "photos": ["file0000000000000001"], "customer_absent": False,
                       "signature": "sign0000000000000001"}


def test_sniffing_and_accept_patterns() -> None:
    assert sniff_type(PNG) == "image/png" and sniff_type(JPEG) == "image/jpeg"
    assert sniff_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_type(b"\x00\x00\x00\x18ftypheic") == "image/heic"
    assert sniff_type(SVG) is None
    assert effective_type(PNG, "application/octet-stream", "x") == "image/png"
    assert effective_type(b"hello", "text/plain", "a.txt") == "text/plain"
    assert effective_type(b"hello", None, "a.csv") == "text/csv"
    assert effective_type(SVG, "image/svg+xml", "a.svg") == "application/octet-stream"
    assert accepts([], "anything/else", "x")
    assert accepts(["image/*"], "image/png", "x") and not accepts(["image/*"], "text/plain", "")
    assert accepts([".csv"], "text/csv", "data.CSV")
    assert not accepts([".pdf"], "application/octet-stream", "x.pdf")
