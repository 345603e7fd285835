"""dispatchflow.platform.records.authz with the reference bundle's roles (examples/field-service).

Row filters are checked twice — in SQL on real SQLite and PostgreSQL tables,
and in Python on the same records — and must agree. Field rules, default
deny, token scopes and the system actor are checked against roles.yaml as
written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.sql.elements import False_

from dispatchflow.dsl.compiler import App
from dispatchflow.errors import PermissionDenied
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.authz import Authorizer, authorizer_for, scope_allows
from dispatchflow.platform.records.sql_filter import (
    UnresolvedReference,
    UnsupportedFilter,
    parse_filter,
)

FilterDb = Any  # the conftest's FilterDb: an app's tables in one database

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
POINT = {"lat": 31.23, "lng": 121.47}
COSTS = {"cost_labor", "cost_parts", "cost_surcharge"}
SYSTEM_FIELDS = {"id", "created_at", "updated_at", "created_by", "tags"}

REGIONS = [
    {"id": 1, "code": "021", "name": "Shanghai"},
    {"id": 2, "code": "0755", "name": "Shenzhen"},
    {"id": 3, "code": "010", "name": "Beijing (closed)", "deleted": True},
]
CUSTOMERS = [
    {"id": 21, "name": "王女士", "phone": "13800000021", "tier": "VIP", "region": 1},
    {"id": 22, "name": "Acme", "phone": "13800000022", "tier": "normal", "region": 2},
]
TECHNICIANS = [
    {"id": 11, "name": "李师傅", "level": 3, "region": 1, "location": POINT, "on_duty": True},
    {"id": 12, "name": "Zhang", "level": 2, "region": 2, "location": POINT, "on_duty": False},
]
WORK_ORDERS = [
    {"id": 101, "title": "厨房漏水", "customer": 21, "region": 1, "assignee": 11,
     "contact_phone": "13900000101", "cost_labor": 80.0},
    {"id": 102, "title": "AC broken", "customer": 22, "region": 2, "assignee": 12},
    {"id": 103, "title": "No region yet", "customer": 21},
    {"id": 104, "title": "Closed region", "customer": 22, "region": 3, "assignee": 11},
    {"id": 105, "title": "Deleted", "customer": 21, "region": 1, "assignee": 11,
     "deleted": True},
]


def order(**fields: Any) -> dict[str, Any]:
    return {"category": "plumbing", "priority": "P3", "status": "new", "channel": "web",
            "location": POINT, **fields}


def tech(**kw: Any) -> Actor:
    return Actor("t11", "李师傅", ("technician",), {"technician": 11}, **kw)


def dispatcher(regions: list[str] | None = None, **kw: Any) -> Actor:
    attributes = {} if regions is None else {"regions": regions}
    return Actor("d1", "Dispatcher", ("dispatcher",), attributes, **kw)


FINANCE = Actor("f1", "Finance", ("finance",))
CUSTOMER = Actor("c21", "王女士", ("customer",), {"customer": 21})


@pytest.fixture(scope="module")
def authz(authz_app: App) -> Authorizer:
    return Authorizer(authz_app)


@pytest.fixture(scope="module")
def orders_db(authz_db: FilterDb) -> FilterDb:
    authz_db.reset()
    authz_db.insert("region", REGIONS)
    authz_db.insert("customer", CUSTOMERS)
    authz_db.insert("technician", TECHNICIANS)
    authz_db.insert("work_order", [order(**o) for o in WORK_ORDERS])
    return authz_db


def visible(authz: Authorizer, db: FilterDb, actor: Actor, entity: str = "work_order",
            action: str = "read") -> tuple[set[int], set[int]]:
    """(ids by SQL, ids by Python) of the live records ``actor`` may ``action``."""
    clause = authz.row_clause(actor, entity, action, db.tables[entity], db.tables, now=NOW)
    by_sql = db.ids(entity, clause)
    by_python = {r["id"] for r in db.records(entity)
                 if authz.row_allowed(actor, entity, action, r, resolve=db.resolve, now=NOW)}
    return by_sql, by_python


# ------------------------------------------------------------------ rows


def test_technician_sees_only_own_orders(authz: Authorizer, orders_db: FilterDb) -> None:
    assert visible(authz, orders_db, tech()) == ({101, 104}, {101, 104})
    assert visible(authz, orders_db, tech(), action="complete") == ({101, 104}, {101, 104})
    as_dict = Actor("t12", roles=("technician",), attributes={"technician": {"id": 12}})
    assert visible(authz, orders_db, as_dict) == ({102}, {102})
    no_profile = Actor("t0", roles=("technician",))
    assert visible(authz, orders_db, no_profile) == (set(), set())


def test_technician_profile_rows_use_the_optional_id(authz: Authorizer,
                                                     orders_db: FilterDb) -> None:
    assert visible(authz, orders_db, tech(), "technician") == ({11}, {11})
    assert visible(authz, orders_db, tech(), "technician", "update") == ({11}, {11})


def test_dispatcher_region_filter_goes_through_region_code(authz: Authorizer,
                                                           orders_db: FilterDb) -> None:
    # 104's region is soft-deleted: its code reads as missing, in SQL and in Python alike.
    assert visible(authz, orders_db, dispatcher(["021"])) == ({101, 103}, {101, 103})
    assert visible(authz, orders_db, dispatcher(["021", "0755", "010"])) == (
        {101, 102, 103}, {101, 102, 103})
    # No regions attribute: the user field's default ([]) applies.
    assert visible(authz, orders_db, dispatcher()) == ({103}, {103})
    assert visible(authz, orders_db, dispatcher(["0755"]), "technician") == ({12}, {12})


def test_dispatcher_filter_needs_a_resolver_for_referenced_regions(
        authz: Authorizer, orders_db: FilterDb) -> None:
    records = {r["id"]: r for r in orders_db.records("work_order")}
    assert authz.row_allowed(dispatcher(["021"]), "work_order", "read", records[103])
    with pytest.raises(UnresolvedReference):
        authz.row_allowed(dispatcher(["021"]), "work_order", "read", records[101])
    resolved = {**records[101], "region": {"id": 1, "code": "021", "name": "Shanghai"}}
    assert authz.row_allowed(dispatcher(["021"]), "work_order", "read", resolved)
    assert not authz.row_allowed(dispatcher(["0755"]), "work_order", "read", resolved)


def test_customer_sees_own_requests_and_own_account(authz: Authorizer,
                                                    orders_db: FilterDb) -> None:
    assert visible(authz, orders_db, CUSTOMER) == ({101, 103}, {101, 103})
    assert visible(authz, orders_db, CUSTOMER, "customer") == ({21}, {21})
    assert visible(authz, orders_db, CUSTOMER, action="cancel") == ({101, 103}, {101, 103})


def test_roles_without_rows_see_everything_and_roles_add_up(authz: Authorizer,
                                                            orders_db: FilterDb) -> None:
    assert authz.row_clause(FINANCE, "work_order", "read", orders_db.tables["work_order"],
                            orders_db.tables) is None
    assert visible(authz, orders_db, FINANCE) == ({101, 102, 103, 104}, {101, 102, 103, 104})
    both = Actor("x", roles=("technician", "customer"),
                 attributes={"technician": 12, "customer": 21})
    assert visible(authz, orders_db, both) == ({101, 102, 103}, {101, 102, 103})
    # update: the technician and the customer grant it, each through its own filter
    assert visible(authz, orders_db, both, action="update") == ({101, 102, 103},
                                                                {101, 102, 103})
    # accept: only the technician role grants it
    assert visible(authz, orders_db, both, action="accept") == ({102}, {102})


def test_require_row(authz: Authorizer, orders_db: FilterDb) -> None:
    records = {r["id"]: r for r in orders_db.records("work_order")}
    authz.require_row(tech(), "work_order", "complete", records[101])
    with pytest.raises(PermissionDenied, match="you may not complete this work_order record"):
        authz.require_row(tech(), "work_order", "complete", records[102])


# ------------------------------------------------------------------ default deny


def test_default_deny_for_unlisted_entities_actions_and_roles(authz: Authorizer,
                                                              orders_db: FilterDb) -> None:
    assert not authz.can(tech(), "region", "read")
    assert authz.readable_fields(tech(), "region") == frozenset()
    clause = authz.row_clause(tech(), "region", "read", orders_db.tables["region"],
                              orders_db.tables)
    assert isinstance(clause, False_)
    assert orders_db.ids("region", clause) == set()
    assert not authz.row_allowed(tech(), "region", "read", {"id": 1, "code": "021"})
    with pytest.raises(PermissionDenied) as info:
        authz.require(tech(), "region", "read")
    assert str(info.value) == ("you may not read region records (hint: ask an administrator "
                               "for a role that allows it)")
    assert not authz.can(FINANCE, "asset", "read")
    assert not authz.can(FINANCE, "work_order", "update")
    assert not authz.can(tech(), "work_order", "delete")
    assert not authz.can(Actor("x", roles=("no_such_role",)), "work_order", "read")
    assert not authz.can(Actor("anonymous"), "work_order", "read")
    assert not authz.can(dispatcher(["021"]), "no_such_entity", "read")
    assert authz.readable_fields(dispatcher(), "no_such_entity") == frozenset()


# ------------------------------------------------------------------ fields


def test_finance_reads_costs_but_never_contact_phones(authz: Authorizer,
                                                      authz_app: App) -> None:
    readable = authz.readable_fields(FINANCE, "work_order")
    assert COSTS <= readable
    assert "contact_phone" not in readable
    assert readable == SYSTEM_FIELDS | {
        "title", "category", "priority", "status", "channel", "customer", "region", "assignee",
        "accepted_at", "completed_at", "rating"} | COSTS
    assert authz.readable_fields(FINANCE, "customer") == SYSTEM_FIELDS | {"name", "tier",
                                                                          "region"}
    assert authz.writable_fields(FINANCE, "work_order") == frozenset()
    masked = authz.mask(FINANCE, "work_order", {
        "id": 101, "row_version": 3, "title": "厨房漏水", "contact_phone": "13900000101",
        "cost_labor": 80.0, "description": "secret details",
        "customer": {"id": 21, "name": "王女士", "phone": "13800000021", "tier": "VIP"}})
    assert masked == {"id": 101, "row_version": 3, "title": "厨房漏水", "cost_labor": 80.0,
                      "customer": {"id": 21, "name": "王女士", "tier": "VIP"}}


def test_technician_fields(authz: Authorizer, authz_app: App) -> None:
    all_fields = set(authz_app.entities["work_order"].fields)
    readable = authz.readable_fields(tech(), "work_order")
    assert readable == all_fields - COSTS  # read "*" includes the sensitive contact_phone
    assert authz.writable_fields(tech(), "work_order") == {
        "resolution", "photos", "signature", "customer_absent", "asset_code"}
    assert authz.writable_fields(tech(), "work_order", "create") == frozenset()
    assert authz.readable_fields(tech(), "customer") == SYSTEM_FIELDS | {
        "name", "tier", "address", "location"}
    # spare_part: no read list, so every non-sensitive field; unit_cost is sensitive (and hidden)
    assert "unit_cost" not in authz.readable_fields(tech(), "spare_part")
    assert "stock" in authz.readable_fields(tech(), "spare_part")
    # a reference to an entity the role may not read is cut to its id
    masked = authz.mask(tech(), "work_order", {"id": 1, "region": {"id": 1, "code": "021"}})
    assert masked == {"id": 1, "region": {"id": 1}}


def test_default_field_rules_and_hide(authz: Authorizer, authz_app: App) -> None:
    # dispatcher on asset: no fields spec: all non-sensitive fields, writable = readable
    asset = {f.name for f in authz_app.entities["asset"].fields.values()}
    assert authz.readable_fields(dispatcher(), "asset") == asset
    assert authz.writable_fields(dispatcher(), "asset") == asset - SYSTEM_FIELDS
    # dispatcher work_order: read "*" minus hidden costs; write list minus nothing
    readable = authz.readable_fields(dispatcher(), "work_order")
    assert not COSTS & readable and "contact_phone" in readable
    writable = authz.writable_fields(dispatcher(), "work_order")
    assert "contact_phone" in writable and "status" not in writable
    # customer: sees its order but not the internal fields it hides
    readable = authz.readable_fields(CUSTOMER, "work_order")
    assert not {"required_level", "repeat_repair", "last_repair_at", "region"} & readable
    assert "tier" not in authz.readable_fields(CUSTOMER, "customer")
    assert "tier" not in authz.writable_fields(CUSTOMER, "customer")
    # roles add up: technician reads contact_phone, finance reads costs
    both = Actor("x", roles=("technician", "finance"), attributes={"technician": 11})
    assert {"contact_phone"} | COSTS <= authz.readable_fields(both, "work_order")


def test_system_fields_are_readable_never_writable(authz: Authorizer) -> None:
    for actor in (tech(), FINANCE, CUSTOMER, dispatcher(), SYSTEM_ACTOR):
        assert SYSTEM_FIELDS <= authz.readable_fields(actor, "work_order")
        assert not SYSTEM_FIELDS & authz.writable_fields(actor, "work_order")


def test_require_filter_refuses_hidden_fields(authz: Authorizer, authz_app: App) -> None:
    ok = parse_filter(authz_app, "work_order", "work_order.cost_labor > 100")
    authz.require_filter(FINANCE, "work_order", ok)
    for text in ("work_order.contact_phone == \"13900000101\"",
                 "work_order.customer.phone contains \"138\"",
                 "work_order.description contains \"x\""):
        with pytest.raises(PermissionDenied, match="you may not filter on work_order."):
            authz.require_filter(FINANCE, "work_order", parse_filter(authz_app, "work_order",
                                                                     text))
    with pytest.raises(PermissionDenied, match="work_order.region.code"):
        authz.require_filter(tech(), "work_order",
                             parse_filter(authz_app, "work_order", "record.region.code == \"x\""))


# ------------------------------------------------------------------ tokens and system


def test_token_scopes_restrict_but_never_extend(authz: Authorizer, orders_db: FilterDb) -> None:
    read_only = dispatcher(["021"], scopes=("work_order:read",))
    assert authz.can(read_only, "work_order", "read")
    assert not authz.can(read_only, "work_order", "update")
    assert not authz.can(read_only, "customer", "read")
    assert authz.readable_fields(read_only, "customer") == frozenset()
    assert authz.writable_fields(read_only, "work_order") == frozenset()
    assert visible(authz, orders_db, read_only) == ({101, 103}, {101, 103})
    assert visible(authz, orders_db, read_only, action="update") == (set(), set())
    with pytest.raises(PermissionDenied) as info:
        authz.require(read_only, "work_order", "update")
    assert str(info.value) == ("this API token may not update work_order records (hint: use "
                               "a token with the scope work_order:update)")
    customers_only = dispatcher(scopes=("customer:*",))
    assert authz.can(customers_only, "customer", "update")
    assert not authz.can(customers_only, "work_order", "read")
    everything = tech(scopes=("*",))
    assert authz.can(everything, "work_order", "accept")
    assert not authz.can(everything, "region", "read")
    with pytest.raises(PermissionDenied, match="you may not read region records"):
        authz.require(everything, "region", "read")
    assert scope_allows((), "x", "read")
    assert scope_allows(("*:read",), "x", "read")
    assert not scope_allows(("x:update",), "x", "read")


def test_system_actor_may_do_everything(authz: Authorizer, orders_db: FilterDb,
                                        authz_app: App) -> None:
    assert authz.can(SYSTEM_ACTOR, "region", "delete")
    authz.require(SYSTEM_ACTOR, "work_order", "anything")
    assert authz.row_clause(SYSTEM_ACTOR, "work_order", "read",
                            orders_db.tables["work_order"], orders_db.tables) is None
    assert authz.row_allowed(SYSTEM_ACTOR, "work_order", "update", {"id": 1})
    fields = set(authz_app.entities["work_order"].fields)
    assert authz.readable_fields(SYSTEM_ACTOR, "work_order") == fields
    assert authz.writable_fields(SYSTEM_ACTOR, "work_order") == fields - SYSTEM_FIELDS
    record = {"id": 1, "row_version": 2, "contact_phone": "139", "cost_parts": 3.0}
    assert authz.mask(SYSTEM_ACTOR, "work_order", record) == record


# ------------------------------------------------------------------ construction


def test_authorizer_is_shared_per_app_version(authz_app: App) -> None:
    assert authorizer_for(authz_app) is authorizer_for(authz_app)


def test_untranslatable_row_filter_fails_at_construction(
        compile_ok: Callable[..., Any]) -> None:
    app = compile_ok({"roles.yaml": """\
        roles:
          dispatcher:
            permissions:
              technician:
                allow: [read]
                rows: record.skills contains "plumbing"
        """})
    with pytest.raises(UnsupportedFilter) as info:
        Authorizer(app)
    err = info.value
    assert (err.file, err.line, err.column) == ("roles.yaml", 6, 15)
    assert err.message == ("'record.skills' is a list field: filters cannot test it in the "
                           "database")


def test_row_filter_with_now_and_user_fields(compile_ok: Callable[..., Any],
                                             authz_fresh_db: Callable[[App], FilterDb]) -> None:
    app = compile_ok({"roles.yaml": """\
        user_fields:
          level: {type: integer, default: 1}
        roles:
          planner:
            permissions:
              work_order:
                allow: [read]
                rows: record.scheduled_at > now() - 1d and record.required_level <= user.level
        """})
    authz = Authorizer(app)
    db = authz_fresh_db(app)
    hour = timedelta(hours=1)
    db.insert("work_order", [
        {"id": 1, "title": "a", "scheduled_at": NOW - 2 * hour, "required_level": 1},
        {"id": 2, "title": "b", "scheduled_at": NOW - 48 * hour, "required_level": 1},
        {"id": 3, "title": "c", "required_level": 1},
        {"id": 4, "title": "d", "scheduled_at": NOW + hour, "required_level": 2},
        {"id": 5, "title": "e", "scheduled_at": NOW + hour},
    ])
    senior = Actor("p", roles=("planner",), attributes={"level": 2})
    assert visible(authz, db, senior) == ({1, 4}, {1, 4})
    assert visible(authz, db, Actor("q", roles=("planner",))) == ({1}, {1})  # default level 1


# ------------------------------------------------------------------ rows_via and the mask


def linking(db: FilterDb) -> Callable[[str, str, Any], list[dict[str, Any]]]:
    """``referrers`` over the test database: live records whose ``field`` holds ``rid``."""
    def referrers(entity: str, field: str, rid: Any) -> list[dict[str, Any]]:
        return [r for r in db.records(entity) if r.get(field) == rid]
    return referrers


def test_technician_reads_only_the_customers_of_own_orders(authz: Authorizer,
                                                           orders_db: FilterDb) -> None:
    def customers(actor: Actor) -> tuple[set[int], set[int]]:
        clause = authz.row_clause(actor, "customer", "read", orders_db.tables["customer"],
                                  orders_db.tables, now=NOW)
        by_python = {r["id"] for r in orders_db.records("customer") if authz.row_allowed(
            actor, "customer", "read", r, resolve=orders_db.resolve, now=NOW,
            referrers=linking(orders_db))}
        return orders_db.ids("customer", clause), by_python

    other = Actor("t12", roles=("technician",), attributes={"technician": 12})
    assert customers(other) == ({22}, {22})  # order 102
    assert customers(tech()) == ({21, 22}, {21, 22})  # orders 101 and 104 (105 is deleted)
    assert customers(Actor("t0", roles=("technician",))) == (set(), set())
    # Without referrers the Python side cannot tell: the rows_via grant allows nothing.
    assert not authz.row_allowed(other, "customer", "read", {"id": 22, "name": "Acme"})


def test_mask_recurses_into_embedded_records_and_cuts_unreadable_ones(
        authz: Authorizer, orders_db: FilterDb) -> None:
    customer = {"id": 22, "name": "Acme", "phone": "13800000022", "tier": "normal",
                "region": {"id": 2, "code": "0755", "name": "Shenzhen"}}
    technician = {"id": 12, "name": "Zhang", "phone": "13900000012", "level": 2,
                  "region": None, "open_tasks": 1}
    record = {"id": 102, "row_version": 2, "title": "AC broken", "customer": customer,
              "assignee": technician, "cost_labor": 10.0}
    as_tech = authz.mask(Actor("t12", roles=("technician",), attributes={"technician": 12}),
                         "work_order", record, resolve=orders_db.resolve, now=NOW,
                         referrers=linking(orders_db))
    assert as_tech["customer"] == {"id": 22, "name": "Acme", "tier": "normal"}
    assert as_tech["assignee"]["phone"] == "13900000012" and "cost_labor" not in as_tech
    as_customer = authz.mask(Actor("c22", roles=("customer",), attributes={"customer": 22}),
                             "work_order", record, resolve=orders_db.resolve, now=NOW)
    assert as_customer["assignee"] == {"id": 12}  # customers may not read technicians
    assert "tier" not in as_customer["customer"]
    assert as_customer["customer"]["region"] == {"id": 2}  # nor regions
    # A dispatcher of other regions: the technician's row is hidden, so it is cut.
    as_dispatcher = authz.mask(dispatcher(["021"]), "work_order",
                               {**record, "assignee": {**technician, "region": 2}},
                               resolve=orders_db.resolve, now=NOW)
    assert as_dispatcher["assignee"] == {"id": 12}
    # Without the linked rows needed to decide, a row filter cuts too.
    assert authz.mask(tech(), "work_order", record, now=NOW)["customer"] == {"id": 22}


ROWS_VIA_ROLES = """\
roles:
  tech:
    permissions:
      customer:
        allow: [read]
        rows_via: {via}
