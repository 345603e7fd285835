"""Property: which rows a ``?filter=`` matches depends only on what the caller may read
(issue #22, finding 4).

For every role of the reference bundle and a random filter over work orders
(comparisons, ``matches``, ``in``, ``is null``, ``and``/``or``/``not``, through
references up to two hops), the list either refuses the filter (it names a
field the role cannot read) or returns exactly the visible orders for which the
filter holds when evaluated in Python on the role's view of the data: fields it
cannot read are null, and a linked record it cannot read (entity not granted,
or row filter false) is missing, so its fields are null too. A filter whose
matches moved with a hidden value would reveal that value; this one cannot.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatchflow.dsl.codegen import compile_expression
from dispatchflow.errors import PermissionDenied
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.sql_filter import parse_filter
from dispatchflow.platform.records.views import RecordBinder

ROLES = ("admin", "dispatcher", "area_supervisor", "technician", "finance", "customer")

TEXT_PATHS = ("work_order.title", "work_order.contact_phone",
              "work_order.customer.name", "work_order.customer.phone",
              "work_order.customer.region.code",
              "work_order.assignee.name", "work_order.assignee.phone",
              "work_order.assignee.region.code", "work_order.region.code")
NUMBER_PATHS = ("work_order.cost_labor", "work_order.assignee.level",
                "work_order.assignee.open_tasks", "work_order.required_level")
TEXTS = ("PD", "XH", "13912345678", "13800000001", "王师傅", "钱师傅", "张伟", "空调不制冷")
ENUMS = (("work_order.priority", ("P1", "P3")), ("work_order.customer.tier", ("VIP", "normal")))
PATTERNS = ("^139", "^138", "8$", "^1", "师傅", "^P", "V")

text_atoms = st.one_of(
    st.tuples(st.sampled_from(ENUMS), st.sampled_from(["==", "!="]), st.integers(0, 1)).map(
        lambda t: f'({t[0][0]} {t[1]} "{t[0][1][t[2]]}")'),
    st.tuples(st.sampled_from(TEXT_PATHS), st.sampled_from(["==", "!="]),
              st.sampled_from(TEXTS)).map(lambda t: f'({t[0]} {t[1]} "{t[2]}")'),
    st.tuples(st.sampled_from(TEXT_PATHS), st.sampled_from(PATTERNS)).map(
        lambda t: f'({t[0]} matches "{t[1]}")'),
    st.tuples(st.sampled_from(TEXT_PATHS), st.lists(st.sampled_from(TEXTS), min_size=1,
                                                    max_size=3)).map(
        lambda t: f"({t[0]} in [{', '.join(chr(34) + x + chr(34) for x in t[1])}])"),
)
number_atoms = st.tuples(st.sampled_from(NUMBER_PATHS), st.sampled_from(["<", ">=", "=="]),
                         st.sampled_from(["0", "2", "3", "100", "120.5"])).map(
    lambda t: f"({t[0]} {t[1]} {t[2]})")
null_atoms = st.tuples(st.sampled_from(TEXT_PATHS + NUMBER_PATHS + ("work_order.customer.tier",) +
                                       ("work_order.assignee", "work_order.customer.region")),
                       st.booleans()).map(lambda t: f"({t[0]} is {'not ' if t[1] else ''}null)")
filters = st.recursive(st.one_of(text_atoms, number_atoms, null_atoms), lambda c: st.one_of(
    st.tuples(c, st.sampled_from(["and", "or"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    c.map(lambda a: f"(not {a})")), max_leaves=4)


def _world(rt: Runtime) -> dict[str, Any]:
    """Two regions; customers and technicians in each (one technician in none); orders
    pairing them every way, in both regions."""
    create = rt.records.create
    a = SYSTEM_ACTOR
    pd = create(a, "region", {"code": "PD", "name": "浦东新区"})["id"]
    xh = create(a, "region", {"code": "XH", "name": "徐汇区"})["id"]
    customers = [create(a, "customer", {"name": n, "phone": p, "tier": t, "region": r})["id"]
                 for n, p, t, r in (("张伟", "13800000001", "VIP", pd),
                                    ("李娜", "13912345670", "normal", xh))]
    techs = [create(a, "technician", {"name": n, "phone": p, "level": lv, "region": r,
                                      "location": {"lat": 31.2, "lng": 121.5}})["id"]
             for n, p, lv, r in (("王师傅", "13800000008", 3, pd), ("钱师傅", "13912345678", 2, xh),
                                 ("赵师傅", None, 4, None))]
    orders = []
    for i, (cust, tech, region) in enumerate([(0, 0, pd), (0, 1, pd), (1, 1, xh), (1, 2, None),
                                              (0, None, xh), (1, 0, pd)]):
        orders.append(create(a, "work_order", {
            "title": "空调不制冷" if i % 2 else f"漏水 {i}", "category": "aircon",
            "customer": customers[cust], "region": region,
            "assignee": techs[tech] if tech is not None else None,
            "location": {"lat": 31.2, "lng": 121.5}, "cost_labor": 100.0 + 10 * i,
            "contact_phone": "13912345678" if i % 3 == 0 else None})["id"])
    return {"customers": customers, "techs": techs, "orders": orders}


def _actor(role: str, world: dict[str, Any]) -> Actor:
    attrs: dict[str, Any] = {"regions": ["PD"]}
    if role == "technician":
        attrs["technician"] = world["techs"][1]
    if role == "customer":
        attrs["customer"] = world["customers"][0]
    return Actor(f"{role}-p", roles=(role,), attributes=attrs)


class RoleView:
    """The data as ``actor`` may see it: unreadable fields null, unreadable records missing."""

    def __init__(self, rt: Runtime, actor: Actor) -> None:
        self.rt = rt
        self.actor = actor
        self.stored: dict[tuple[str, int], dict[str, Any]] = {}

    def full(self, entity: str, record_id: int) -> dict[str, Any] | None:
        key = (entity, record_id)
        if key not in self.stored:
            self.stored[key] = self.rt.records.get(SYSTEM_ACTOR, entity, record_id)
        return self.stored[key]

    def resolve_full(self, entity: str, record_id: Any) -> dict[str, Any] | None:
        return None if record_id is None else self.full(entity, int(record_id))

    def referrers(self, entity: str, field: str, record_id: Any) -> list[dict[str, Any]]:
        """The live ``entity`` records linking to ``record_id`` (``rows_via`` grants)."""
        page = self.rt.records.list(SYSTEM_ACTOR, entity, limit=100,
                                    filter=f"{entity}.{field}.id == {int(record_id)}")
        return [self.full(entity, item["id"]) or {} for item in page.items]

    def seen(self, entity: str, record_id: Any) -> dict[str, Any] | None:
        record = None if record_id is None else self.full(entity, int(record_id))
        if record is None or not self.rt.authz.row_allowed(
                self.actor, entity, "read", record, resolve=self.resolve_full,
                referrers=self.referrers):
            return None
        readable = self.rt.authz.readable_fields(self.actor, entity)
        return {k: (v if k in readable else None) for k, v in record.items()}

    def matches(self, expr: Any, record_id: int) -> bool:
        seen = self.seen("work_order", record_id)
        if seen is None:
            return False
        binder = RecordBinder(self.rt.app.entities, self.seen)
        fn = compile_expression(expr, ["work_order"], boolean=True)
        return bool(fn(binder.bind(self.rt.app.entities["work_order"], seen), self.rt.clock()))


PROPERTY = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def test_filter_matches_depend_only_on_what_the_role_may_read(rt: Runtime) -> None:
    world = _world(rt)
    views = {role: RoleView(rt, _actor(role, world)) for role in ROLES}

    @PROPERTY
    @given(role=st.sampled_from(ROLES), source=filters)
    def check(role: str, source: str) -> None:
        view = views[role]
        try:
            page = rt.records.list(view.actor, "work_order", filter=source, limit=100)
        except PermissionDenied:
            return  # the filter names a field the role cannot read: refused, nothing matched
        expr = parse_filter(rt.app, "work_order", source)
        want = {i for i in world["orders"] if view.matches(expr, i)}
        assert {item["id"] for item in page.items} == want, (role, source)

    check()
