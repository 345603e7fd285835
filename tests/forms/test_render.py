"""render.py: the generated HTML form (accessibility, escaping, widgets, conditions)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from dispatchflow.dsl.compiler import App
from dispatchflow.forms.render import (
    SCRIPT_FILE,
    STATIC_DIR,
    STATIC_FILES,
    STYLE_FILE,
    WIDGETS,
    asset_tags,
    html_attrs,
    render_form,
)
from dispatchflow.forms.schema import DEFAULT_WIDGETS
from dispatchflow.forms.validation import FieldError

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
FID = "A1b2C3d4E5f6G7h8_-x9"
VOID = {"input", "br", "img", "meta", "link", "hr", "area", "base", "col", "source"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    parent: Element | None
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def ancestors(self) -> list[Element]:
        out, node = [], self.parent
        while node is not None:
            out.append(node)
            node = node.parent
        return out


class Doc(HTMLParser):
    """The rendered fragment as elements, to query like a tiny DOM."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.stack = [self.root]
        self.all: list[Element] = []
        self.feed(html)
        self.close()
        assert self.stack == [self.root], [e.tag for e in self.stack]  # balanced

    def handle_starttag(self, tag: str, attrs: list) -> None:
        el = Element(tag, dict(attrs), self.stack[-1])
        self.stack[-1].children.append(el)
        self.all.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, (self.stack[-1].tag, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for el in self.stack:
            el.text += data

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        return [e for e in self.all if (tag is None or e.tag == tag) and all(
            e.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())]

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]

    def by_id(self, ident: str) -> Element:
        return self.one(id=ident)


def render(app: App, form: str, **kw: object) -> Doc:
    kw.setdefault("locale", "zh")
    kw.setdefault("csrf_token", "tok")
    kw.setdefault("action", "/forms/x")
    kw.setdefault("now", NOW)
    return Doc(render_form(app, form, **kw))  # type: ignore[arg-type]


def test_every_form_renders_in_both_languages(app: App) -> None:
    for form in app.forms:
        for locale in ("zh", "en"):
            doc = render(app, form, locale=locale)
            assert doc.one("form").attrs["lang"] == locale


