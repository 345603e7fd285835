"""Fixtures of the forms tests: the reference bundle and a bundle with every field kind.

Both are compiled once per session (``compile_sources`` keeps them in memory,
so they get a digest and exercise the per-version caches like a real app).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import App, compile_bundle, compile_sources
from dispatchflow.dsl.diagnostics import render_text

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"

KINDS_FILES: dict[str, str] = {
    "app.yaml": """\
app: kinds
version: "1"
default_locale: zh
timezone: Asia/Shanghai
""",
    "roles.yaml": """\
roles:
  clerk:
    label: {zh: 文员, en: Clerk}
""",
    "entities/person.yaml": """\
entity: person
label: {zh: 人员, en: Person}
fields:
  name: {type: string, required: true}
""",
    "entities/sample.yaml": """\
entity: sample
label: {zh: 样例, en: Sample}
fields:
  name: {type: string, required: true, min_length: 2, max_length: 10, label: {zh: 名称, en: Name}}
  code: {type: string, pattern: "[A-Z]{2}-[0-9]{3}", label: {zh: 编码, en: Code}}
  notes: {type: text, label: {zh: 备注, en: Notes}, help: {zh: 随便写, en: Anything}}
  count: {type: integer, min: 0, max: 10, label: {zh: 数量, en: Count}}
  price: {type: decimal, min: 0, label: {zh: 价格, en: Price}}
  active: {type: boolean, default: true, label: {zh: 启用, en: Active}}
  confirmed: {type: boolean, label: {zh: 已确认, en: Confirmed}}
  due_on: {type: date, min: "2026-01-01", label: {zh: 到期日, en: Due on}}
  starts_at: {type: datetime, label: {zh: 开始时间, en: Starts at}}
  within: {type: duration, min: 15m, max: 3d, label: {zh: 时限, en: Within}}
  level:
    type: enum
    label: {zh: 级别, en: Level}
    values: [low, {value: high, label: {zh: 高, en: High}}]
  spot: {type: geo, label: {zh: 位置, en: Spot}}
  words: {type: list, items: string, label: {zh: 标签词, en: Words}}
  owner: {type: reference, entity: person, label: {zh: 负责人, en: Owner}}
  photo: {type: attachment, accept: ["image/*"], max_size_mb: 1, label: {zh: 照片, en: Photo}}
  photos: {type: attachment, accept: [image/png, image/jpeg], multiple: true, label: {zh: 多张照片, en: Photos}}
  doc: {type: attachment, accept: [application/pdf], label: {zh: 文档, en: Document}}
  sign: {type: attachment, accept: [image/png], max_size_mb: 0.001, label: {zh: 签名, en: Signature}}
  secret: {type: string, sensitive: true, pattern: "[0-9]{4}"}
""",
    "forms/sample_form.yaml": """\
form: sample_form
entity: sample
title: {zh: 样例表单, en: Sample form}
roles: [clerk]
sections:
  - title: {zh: 基本, en: Basics}
    fields:
      - {field: name}
      - {field: code, widget: text}
      - {field: notes, readonly: true}
      - {field: count, widget: number}
      - {field: price, widget: text}
      - {field: active, widget: checkbox}
      - {field: confirmed, widget: radio}
      - {field: level, widget: radio}
      - field: due_on
        visible_if: sample.active
        required_if: sample.level == "high"
      - field: starts_at
        required_if: sample.starts_at is null and now() > now()
      - {field: within, widget: duration, default: 1h}
  - fields:
      - {field: spot, widget: geo}
      - {field: words, widget: tags}
      - {field: owner, widget: select}
      - {field: photo, widget: photo}
      - {field: photos, widget: photo}
      - {field: doc, widget: file}
      - field: sign
        widget: signature
        visible_if: not sample.confirmed
      - {field: secret, widget: hidden, default: "1234"}
""",
}


@pytest.fixture(scope="session")
def app() -> App:
    """The reference bundle ``examples/field-service``, compiled."""
    result = compile_bundle(REFERENCE)
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


@pytest.fixture(scope="session")
def kinds_app() -> App:
    """A small bundle whose ``sample`` entity has a field of every kind, and a form over it."""
    result = compile_sources(dict(KINDS_FILES))
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


@pytest.fixture
def file_id() -> str:
    """A well-formed stored-file id."""
    return "f" * 20


@pytest.fixture
def codes() -> Callable[[list[Any]], dict[str, str]]:
    """``codes(errors)``: ``{field: code}`` of a list of FieldErrors, for compact assertions."""
    def run(errors: list[Any]) -> dict[str, str]:
        return {e.field: e.code for e in errors}
    return run
