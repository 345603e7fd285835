"""dispatchflow.platform.records.sql_filter: DSL conditions as SQL, on SQLite and PostgreSQL.

Every construct is run against both databases on one fixed data set and must
select the rows written down here, which are also the rows the Python compiled
condition accepts; ``NOT`` of the strict clause must select exactly the rest.
A hypothesis property then does the same for random conditions and random rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import not_

from dispatchflow.dsl import ast
from dispatchflow.dsl.codegen import compile_expression
from dispatchflow.dsl.compiler import App
from dispatchflow.dsl.items import USER_ENTITY
from dispatchflow.errors import DslError
from dispatchflow.platform.records.sql_filter import (
    RecordBinder,
    UnresolvedReference,
    UnsupportedFilter,
    parse_filter,
    to_sql,
)

FilterDb = Any  # the conftest's FilterDb: an app's tables in one database

#: Evaluation time: Monday 2 March 2026, 10:00 in Shanghai (02:00 UTC).
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
H = timedelta(hours=1)
M = timedelta(minutes=1)

SITES = [
    {"id": 1, "zone": "north", "floor": 3, "name": "HQ"},
    {"id": 2, "zone": "south"},
    {"id": 3, "zone": "east", "floor": 1, "name": "old", "deleted": True},
    {"id": 4, "parent": 1, "name": "annex"},
]
TICKETS = [
    {"id": 1, "n": 1, "x": 2.5, "s": "abc", "kind": "a", "flag": True, "done": False,
     "due": NOW - H, "est": 30 * M, "site": 1, "spot": {"lat": 31.2, "lng": 121.5},
     "day": date(2026, 3, 1)},
    {"id": 2, "kind": "b", "done": True},
    {"id": 3, "n": -7, "x": 0.0, "s": "A_b%", "kind": "c", "flag": False, "done": False,
     "due": NOW + 2 * H, "est": 2 * H, "site": 2},
    {"id": 4, "n": 4, "x": -1.5, "s": "", "kind": "a", "flag": True, "done": True,
     "due": NOW + 30 * M, "est": 45 * M, "site": 3},
    {"id": 5, "n": 0, "s": "漏水 leak", "kind": "b", "done": False, "site": 4},
    {"id": 6, "n": 1, "kind": "a", "deleted": True},
]
ALL = {1, 2, 3, 4, 5}
USER = {"id": "u1", "name": "Ann", "roles": ["agent"], "level": 3, "zones": ["north", "east"],
        "site": 1, "nick": "b"}


def entities(app: App) -> dict[str, Any]:
    return {**app.entities, USER_ENTITY: app.user}


def sql_of(app: App, db: FilterDb, expr: Any, user: dict[str, Any], strict: bool = False) -> Any:
    return to_sql(expr, record_root="record", table=db.tables["ticket"], tables=db.tables,
                  entities=entities(app), params={"user": user}, now=NOW,
                  record_entity="ticket", strict=strict)


def site_view(sites: Iterable[dict[str, Any]], sid: int | None) -> dict[str, Any] | None:
    """A site as the Python side sees it: resolved, or just its id when soft-deleted."""
    if sid is None:
        return None
    by_id = {s["id"]: s for s in sites}
    site = by_id[sid]
    if site.get("deleted"):
        return {"id": sid}
    return {"id": sid, "zone": site.get("zone"), "floor": site.get("floor"),
            "name": site.get("name"), "parent": site_view(sites, site.get("parent"))}


def python_ids(expr: Any, tickets: list[dict[str, Any]], sites: list[dict[str, Any]],
               user: dict[str, Any]) -> set[int]:
    fn = compile_expression(expr, ["record", "user"], boolean=True)
    py_user = {**user, "site": site_view(sites, user.get("site"))
               if not isinstance(user.get("site"), dict) else user["site"]}
    out = set()
    for t in tickets:
        if t.get("deleted"):
            continue
        rec = {**t, "site": site_view(sites, t.get("site")), "labels": []}
        if fn(rec, py_user, NOW):
            out.add(t["id"])
    return out


@pytest.fixture(scope="module")
def seeded(sqlf_db: FilterDb) -> FilterDb:
    sqlf_db.reset()
    sqlf_db.insert("site", SITES)
    sqlf_db.insert("ticket", TICKETS)
    return sqlf_db


CASES: list[tuple[str, set[int]]] = [
    # comparisons with null are false, and `not` of false is true
    ("record.n > 0", {1, 4}),
    ("not (record.n > 0)", {2, 3, 5}),
    ("record.n != 1", {3, 4, 5}),
    ("not (record.n != 1)", {1, 2}),
    ("record.n == user.level - 3", {5}),
    ("record.id == 3", {3}),
    ("record.id in [1, 2]", {1, 2}),
    # in / not in, literal lists, user lists, empty lists
    ("record.n in [1, 4]", {1, 4}),
    ("record.n not in [1, 4]", {3, 5}),
    ("record.n in []", set()),
    ("record.n not in []", {1, 3, 4, 5}),
    ("record.kind in [\"a\", \"c\"]", {1, 3, 4}),
    ("\"abc\" in [record.s, \"zzz\"]", {1}),
    ("1 not in [record.n, 5]", {2, 3, 4, 5}),
    ("record.site.zone in user.zones", {1}),
    ("not (record.site.zone in user.zones)", {2, 3, 4, 5}),
    ("record.site.zone not in user.zones", {3}),
    ("user.zones contains record.site.zone", {1}),
    # references: ids, semi-joins, soft-deleted targets read as missing, nesting
    ("record.site == user.site", {1}),
    ("record.site != user.site", {3, 4, 5}),
    ("record.site is null", {2}),
    ("record.site is not null", {1, 3, 4, 5}),
    ("record.site.zone == \"north\"", {1}),
    ("record.site.zone != \"north\"", {3}),
    ("record.site.zone is null", {2, 4, 5}),
    ("record.site.zone is not null", {1, 3}),
    ("record.site.parent.zone == \"north\"", {5}),
    ("record.site.floor + 1 > 3", {1}),
    ("record.site.name == \"old\"", set()),
    ("record.site?.id == 3", {4}),
    ("record.site.parent == user.site", {5}),
    ("user.site.zone == \"north\" and record.n >= 1", {1, 4}),
    ("record.site.zone == user.site.zone", {1}),
    ("record.site.zone in [user.site.zone, \"east\"]", {1}),
    # text: case-sensitive substring with LIKE metacharacters, regex, functions, ordering
    ("record.s contains \"_b%\"", {3}),
    ("record.s contains \"A\"", {3}),
    ("\"b\" in record.s", {1, 3}),
    ("record.s contains \"\"", {1, 3, 4, 5}),
    ("not (record.s contains \"a\")", {2, 3, 4}),
    ("\"b\" not in record.s", {4, 5}),
    ("record.s contains user.nick", {1, 3}),
    ("record.s contains record.site.name", set()),
    ("record.s matches \"^a\"", {1}),
    ("not (record.s matches \"[0-9]\")", ALL),
    ("lower(record.s) == \"a_b%\"", {3}),
    ("upper(record.s) contains \"ABC\"", {1}),
    ("len(record.s) == 0", {4}),
    ("len(record.s) > 3", {3, 5}),
    ("record.s < \"a\"", {3, 4}),
    ("record.s + \"!\" == \"abc!\"", {1}),
    ("record.s + \"水\" contains \"漏水\"", {5}),
    # arithmetic: true division, floored modulo, division by zero is null
    ("record.x / 2 > 1", {1}),
    ("record.n / 0 is null", ALL),
    ("record.n % 3 == 2", {3}),
    ("record.n % 0 is null", ALL),
    ("record.n % (if record.flag then user.level else null) == 1", {1, 4}),
    ("record.x + coalesce(0.0, 0.0) == 2.5 and record.n % coalesce(2, 2) == 1", {1}),
    ("-record.n > 0", {3}),
    ("abs(record.n) > 3", {3, 4}),
    ("record.n * 2.5 == 10", {4}),
    # durations (seconds), datetimes (UTC), dates, geo
    ("record.est > 40m", {3, 4}),
    ("record.est + 15m >= 1h", {3, 4}),
    ("record.est * 2 > 1h", {3, 4}),
    ("record.est / 15m == 2", {1}),
    ("record.due < now()", {1}),
    ("record.due > now() + 1h", {3}),
    ("record.due >= now() - 2h and record.due <= now() + 1h", {1, 4}),
    ("record.day is null", {2, 3, 4, 5}),
    ("record.spot is null", {2, 3, 4, 5}),
    ("record.spot is not null", {1}),
    # booleans, if/then/else, coalesce
    ("record.flag", {1, 4}),
    ("not record.flag", {2, 3, 5}),
    ("record.flag == false", {3}),
    ("record.done", {2, 4}),
    ("record.flag == record.done", {3, 4}),
    ("(record.n > 0) == record.flag", {1, 3, 4}),
    ("(record.n > 0) is null", set()),
    ("(if record.flag then record.n else 10) > 3", {2, 3, 4, 5}),
    ("if record.flag then record.n > 3 else record.s == \"abc\"", {4}),
    ("coalesce(record.n, 100) > 50", {2}),
    ("coalesce(record.flag, true)", {1, 2, 4, 5}),
    ("record.n > 1 or record.s contains \"漏\"", {4, 5}),
    # parts that do not read the record are evaluated in Python
    ("user.level > 2", ALL),
    ("user.level > 5 or record.n == 0", {5}),
    ("hours_between(now(), now() + 3h) == 3 and record.n == 4", {4}),
    ("true", ALL),
]


@pytest.mark.parametrize("source, expected", CASES, ids=[c[0] for c in CASES])
def test_construct_selects_the_rows_python_accepts(sqlf_app: App, seeded: FilterDb, sqlf_check,
                                                    source: str, expected: set[int]) -> None:
    expr = sqlf_check(source)
    assert python_ids(expr, TICKETS, SITES, USER) == expected
    assert seeded.ids("ticket", sql_of(sqlf_app, seeded, expr, USER)) == expected
    strict = sql_of(sqlf_app, seeded, expr, USER, strict=True)
    assert seeded.ids("ticket", strict) == expected
    assert seeded.ids("ticket", not_(strict)) == ALL - expected


@pytest.mark.parametrize("user, expected", [
    ({**USER, "site": {"id": 2}}, {3}),
    ({**USER, "site": {"id": 1, "zone": "north", "floor": 3, "name": "HQ", "parent": None}},
     {1}),
    ({**USER, "site": None}, set()),
    ({**USER, "site": 3}, {4}),
], ids=["id-dict", "resolved", "null", "deleted-target"])
def test_user_reference_may_be_an_id_or_a_record(sqlf_app: App, seeded: FilterDb, sqlf_check,
                                                  user: dict[str, Any],
                                                  expected: set[int]) -> None:
    expr = sqlf_check("record.site == user.site")
    assert seeded.ids("ticket", sql_of(sqlf_app, seeded, expr, user)) == expected


@pytest.mark.parametrize("zones, expected", [(None, set()), ([], set()), (["south"], {3})])
def test_null_and_empty_user_lists(sqlf_app: App, seeded: FilterDb, sqlf_check,
                                   zones: list[str] | None, expected: set[int]) -> None:
    user = {**USER, "zones": zones}
    for source, want in (("record.site.zone in user.zones", expected),
                         ("record.kind in user.zones", set())):
        expr = sqlf_check(source)
        assert python_ids(expr, TICKETS, SITES, user) == want
        assert seeded.ids("ticket", sql_of(sqlf_app, seeded, expr, user)) == want


def test_user_fields_through_an_unresolved_reference_use_a_subquery(
        sqlf_app: App, seeded: FilterDb, sqlf_check) -> None:
    expr = sqlf_check("record.n == user.site.floor - 2")
    assert seeded.ids("ticket", sql_of(sqlf_app, seeded, expr, {**USER, "site": 1})) == {1}
    assert seeded.ids("ticket", sql_of(sqlf_app, seeded, expr, {**USER, "site": 3})) == set()


# ------------------------------------------------------------------ unsupported constructs

UNSUPPORTED = [
    ("distance_km(record.spot, record.spot) < 5km", 1, "distance_km() has no database form"),
    ("record.labels contains \"x\"", 1, "'record.labels' is a list field"),
    ("\"x\" in record.labels", 8, "'record.labels' is a list field"),
    ("len(record.labels) > 0", 1, "len() of a list field"),
    ("record.spot == record.spot", 1, "'record.spot' is a geo point"),
    ("record.due + 1h < now()", 1, "date and time arithmetic"),
    ("hours_between(record.due, now()) > 2", 1, "hours_between() has no database form"),
    ("record.x % 2 == 0.5", 1, "'%' in a filter needs whole numbers"),
    ("record.s matches \"\\\\bab\"", 18, "PostgreSQL reads differently"),
    ("record.n > 1 and starts_with(record.s, \"a\")", 18, "starts_with() has no database form"),
]


@pytest.mark.parametrize("source, column, message", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_constructs_raise_with_position(sqlf_app: App, sqlf_db: FilterDb,
                                                    sqlf_check, source: str, column: int,
                                                    message: str) -> None:
    expr = sqlf_check(source)
    with pytest.raises(UnsupportedFilter) as info:
        sql_of(sqlf_app, sqlf_db, expr, USER)
    err = info.value
    assert isinstance(err, DslError)
    assert message in err.message
    assert (err.line, err.column) == (1, column)
    assert err.hint


def test_unsupported_filter_messages_golden(sqlf_app: App, sqlf_db: FilterDb,
                                           sqlf_check) -> None:
    with pytest.raises(UnsupportedFilter) as info:
        sql_of(sqlf_app, sqlf_db, sqlf_check("record.labels contains \"x\""), USER)
    assert str(info.value) == (
        "'record.labels' is a list field: filters cannot test it in the database (hint: "
        "filter on string, number, enum, date or reference fields; keep list tests "
        "(skills, tags) in rules)")
    with pytest.raises(UnsupportedFilter) as info:
        sql_of(sqlf_app, sqlf_db, sqlf_check("record.due - 1h < now()"), USER)
    assert str(info.value) == (
        "date and time arithmetic on record fields cannot run in the database (hint: keep "
        "the field alone on one side and compute the other: record.due < now() + 2h)")


def test_roots_without_a_value_and_non_conditions_are_refused(sqlf_app: App, sqlf_db: FilterDb,
                                                               sqlf_check) -> None:
    expr = sqlf_check("record.n > user.level")
    with pytest.raises(UnsupportedFilter, match="'user' cannot be used in a filter") as info:
        to_sql(expr, record_root="record", table=sqlf_db.tables["ticket"], tables=sqlf_db.tables,
               entities=entities(sqlf_app), params={}, now=NOW, file="roles.yaml")
    assert (info.value.file, info.value.column, info.value.hint) == (
        "roles.yaml", 12, "a filter can use: record")
    compare = parse_filter(sqlf_app, "ticket", "ticket.n > 1")
    assert isinstance(compare, ast.Compare)
    number = compare.left  # the ticket.n path: a number, not a condition
    with pytest.raises(UnsupportedFilter, match="must be a condition"):
        to_sql(number, record_root="ticket", table=sqlf_db.tables["ticket"],
               tables=sqlf_db.tables, entities=sqlf_app.entities, params={}, now=NOW)


def test_record_entity_is_found_from_the_table(sqlf_app: App, seeded: FilterDb,
                                               sqlf_check) -> None:
    expr = sqlf_check("record.n > 0")
    alias = seeded.tables["ticket"].alias("t")
    clause = to_sql(expr, record_root="record", table=seeded.tables["ticket"],
                    tables=seeded.tables, entities=entities(sqlf_app), params={"user": USER},
                    now=NOW)
    assert seeded.ids("ticket", clause) == {1, 4}
    with pytest.raises(ValueError, match="unknown record entity"):
        to_sql(expr, record_root="record", table=alias.alias("x"), tables={},
               entities=entities(sqlf_app), params={}, now=NOW)


# ------------------------------------------------------------------ ?filter= strings


def test_parse_filter_roots_at_the_entity_and_accepts_record_alias(sqlf_app: App,
                                                                  seeded: FilterDb) -> None:
    for text in ("ticket.n > 0 and ticket.site.zone == \"north\"",
                 "record.n > 0 and record.site.zone == \"north\""):
        expr = parse_filter(sqlf_app, "ticket", text)
        clause = to_sql(expr, record_root="ticket", table=seeded.tables["ticket"],
                        tables=seeded.tables, entities=sqlf_app.entities, params={}, now=NOW)
        assert seeded.ids("ticket", clause) == {1}


@pytest.mark.parametrize("text, column, message, hint", [
    ("ticket.nn > 1", 8, "unknown field 'nn' on ticket", "did you mean 'n'?"),
    ("ticket.n >", 11, "unexpected end of input", None),
    ("ticket.n + 1", 1, "a filter must be a boolean, got number (nullable)", None),
    ("ticket.kind == \"z\"", 16, "'z' is not a value of ticket.kind (a, b, c)", None),
    ("n > 1", 1, "unknown name 'n'", "fields are reached through their record: write ticket.n"),
])
def test_parse_filter_reports_the_first_error(sqlf_app: App, text: str, column: int,
                                             message: str, hint: str | None) -> None:
    with pytest.raises(DslError) as info:
        parse_filter(sqlf_app, "ticket", text)
    err = info.value
    assert err.message.startswith(message)
    assert (err.file, err.line, err.column) == ("filter", 1, column)
    if hint is not None:
        assert err.hint == hint


def test_parse_filter_unknown_entity(sqlf_app: App) -> None:
    with pytest.raises(DslError, match="unknown entity 'tickets'") as info:
        parse_filter(sqlf_app, "tickets", "true")
    assert info.value.hint == "did you mean 'ticket'?"


# ------------------------------------------------------------------ record views


def test_record_binder_resolves_only_what_is_read(sqlf_app: App) -> None:
    calls: list[tuple[str, Any]] = []

    def resolve(entity: str, rid: Any) -> dict[str, Any] | None:
        calls.append((entity, rid))
        return {"id": rid, "zone": "north", "parent": 9} if rid == 1 else None

    binder = RecordBinder(entities(sqlf_app), resolve)
    rec = binder.bind(sqlf_app.entities["ticket"], {"id": 5, "site": 1})
    assert rec.get("site").get("id") == 1 and calls == []
    assert rec.get("site").get("zone") == "north"
    assert rec.get("site").get("parent").get("id") == 9
    assert rec.get("site").get("parent").get("zone") is None  # resolve says missing
    assert calls == [("site", 1), ("site", 9)]
    with pytest.raises(UnresolvedReference, match="needs the referenced record"):
        RecordBinder(entities(sqlf_app)).bind(sqlf_app.entities["ticket"],
                                              {"site": 1}).get("site").get("zone")


# ------------------------------------------------------------------ property: SQL == Python

ZONES = ["north", "south", "east"]
KINDS = ["a", "b", "c"]
TEXTS = ["", "a", "A", "ab", "a_b", "50%", "漏水", "b%"]
ROW_TEXTS = [None, "", "a", "A", "ab", "abc", "A_b%", "50%", "漏水 leak", "b"]
PATTERNS = ["^a", "b$", "a.b", "[0-9]", "水", "^$", "_"]


def q(text: str) -> str:
    return '"' + text + '"'


def _lit_int(v: int) -> str:
    return f"({v})" if v < 0 else str(v)


bool_leaves = st.sampled_from(["record.flag", "record.done", "true", "false",
                               "(record.n > 0)", "(record.s is null)"])
int_leaves = st.one_of(st.integers(-3, 5).map(_lit_int),
                       st.sampled_from(["record.n", "record.n", "record.n", "record.site.floor",
                                        "user.level", "len(record.s)",
                                        "record.site.parent.floor", "record.id"]))


def _if(t: tuple[str, str, str]) -> str:
    return f"(if {t[0]} then {t[1]} else {t[2]})"


int_exprs = st.recursive(int_leaves, lambda c: st.one_of(
    st.tuples(st.sampled_from(["+", "-", "*", "%"]), c, c).map(
        lambda t: f"({t[1]} {t[0]} {t[2]})"),
    c.map(lambda a: f"(-{a})"), c.map(lambda a: f"abs({a})"),
    st.tuples(c, c).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    st.tuples(bool_leaves, c, c).map(_if)), max_leaves=4)
num_exprs = st.recursive(
    st.one_of(int_exprs, st.sampled_from(["0.5", "2.5", "(-1.5)", "0.0", "record.x"])),
    lambda c: st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), c, c).map(
            lambda t: f"({t[1]} {t[0]} {t[2]})"),
        st.tuples(c, c).map(lambda t: f"coalesce({t[0]}, {t[1]})")), max_leaves=4)
str_exprs = st.recursive(
    st.one_of(st.sampled_from(TEXTS).map(q),
              st.sampled_from(["record.s", "record.site.name", "user.nick"])),
    lambda c: st.one_of(
        c.map(lambda a: f"lower({a})"), c.map(lambda a: f"upper({a})"),
        st.tuples(c, c).map(lambda t: f"({t[0]} + {t[1]})"),
        st.tuples(c, c).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        st.tuples(bool_leaves, c, c).map(_if)), max_leaves=3)
CMP = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
EQ = st.sampled_from(["==", "!="])


def _membership(item: tuple[str, list[str]]) -> st.SearchStrategy[str]:
    """``field [not] in <list>``: a list of the field's values, or the user's list."""
    values = st.lists(st.sampled_from(item[1]), max_size=3).map(
        lambda xs: "[" + ", ".join(q(x) for x in xs) + "]")
    return st.tuples(st.just(item[0]), st.booleans(), st.one_of(st.just("user.zones"), values)
                     ).map(lambda t: f"({t[0]} {'not in' if t[1] else 'in'} {t[2]})")


def _in(t: tuple[str, bool, list[str]]) -> str:
    return f"({t[0]} {'not in' if t[1] else 'in'} [{', '.join(t[2])}])"


atoms = st.one_of(
    bool_leaves,
    st.tuples(num_exprs, CMP, num_exprs).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(str_exprs, CMP, str_exprs).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(str_exprs, st.sampled_from(["contains", "in", "not in"]), str_exprs).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(str_exprs, st.sampled_from(PATTERNS)).map(
        lambda t: f"({t[0]} matches {q(t[1])})"),
    st.tuples(st.sampled_from(["record.site.zone", "record.site.parent.zone"]), EQ,
              st.sampled_from(ZONES)).map(lambda t: f"({t[0]} {t[1]} {q(t[2])})"),
    st.tuples(CMP, st.sampled_from(KINDS)).map(lambda t: f"(record.kind {t[0]} {q(t[1])})"),
    st.sampled_from([("record.site.zone", ZONES), ("record.kind", KINDS),
                     ("lower(record.s)", TEXTS)]).flatmap(_membership),
    st.tuples(int_exprs, st.sampled_from(["%", "/"]), int_exprs, CMP, int_exprs).map(
        lambda t: f"(({t[0]} {t[1]} {t[2]}) {t[3]} {t[4]})"),
    st.tuples(int_exprs, st.booleans(), st.lists(st.integers(-3, 5).map(_lit_int),
                                                 max_size=3)).map(_in),
    st.tuples(st.sampled_from(["record.site", "record.site.parent"]), EQ,
              st.sampled_from(["user.site", "record.site", "record.site.parent"])).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.one_of(num_exprs, str_exprs, bool_leaves,
                        st.sampled_from(["record.site", "record.site.zone", "record.spot",
                                         "record.due", "record.est", "record.day",
                                         "user.site.zone"])),
              st.booleans()).map(lambda t: f"({t[0]} is {'not ' if t[1] else ''}null)"),
    st.tuples(st.sampled_from(["record.due", "now() + 15m"]), CMP,
              st.sampled_from(["now()", "now() - 1h", "now() + 30m", "record.due"])).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.sampled_from(["record.est", "record.est + 10m", "record.est * 2",
                               "record.est / 2", "coalesce(record.est, 1h)"]), CMP,
              st.sampled_from(["30m", "1h", "record.est"])).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.sampled_from(["record.est / 15m"]), CMP, int_exprs).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
)
conditions = st.recursive(atoms, lambda c: st.one_of(
    st.tuples(c, st.sampled_from(["and", "or"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    c.map(lambda a: f"(not {a})"),
    st.tuples(c, EQ, c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(c, c, c).map(_if)), max_leaves=5)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy, strategy)  # null one time in three


sites = st.tuples(*[st.fixed_dictionaries({
    "id": st.just(i), "zone": maybe(st.sampled_from(ZONES)), "floor": maybe(st.integers(-2, 4)),
    "name": maybe(st.sampled_from(TEXTS)),
    "parent": st.none() if i == 1 else maybe(st.integers(1, i - 1)),
    "deleted": st.booleans()}) for i in range(1, 5)]).map(list)
tickets = st.lists(st.fixed_dictionaries({
    "n": maybe(st.integers(-4, 6)), "x": maybe(st.sampled_from([0.0, 2.5, -1.5, 3.0, 0.5])),
    "s": st.sampled_from(ROW_TEXTS), "kind": st.sampled_from(KINDS),
    "flag": maybe(st.booleans()), "done": st.booleans(),
    "due": maybe(st.integers(-3, 3).map(lambda k: NOW + k * 30 * M)),
    "est": maybe(st.integers(0, 8).map(lambda k: k * 15 * M)),
    "day": maybe(st.just(date(2026, 3, 1))),
    "site": maybe(st.integers(1, 4)),
    "spot": maybe(st.just({"lat": 31.2, "lng": 121.5})),
    "deleted": st.sampled_from([False, False, False, True])}), max_size=8).map(
    lambda rows: [{**r, "id": i + 1} for i, r in enumerate(rows)])
users = st.fixed_dictionaries({
    "id": st.just("u1"), "name": st.just("Ann"), "roles": st.just(["agent"]),
    "level": maybe(st.integers(-1, 4)),
    "zones": maybe(st.lists(st.sampled_from(ZONES + ["a"]), max_size=3)),
    "site": maybe(st.integers(1, 4)), "nick": maybe(st.sampled_from(TEXTS))})

PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@PROPERTY
@given(source=conditions, site_rows=sites, ticket_rows=tickets, user=users,
       resolved_user_site=st.booleans())
def test_sql_selects_exactly_the_rows_python_accepts(
        sqlf_app: App, sqlf_db: FilterDb, sqlf_check: Callable[[str], Any], source: str,
        site_rows: list[dict[str, Any]], ticket_rows: list[dict[str, Any]],
        user: dict[str, Any], resolved_user_site: bool) -> None:
    expr = sqlf_check(source)
    want = python_ids(expr, ticket_rows, site_rows, user)
    sql_user = dict(user)
    if resolved_user_site:
        sql_user["site"] = site_view(site_rows, user["site"])
    sqlf_db.reset()
    sqlf_db.insert("site", site_rows)
    sqlf_db.insert("ticket", ticket_rows)
    live = {t["id"] for t in ticket_rows if not t["deleted"]}
    context = (source, sqlf_db.dialect, ticket_rows, site_rows, sql_user)
    got = sqlf_db.ids("ticket", sql_of(sqlf_app, sqlf_db, expr, sql_user))
    assert got == want, context
    strict = sql_of(sqlf_app, sqlf_db, expr, sql_user, strict=True)
    assert sqlf_db.ids("ticket", not_(strict)) == live - want, context