def test_form_element_and_csrf(app: App) -> None:
    doc = render(app, "repair_request", csrf_token="abc\"<", action="/f?a=1&b=2")
    form = doc.one("form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == "/f?a=1&b=2"
    assert form.attrs["enctype"] == "multipart/form-data"
    assert doc.one("input", name="csrf_token").attrs == {"type": "hidden", "name": "csrf_token",
                                                         "value": "abc\"<"}
    assert doc.one("button", type="submit").text == "提交报修"


def test_every_input_is_labelled_and_described(app: App) -> None:
    for form in app.forms:
        doc = render(app, form, locale="en")
        ids = {e.attrs.get("id") for e in doc.all}
        for el in doc.all:
            if el.tag in ("input", "select", "textarea") and el.attrs.get("type") != "hidden":
                ident = el.attrs["id"]
                assert doc.find("label", for_=ident), f"{form}: no label for {ident}"
            for ref in (el.attrs.get("aria-describedby") or "").split():
                assert ref in ids, f"{form}: {el.attrs.get('id')} describedby missing {ref}"


def test_sections_are_fieldsets_with_legends(app: App) -> None:
    doc = render(app, "completion_report", locale="en")
    legends = [e.text for e in doc.find("legend") if e.parent and
               e.parent.attrs.get("class") == "df-section"]
    assert legends == ["Work done", "Customer sign-off"]


def test_required_markers_and_attributes(app: App) -> None:
    doc = render(app, "callcentre_intake", locale="en")
    title = doc.by_id("title")
    assert "required" in title.attrs
    assert doc.one("label", for_="title").text.strip() == "Title *"
    mark = [e for e in doc.one("label", for_="address").children
            if e.attrs.get("class") == "df-required-mark"][0]
    assert "hidden" in mark.attrs and "required" not in doc.by_id("address").attrs
    assert doc.one(class_="df-required-note").text == "Fields marked * are required"


def test_errors_sit_next_to_their_field(app: App) -> None:
    errors = [FieldError("title", "required", "“标题”是必填项。"),
              FieldError("location.lat", "maximum", "纬度太大"),
              FieldError("", "row_filter", "无权创建")]
    doc = render(app, "repair_request", errors=errors)
    box = doc.by_id("title-error")
    assert box.attrs["class"] == "field-error" and "hidden" not in box.attrs
    assert box.text == "“标题”是必填项。"
    assert box.parent is doc.by_id("title-field")
    title = doc.by_id("title")
    assert title.attrs["aria-invalid"] == "true"
    assert "title-error" in title.attrs["aria-describedby"].split()
    assert doc.by_id("location-error").text == "纬度太大"
    assert doc.by_id("location_lat").attrs["aria-invalid"] == "true"
    summary = doc.one(class_="df-error-summary")
    assert summary.attrs["role"] == "alert"
    assert [a.attrs["href"] for a in doc.find("a") if summary in a.ancestors()] == [
        "#title", "#location_lat"]
    assert "无权创建" in summary.text
    assert "hidden" in doc.by_id("address-error").attrs  # no error: empty and hidden


def test_values_are_escaped(app: App) -> None:
    html = render_form(app, "callcentre_intake", locale="zh", csrf_token="t", action="/",
                       values={"title": '"><script>alert(1)</script>',
                               "description": "</textarea><script>x()</script>"},
                       errors=[FieldError("title", "x", "<b>bad</b>")],
                       choices={"customer": [(1, "<img src=x onerror=alert(1)>")]}, now=NOW)
    assert "<script>" not in html and "<b>" not in html and "<img" not in html
    doc = Doc(html)
    assert doc.by_id("title").attrs["value"] == '"><script>alert(1)</script>'
    assert doc.by_id("description").text.strip() == "</textarea><script>x()</script>"
    assert doc.by_id("title-error").text == "<b>bad</b>"


def test_no_inline_script_style_or_handlers(app: App) -> None:
    for form in app.forms:
        doc = render(app, form)
        assert not doc.find("script") and not doc.find("style")
        for el in doc.all:
            assert not [a for a in el.attrs if a.startswith("on") or a == "style"], el.tag


def test_widgets(kinds_app: App) -> None:
    doc = render(kinds_app, "sample_form", locale="en", choices={"owner": [(7, "Li Lei")]},
                 values={"photos": [FID], "starts_at": "2026-03-02T02:00:00+00:00",
                         "within": "2h", "words": ["a", "b"], "spot": {"lat": 31.5, "lng": 121}})
    assert doc.by_id("name").attrs["type"] == "text"
    assert doc.by_id("name").attrs["maxlength"] == "10"
    notes = doc.by_id("notes")
    assert notes.tag == "textarea" and "readonly" in notes.attrs
    count = doc.by_id("count")
    assert (count.attrs["type"], count.attrs["step"], count.attrs["min"], count.attrs["max"]) \
        == ("number", "1", "0", "10")
    assert doc.by_id("price").attrs["inputmode"] == "decimal"
    active = doc.by_id("active")
    assert active.attrs["type"] == "checkbox" and "checked" in active.attrs  # default true
    assert "required" not in active.attrs
    radios = doc.find("input", type="radio", name="confirmed")
    assert [r.attrs["value"] for r in radios] == ["true", "false"]
    assert doc.one("label", for_="confirmed-0").text == "Yes"
    group = radios[0].parent.parent  # type: ignore[union-attr]
    assert group.tag == "fieldset" and group.children[0].tag == "legend"
    assert doc.by_id("due_on").attrs["type"] == "date"
    assert doc.by_id("due_on").attrs["min"] == "2026-01-01"
    starts = doc.by_id("starts_at")
    assert starts.attrs["type"] == "datetime-local"
    assert starts.attrs["value"] == "2026-03-02T10:00"  # shown in the app's zone
    within = doc.by_id("within")
    assert within.attrs["value"] == "2h" and within.attrs["pattern"] == \
        "[0-9]+(\\.[0-9]+)?(s|m|h|d|w)"
    assert doc.by_id("words").attrs["value"] == "a, b"
    assert doc.by_id("words-hint").text == "Separate values with commas"
    owner = doc.by_id("owner")
    assert owner.tag == "select"
    assert [(o.attrs["value"], o.text) for o in doc.find("option") if o.parent is owner] == [
        ("", "Choose…"), ("7", "Li Lei")]
    assert doc.one("input", type="hidden", name="secret").attrs["value"] == "1234"


def test_reference_without_choices_is_an_id_input(kinds_app: App) -> None:
    owner = render(kinds_app, "sample_form").by_id("owner")
    assert owner.tag == "input" and owner.attrs["type"] == "number"
    assert owner.attrs["min"] == "1"


def test_file_and_photo_inputs(kinds_app: App) -> None:
    doc = render(kinds_app, "sample_form", values={"photos": [FID]})
    photo = doc.by_id("photo")
    assert photo.attrs["type"] == "file" and photo.attrs["accept"] == "image/*"
    assert photo.attrs["capture"] == "environment"
    assert photo.attrs["data-max-size"] == str(1024 * 1024)
    assert "multiple" not in photo.attrs
    photos = doc.by_id("photos")
    assert "multiple" in photos.attrs and photos.attrs["accept"] == "image/png,image/jpeg"
    assert [e.attrs["value"] for e in doc.find("input", type="hidden", name="photos")] == [FID]
    doc_input = doc.by_id("doc")
    assert "capture" not in doc_input.attrs and doc_input.attrs["accept"] == "application/pdf"


def test_geo_widget(app: App) -> None:
    doc = render(app, "repair_request", values={"location": {"lat": 31.230416, "lng": 121.47}})
    group = doc.by_id("location-field").children[0]
    assert group.tag == "fieldset" and group.children[0].text.startswith("上门位置")
    lat, lng = doc.by_id("location_lat"), doc.by_id("location_lng")
    assert (lat.attrs["name"], lat.attrs["value"], lat.attrs["min"], lat.attrs["max"]) == \
        ("location_lat", "31.230416", "-90", "90")
    assert lng.attrs["value"] == "121.47" and "required" in lng.attrs
    assert doc.one("label", for_="location_lat").text == "纬度"
    button = doc.one("button", data_df_geo="location")
    assert button.attrs["type"] == "button" and button.text == "使用我的位置"
    assert button.attrs["data-df-msg-failed"] == "无法获取位置，请手动填写经纬度"
    assert doc.by_id("location-status").attrs["role"] == "status"


def test_signature_widget(app: App) -> None:
    doc = render(app, "completion_report", locale="en")
    canvas = doc.one("canvas")
    assert canvas.attrs["id"] == "signature-pad"
    assert canvas.attrs["data-df-signature"] == "signature"
    assert canvas.attrs["aria-label"] == "Signature pad" and canvas.attrs["tabindex"] == "0"
    hidden = doc.by_id("signature")
    assert hidden.attrs["type"] == "hidden" and hidden.attrs["name"] == "signature"
    clear = doc.one("button", data_df_signature_clear="signature")
    assert clear.attrs["type"] == "button" and clear.text == "Clear signature"
    assert doc.by_id("signature-field").children[0].children[0].text.startswith(
        "Customer signature")


def test_a_kept_signature_stays(app: App) -> None:
    doc = render(app, "completion_report", values={"signature": FID}, locale="en")
    assert doc.by_id("signature").attrs["value"] == FID
    assert doc.one(class_="df-signature-kept").text.startswith("A signature is on file")


def test_conditions_are_shipped_and_evaluated_on_the_server(app: App) -> None:
    doc = render(app, "completion_report", values={"category": "plumbing"})
    asset = doc.by_id("asset_code-field")
    assert "hidden" in asset.attrs  # plumbing: not visible
    tree = json.loads(asset.attrs["data-df-visible-if"] or "")
    assert tree["op"] == "in" and tree["args"][0] == {"field": "category", "kind": "enum"}
    # category is not on the form: the browser gets it as context
    assert json.loads(doc.one("form").attrs["data-df-context"] or "") == {
        "category": "plumbing"}
    signature = doc.by_id("signature-field")
    assert "hidden" not in signature.attrs  # customer_absent defaults to false
    assert signature.attrs["data-df-required-server"] == "true"
    doc = render(app, "completion_report", values={"category": "elevator",
                                                   "customer_absent": True})
    assert "hidden" not in doc.by_id("asset_code-field").attrs
    assert "required" in doc.by_id("asset_code").attrs
    assert "hidden" in doc.by_id("signature-field").attrs


def test_a_server_only_condition_ships_no_tree(kinds_app: App) -> None:
    wrapper = render(kinds_app, "sample_form").by_id("starts_at-field")
    assert "data-df-required-if" not in wrapper.attrs
    assert wrapper.attrs["data-df-required-server"] == "false"


def test_language_switch(app: App) -> None:
    link = render(app, "repair_request", lang_switch_url="?lang=en").one("a", hreflang="en")
    assert link.attrs["href"] == "?lang=en" and link.text == "English"


def test_enum_options_use_labels_in_the_locale(kinds_app: App) -> None:
    doc = render(kinds_app, "sample_form", locale="en")
    labels = [doc.one("label", for_=r.attrs["id"] or "").text
              for r in doc.find("input", type="radio", name="level")]
    assert labels == ["low", "High"]


def test_widget_registry_covers_every_widget_and_default() -> None:
    from dispatchflow.dsl.items import _WIDGET_KINDS
    assert set(_WIDGET_KINDS) | {"hidden"} <= set(WIDGETS)
    assert set(DEFAULT_WIDGETS.values()) <= set(WIDGETS)


def test_assets() -> None:
    assert {p.name for p in STATIC_DIR.iterdir()} >= set(STATIC_FILES)
    assert asset_tags("/static/forms/") == (
        f'<link rel="stylesheet" href="/static/forms/{STYLE_FILE}">\n'
        f'<script src="/static/forms/{SCRIPT_FILE}" defer></script>')
    js = (STATIC_DIR / SCRIPT_FILE).read_text("utf-8")
    assert "eval(" not in js and "new Function" not in js


def test_html_attrs() -> None:
    assert html_attrs({"a": "x\"<", "b": True, "c": False, "d": None, "e": 3}) == \
        ' a="x&#34;&lt;" b e="3"'
    with pytest.raises(ValueError):
        html_attrs({"onclick x": "1"})
