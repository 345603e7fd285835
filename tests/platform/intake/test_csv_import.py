"""CSV import: conversions, header names and labels, checks first, all-or-nothing, CLI."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from reference_runtime import make_runtime
from sqlalchemy import func, select

from dispatchflow.cli.csv_import import import_records
from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.dsl.model import EnumValue, FieldDef
from dispatchflow.errors import NotFoundError
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.intake import csv_import
from dispatchflow.platform.intake.csv_import import RowError, import_csv, split_list, text_value
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.store.db import audit_log, outbox

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
ACTOR = Actor("importer", "importer", channel="import", is_system=True)

HEADER = "title,服务类别,customer,Location,优先级,加急,asset_code,description\n"


@pytest.fixture(scope="module")
def app() -> App:
    result = compile_bundle(REFERENCE)
    assert result.app is not None, result.diagnostics
    return result.app


@pytest.fixture
def rt(tmp_path: Path, app: App) -> Iterator[Runtime]:
    runtime = make_runtime(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home", app)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def any_rt(database_url: str, tmp_path: Path, app: App) -> Iterator[Runtime]:
    """The same on SQLite and on PostgreSQL."""
    runtime = make_runtime(database_url, tmp_path / "home", app)
    yield runtime
    runtime.engine.dispose()


def customer(rt: Runtime) -> int:
    return int(rt.records.create(SYSTEM_ACTOR, "customer",
                                 {"name": "张伟", "phone": "13800000001"})["id"])


def count(rt: Runtime, table: Any) -> int:
    with rt.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def orders_csv(cid: int, bad_priority: bool = False) -> str:
    return (HEADER
            + f"空调不制冷,aircon,{cid},\"31.2,121.5\",P1,是,AC-1,\n"
            + f"热水器漏水,water_heater,{cid},\"31.21, 121.51\",{'P9' if bad_priority else ''},"
              f"否,,\"多行\n描述\"\n"
            + ",,,,,,,\n"
            + f"电梯困人,Elevator,{cid},\"31.3,121.4\",p2,1,EL-9,\n")


# ------------------------------------------------------------------ cell text


def field(kind: str, **kw: Any) -> FieldDef:
    return FieldDef("f", kind, **kw)


@pytest.mark.parametrize("kind, text, value", [
    ("integer", "42", 42), ("integer", "-3", -3), ("integer", "4.0", 4), ("integer", "4.5", 4.5),
    ("integer", "很多", "很多"), ("decimal", "12.5", 12.5), ("decimal", "nan", "nan"),
    ("boolean", "是", True), ("boolean", "否", False), ("boolean", "TRUE", True),
    ("boolean", "0", False), ("boolean", "也许", "也许"),
    ("geo", "31.2304,121.4737", {"lat": 31.2304, "lng": 121.4737}),
    ("geo", "31.2 ， 121.4", {"lat": 31.2, "lng": 121.4}), ("geo", "上海", "上海"),
    ("list", "aircon; hvac ;", ["aircon", "hvac"]), ("list", "a,b、c", ["a", "b", "c"]),
    ("list", "a,b;c", ["a,b", "c"]), ("reference", "12", 12), ("reference", "#12", "#12"),
    ("date", "2026-03-02", "2026-03-02"), ("duration", "2h", "2h"), ("string", "007", "007"),
])
def test_text_value_converts_by_field_kind(kind: str, text: str, value: Any) -> None:
    assert text_value(field(kind), text) == value


@pytest.mark.parametrize("text, value", [
    ("2026-03-02 10:00", "2026-03-02T10:00:00+08:00"),
    ("2026/3/2 10:00", "2026-03-02T10:00:00+08:00"),
    ("2026-03-02T10:00:00Z", "2026-03-02T10:00:00+00:00"),
    ("明天上午", "明天上午"),
])
def test_datetimes_without_offset_are_in_the_apps_time_zone(text: str, value: str) -> None:
    assert text_value(field("datetime"), text, "Asia/Shanghai") == value


def test_slashed_dates_become_iso_dates() -> None:
    assert text_value(field("date"), "2026/3/2") == "2026-03-02"
    assert text_value(field("date"), "3/2/2026") == "3/2/2026"


def test_text_value_reads_enum_values_and_labels_in_both_languages() -> None:
    f = field("enum", enum_values=(EnumValue("P1", {"zh": "P1 紧急", "en": "P1 Urgent"}),
                                   EnumValue("aircon", {"zh": "空调", "en": "Air conditioner"})))
    assert [text_value(f, t) for t in ("P1", "p1", "P1 紧急", "air CONDITIONER", "空调", "P9")] \
        == ["P1", "P1", "P1", "aircon", "aircon", "P9"]


def test_attachment_cells_are_file_ids_lists_when_multiple() -> None:
    assert text_value(field("attachment", multiple=True), "abc;def") == ["abc", "def"]
    assert text_value(field("attachment"), "abc") == "abc"
    assert split_list(" ; ") == []


# ------------------------------------------------------------------ import


def test_valid_file_imports_every_row_with_audit_and_events(rt: Runtime, tmp_path: Path) -> None:
    cid = customer(rt)
    path = tmp_path / "orders.csv"
    path.write_bytes(b"\xef\xbb\xbf" + orders_csv(cid).encode())  # Excel's "CSV UTF-8"
    events_before = count(rt, outbox)
    seen: list[tuple[str, int, int]] = []
    result = import_csv(rt, ACTOR, "work_order", path,
                        progress=lambda *args: seen.append(args))
    assert result.errors == [] and result.created == 3 and result.rows == 3
    first, second, third = (rt.records.get(SYSTEM_ACTOR, "work_order", i) for i in result.ids)
    assert (first["category"], first["priority"], first["urgent"], first["location"]) == \
        ("aircon", "P1", True, {"lat": 31.2, "lng": 121.5})
    assert (second["priority"], second["description"], second["asset_code"]) == \
        ("P3", "多行\n描述", None)  # empty cell: the default / nothing
    assert (third["category"], third["priority"], third["urgent"]) == ("elevator", "P2", True)
    assert count(rt, outbox) == events_before + 3
    with rt.engine.connect() as conn:
        actors = conn.execute(select(audit_log.c.actor, audit_log.c.channel)
                              .where(audit_log.c.entity == "work_order")).all()
    assert [tuple(a) for a in actors] == [("importer", "import")] * 3
    assert seen[0] == ("check", 1, 3) and seen[-1] == ("write", 3, 3)


def test_one_bad_row_imports_nothing_and_names_row_and_field(any_rt: Runtime) -> None:
    cid = customer(any_rt)
    events_before = count(any_rt, outbox)
    result = import_csv(any_rt, ACTOR, "work_order", io.StringIO(orders_csv(cid, True)))
    assert result.created == 0 and result.ids == []
    assert [(e.row_number, e.field) for e in result.errors] == [(3, "priority")]
    assert "P1" in result.errors[0].message
    assert str(result.errors[0]).startswith("row 3: priority: ")
    assert count(any_rt, any_rt.tables["work_order"]) == 0
    assert count(any_rt, outbox) == events_before


def test_valid_file_imports_on_both_databases(any_rt: Runtime) -> None:
    cid = customer(any_rt)
    result = import_csv(any_rt, ACTOR, "work_order", io.BytesIO(orders_csv(cid).encode()))
    assert (result.created, result.errors) == (3, [])
    assert count(any_rt, any_rt.tables["work_order"]) == 3


def test_partial_writes_the_good_rows(rt: Runtime) -> None:
    cid = customer(rt)
    result = import_csv(rt, ACTOR, "work_order", io.StringIO(orders_csv(cid, True)),
                        all_or_nothing=False)
    assert result.created == 2
    assert [(e.row_number, e.field) for e in result.errors] == [(3, "priority")]
    titles = [rt.records.get(SYSTEM_ACTOR, "work_order", i)["title"] for i in result.ids]
    assert titles == ["空调不制冷", "电梯困人"]


def test_a_failure_while_writing_rolls_back_every_row(any_rt: Runtime,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The unique check is skipped so the database itself refuses row 3 mid-way.
    monkeypatch.setattr(csv_import, "_unique_errors", lambda *a: [])
    data = "code,name\nPD,浦东\nXH,徐汇\nPD,又是浦东\n"
    result = import_csv(any_rt, ACTOR, "region", io.StringIO(data))
    assert result.created == 0
    assert [(e.row_number, e.field) for e in result.errors] == [(4, "")]
    assert result.errors[0].message.startswith("the database refused the row (")
    assert result.errors[0].message.endswith("); nothing was imported")
    assert count(any_rt, any_rt.tables["region"]) == 0
    assert count(any_rt, outbox) == 0


def test_unique_fields_are_checked_against_the_table_and_the_file(rt: Runtime) -> None:
    rt.records.create(SYSTEM_ACTOR, "region", {"code": "PD", "name": "浦东"})
    data = "区域编码,名称\nPD,浦东新区\nXH,徐汇\nXH,徐汇区\n"
    result = import_csv(rt, ACTOR, "region", io.StringIO(data))
    assert [str(e) for e in result.errors] == [
        "row 2: code: a region with code 'PD' already exists",
        "row 4: code: 'XH' is also in row 3; code must be unique"]
    assert count(rt, rt.tables["region"]) == 1


def test_missing_references_are_row_errors(rt: Runtime) -> None:
    data = HEADER + "空调不制冷,aircon,999,\"31.2,121.5\",,,,\n"
    result = import_csv(rt, ACTOR, "work_order", io.StringIO(data))
    assert [(e.row_number, e.field, e.message) for e in result.errors] == [
        (2, "customer", "customer 999 不存在")]


def test_unknown_and_system_columns_stop_the_import(rt: Runtime) -> None:
    data = "id,titel,category,title,标题\n1,a,aircon,b,c\n"
    result = import_csv(rt, ACTOR, "work_order", io.StringIO(data), all_or_nothing=False)
    assert result.created == 0
    assert [str(e) for e in result.errors] == [
        "row 1: id: 'id' is set by dispatchflow and cannot be imported; remove the column",
        "row 1: titel: work_order has no field 'titel'; did you mean 'title'?",
        "row 1: 标题: columns 'title' and '标题' are both the field 'title'"]


def test_a_row_with_more_cells_than_columns_is_an_error(rt: Runtime) -> None:
    result = import_csv(rt, ACTOR, "region", io.StringIO("code,name\nPD,浦东,多余\n"))
    assert [str(e) for e in result.errors] == [
        "row 2: the row has 3 cells but the header has 2 columns"]


def test_non_utf8_files_are_refused_with_how_to_convert(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("code,name\nPD,浦东新区\n".encode("gbk"))
    result = import_csv(rt, ACTOR, "region", path)
    assert [str(e) for e in result.errors] == [
        "file: the file is not UTF-8 (line 2); save it as \"CSV UTF-8\" in Excel, or convert "
        "it, e.g. iconv -f GBK -t UTF-8 in.csv > out.csv"]


def test_empty_file_and_unknown_entity(rt: Runtime) -> None:
    assert [str(e) for e in import_csv(rt, ACTOR, "region", io.StringIO("")).errors] == [
        "file: the file is empty; the first row must name the columns"]
    with pytest.raises(NotFoundError, match="no entity 'regoin'"):
        import_csv(rt, ACTOR, "regoin", io.StringIO("code\n"))


def test_messages_follow_the_locale(rt: Runtime) -> None:
    result = import_csv(rt, ACTOR, "region", io.StringIO("code,name\nP D,浦东\n"), locale="en")
    assert [(e.row_number, e.field) for e in result.errors] == [(2, "code")]
    assert result.errors[0].message.isascii()


def test_row_error_text() -> None:
    assert str(RowError(7, "priority", "bad")) == "row 7: priority: bad"
    assert str(RowError(0, "", "not UTF-8")) == "file: not UTF-8"


# ------------------------------------------------------------------ command line


def run_cli(rt: Runtime, *args: str) -> Any:
    env = {"DATABASE_URL": str(rt.engine.url.render_as_string(hide_password=False)),
           "DISPATCHFLOW_HOME": str(rt.settings.home), "DISPATCHFLOW_SECRET_KEY": "test"}
    return CliRunner().invoke(import_records, list(args), env=env)


def test_cli_imports_and_reports(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(orders_csv(customer(rt)), "utf-8")
    result = run_cli(rt, "work_order", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 3 records\n"


def test_cli_all_or_nothing_prints_row_errors_and_exits_1(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(orders_csv(customer(rt), bad_priority=True), "utf-8")
    result = run_cli(rt, "work_order", str(path))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("row 3: priority: ")
    assert lines[-1] == "nothing imported: 1 row with problems"
    assert count(rt, rt.tables["work_order"]) == 0


def test_cli_partial_imports_the_good_rows_and_exits_1(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(orders_csv(customer(rt), bad_priority=True), "utf-8")
    result = run_cli(rt, "work_order", str(path), "--partial")
    assert result.exit_code == 1
    assert result.stdout == "imported 2 records\n"
    assert result.stderr.splitlines()[-1] == "1 row not imported"


def test_cli_as_an_unknown_user_is_a_usage_error(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("code,name\nPD,浦东\n", "utf-8")
    result = run_cli(rt, "region", str(path), "--as", "nobody")
    assert result.exit_code == 2
    assert result.stderr == ("error: no active user 'nobody' (hint: create it with: "
                             "dispatchflow user add)\n")


# ------------------------------------------------------------------ permissions


@pytest.fixture
def dispatcher(rt: Runtime) -> Actor:
    from dispatchflow.platform.records.users import add_user, load_actor

    add_user(rt.engine, "disp", name="调度员", password="pw", roles=["dispatcher"],
             attributes={"regions": ["PD"]})
    actor = load_actor(rt.engine, "disp", channel="import")
    assert actor is not None
    return actor


def test_rows_outside_the_actors_row_filter_or_field_mask_are_errors(
        rt: Runtime, dispatcher: Actor) -> None:
    pd, xh = (rt.records.create(SYSTEM_ACTOR, "region", {"code": c, "name": c})["id"]
              for c in ("PD", "XH"))
    cid = customer(rt)
    data = ("title,category,customer,location,region,resolution\n"
            f"a,aircon,{cid},\"31.2,121.5\",{pd},\n"
            f"b,aircon,{cid},\"31.2,121.5\",{xh},\n"
            f"c,aircon,{cid},\"31.2,121.5\",{pd},已修好\n")
    result = import_csv(rt, dispatcher, "work_order", io.StringIO(data))
    assert [(e.row_number, e.field) for e in result.errors] == [(3, ""), (4, "resolution")]
    assert result.errors[0].message == "您无权以这些值保存该记录"
    assert count(rt, rt.tables["work_order"]) == 0
    partial = import_csv(rt, dispatcher, "work_order", io.StringIO(data), all_or_nothing=False)
    assert partial.created == 1
    with rt.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.actor).where(
            audit_log.c.entity == "work_order")).scalar_one() == "disp"


def test_an_actor_who_may_not_create_is_refused_before_reading(rt: Runtime) -> None:
    from dispatchflow.errors import PermissionDenied
    from dispatchflow.platform.records.users import add_user

    add_user(rt.engine, "sup", name="主管", password="pw", roles=["area_supervisor"])
    result = run_cli(rt, "work_order", __file__, "--as", "sup")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: you may not create work_order records")
    with pytest.raises(PermissionDenied):
        import_csv(rt, Actor("sup", roles=("area_supervisor",)), "work_order", io.StringIO(""))
