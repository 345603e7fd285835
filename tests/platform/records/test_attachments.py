"""Who may read a stored file and which files an attachment field takes
(dispatchflow.platform.records.attachments); the API side is in tests/regressions."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.errors import NotFoundError
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.intake.csv_import import import_csv
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.attachments import inline_image_type, readable_file
from dispatchflow.platform.records.files import store_file
from dispatchflow.platform.store.versions import publish

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
ADMIN = Actor("adm", "管理员", ("admin",), channel="import")


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    app = compile_bundle(REFERENCE).app
    assert app is not None
    runtime = Runtime(Settings.from_env(home=tmp_path / "home", secret_key="test",
                                        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    publish(runtime.engine, app, created_by="test")
    runtime.refresh()
    yield runtime
    runtime.close()


def stored(rt: Runtime, data: bytes, content_type: str, by: str) -> str:
    return store_file(rt.engine, data, filename="f", content_type=content_type,
                      created_by=by, max_bytes=1 << 20).id


def test_csv_rows_may_attach_only_the_importers_files_of_an_accepted_type(
        rt: Runtime) -> None:
    customer = rt.records.create(SYSTEM_ACTOR, "customer", {
        "name": "张伟", "phone": "13800000001"})["id"]
    mine = stored(rt, PNG, "image/png", "adm")
    theirs = stored(rt, PNG, "image/png", "someone")
    page = stored(rt, b"<html></html>", "text/html", "adm")
    data = "title,category,customer,location,photos\n" + "".join(
        f"t{i},aircon,{customer},\"31.2,121.5\",{file_id}\n"
        for i, file_id in enumerate((mine, theirs, page)))
    result = import_csv(rt, ADMIN, "work_order", io.StringIO(data), locale="en")
    assert [(e.row_number, e.field) for e in result.errors] == [(3, "photos.0"),
                                                                 (4, "photos.0")]
    assert result.errors[0].message == (
        f"Photos: there is no file {theirs} that you uploaded; upload it first.")
    assert result.errors[1].message == (
        "Photos does not accept f (text/html); allowed: image/*.")
    assert result.created == 0


def test_the_system_reads_every_file_and_odd_ids_are_simply_not_found(rt: Runtime) -> None:
    file_id = stored(rt, PNG, "image/png", "someone")
    meta, data = readable_file(rt, SYSTEM_ACTOR, file_id)
    assert (meta.id, data) == (file_id, PNG)
    for odd in ("", "short", "x" * 65, "../../etc/passwd-0000000000", file_id[:-1] + "%"):
        with pytest.raises(NotFoundError, match="no such file"):
            readable_file(rt, SYSTEM_ACTOR, odd)
    with pytest.raises(NotFoundError, match="no such file"):
        readable_file(rt, ADMIN, file_id)  # an administrator is no uploader


@pytest.mark.parametrize(("data", "expected"), [
    (PNG, "image/png"),
    (b"\xff\xd8\xff\xe0" + bytes(8), "image/jpeg"),
    (b"GIF89a" + bytes(8), "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"II*\x00" + bytes(8), None),  # TIFF: browsers do not show it; a download
    (b"%PDF-1.7\n", None),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', None),
    (b"<!doctype html><script>alert(1)</script>", None),
])
def test_only_recognised_raster_images_are_shown_inline(data: bytes,
                                                         expected: str | None) -> None:
    assert inline_image_type(data) == expected