"""


@pytest.mark.parametrize(("via", "code", "message"), [
    ("work_order.customer", None, None),
    ("job.customer", "E1021", "unknown entity 'job'"),
    ("work_order.owner", "E3001", "unknown field 'owner' on work_order"),
    ("work_order.title", "E1014", "work_order.title does not reference customer"),
])
def test_rows_via_names_a_reference_to_the_entity(compile_files: Callable[..., Any], via: str,
                                                  code: str | None, message: str | None) -> None:
    result = compile_files({"roles.yaml": ROWS_VIA_ROLES.format(via=via)})
    errors = [(d.code, d.message, d.line, d.column) for d in result.diagnostics if d.is_error]
    assert errors == ([] if code is None else [(code, message, 6, 19)])


def test_rows_via_takes_one_hop(compile_files: Callable[..., Any]) -> None:
    chained = ROWS_VIA_ROLES.format(via="work_order.customer") + (
        "  lead:\n    permissions:\n      work_order:\n        allow: [read]\n"
        "        rows_via: customer.name\n")
    errors = [d for d in compile_files({"roles.yaml": chained}).diagnostics if d.is_error]
    hop = [d for d in errors if d.line == 6]
    assert [(d.code, d.message, d.hint) for d in hop] == [(
        "E1014", "rows_via goes through work_order, whose rows role 'lead' limits with "
        "rows_via too", "limit work_order with a rows filter instead: rows_via takes one hop")]
