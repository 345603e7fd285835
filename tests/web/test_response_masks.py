"""Every response shape of the API, as every role of the reference bundle, reveals no
field the role may not read, at any depth (issue #22, findings 2 and 8).

The walk takes each route a role can reach — list, read, create, update, a flow
action's result, timeline, dispatch, SLA, offers, me, escalation acknowledgement —
and checks each record in the answer against the bundle's rules: its keys are
fields the role reads; a linked record embedded in it is one whose row the role
may read (else it must be cut to its id) and is checked the same way, by its
own entity's rules; dispatch candidates are shown only to roles that read the
pool, and only for rows they may read.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor

ROLES = ("admin", "dispatcher", "area_supervisor", "technician", "finance", "customer")

#: A value to write for the first of these fields a role may update on an order.
UPDATES = {"title": "改过的标题", "priority": "P2", "resolution": "已更换压缩机",
           "description": "改过"}

def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


NEW_ORDER = {"title": "洗衣机不排水", "category": "aircon",
             "location": {"lat": 31.22, "lng": 121.52}}


class Walk:
    """Checks responses against the rules of one role (``actor``)."""

    def __init__(self, rt: Runtime, actor: Actor) -> None:
        self.rt = rt
        self.actor = actor
        self.checked = 0

    def readable_row(self, entity: str, record_id: int) -> bool:
        table = self.rt.tables[entity]
        clause = self.rt.authz.row_clause(self.actor, entity, "read", table, self.rt.tables)
        query = table.select().where(table.c.id == record_id, table.c.deleted_at.is_(None))
        if clause is not None:
            query = query.where(clause)
        with self.rt.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def record(self, entity: str, rec: dict[str, Any], where: str) -> None:
        """``rec`` shows only what the role may read of this ``entity`` record, recursively."""
        self.checked += 1
        readable = self.rt.authz.readable_fields(self.actor, entity) | {"row_version"}
        extra = set(rec) - readable
        assert not extra, f"{where}: {entity} fields {sorted(extra)} are not readable"
        fields = self.rt.app.entities[entity].fields
        for name, value in rec.items():
            f = fields.get(name)
            if f is None or f.kind != "reference" or not isinstance(value, dict):
                continue
            if set(value) == {"id"}:
                continue
            target = f.reference or ""
            assert self.rt.authz.can(self.actor, target, "read") and \
                self.readable_row(target, value["id"]), \
                f"{where}.{name}: embeds {target} {value['id']}, which the role may not read"
            self.record(target, value, f"{where}.{name}")

    def dispatch(self, body: dict[str, Any], where: str) -> None:
        reads_pool = self.rt.authz.can(self.actor, "technician", "read")
        for rnd in body["rounds"]:
            decision = rnd["decision"] or {}
            if not reads_pool:
                assert set(decision) <= {"policy"}, f"{where}: decision {sorted(decision)}"
                for offer in rnd["offers"]:
                    assert not {"candidate", "score", "rank", "reason"} & set(offer), where
                continue
            for cand in decision.get("ranked", []):
                if set(cand) != {"id"}:
                    assert self.readable_row("technician", cand["id"]), \
                        f"{where}: scores of technician {cand['id']}"
            for offer in rnd["offers"]:
                if offer.get("score") is not None:
                    assert self.readable_row("technician", offer["candidate"]), where

    def timeline(self, entity: str, items: list[dict[str, Any]], where: str) -> None:
        readable = self.rt.authz.readable_fields(self.actor, entity)
        reads_pool = self.rt.authz.can(self.actor, "technician", "read")
        for item in items:
            if item["kind"] == "change":
                assert set(item["changes"]) <= readable, f"{where}: {sorted(item['changes'])}"
            elif item["kind"] in ("dispatch", "reassign") and not reads_pool:
                assert item["detail"] == {}, f"{where}: dispatch detail {item['detail']}"


def _user_actor(rt: Runtime, role: str, world: dict[str, Any]) -> Actor:
    attrs: dict[str, Any] = {"regions": ["PD"]}
    if role == "technician":
        attrs["technician"] = world["techs"][0]["id"]
    if role == "customer":
        attrs["customer"] = world["customers"][0]["id"]
    return Actor(f"{role}0", roles=(role,), attributes=attrs)


@pytest.mark.parametrize("role", ROLES)
def test_no_response_reveals_a_field_the_role_may_not_read(client, rt, world, token_for,
                                                           role) -> None:
    headers = auth(token_for(role, 0))
    walk = Walk(rt, _user_actor(rt, role, world))
    order_id = world["orders"][0]["id"]
    wo = f"/api/v1/work_order/{order_id}"

    for entity in ("work_order", "customer", "technician", "region", "asset", "spare_part"):
        res = client.get(f"/api/v1/{entity}", headers=headers)
        assert res.status_code in (200, 403), (entity, res.get_json())
        for item in (res.get_json()["items"] if res.status_code == 200 else []):
            walk.record(entity, item, f"list {entity}")
            one = client.get(f"/api/v1/{entity}/{item['id']}", headers=headers)
            assert one.status_code == 200
            walk.record(entity, one.get_json(), f"read {entity} {item['id']}")
    # Filtering through every reference of an order answers, and with readable records only.
    for path in ("work_order.customer.name", "work_order.assignee.name",
                 "work_order.region.name"):
        res = client.get("/api/v1/work_order", query_string={"filter": f"{path} is not null"},
                         headers=headers)
        assert res.status_code in (200, 403)
        for item in (res.get_json()["items"] if res.status_code == 200 else []):
            walk.record("work_order", item, f"filter {path}")

    if rt.authz.can(walk.actor, "work_order", "create"):
        body = {**NEW_ORDER, "customer": world["customers"][0]["id"]}
        res = client.post("/api/v1/work_order", json=body, headers=headers)
        assert res.status_code == 201, res.get_json()
        walk.record("work_order", res.get_json(), "create work_order")

    writable = rt.authz.writable_fields(walk.actor, "work_order", "update")
    field = next((f for f in UPDATES if f in writable), None)
    current = client.get(wo, headers=headers)
    if field is not None and current.status_code == 200:
        res = client.patch(wo, json={field: UPDATES[field]},
                           headers={**headers, "If-Match": current.headers["ETag"]})
        assert res.status_code == 200, res.get_json()
        walk.record("work_order", res.get_json(), "update work_order")

    if current.status_code == 200:
        timeline = client.get(wo + "/timeline", headers=headers)
        assert timeline.status_code == 200
        walk.timeline("work_order", timeline.get_json()["items"], "timeline")
        dispatch = client.get(wo + "/dispatch", headers=headers)
        assert dispatch.status_code == 200
        walk.dispatch(dispatch.get_json(), "dispatch")
        assert client.get(wo + "/sla", headers=headers).status_code == 200
        ack = client.post(wo + "/escalations/offer_unanswered/acknowledge", headers=headers)
        assert ack.status_code in (204, 403, 409) and (ack.status_code != 204 or not ack.data)

    offers = client.get("/api/v1/offers", headers=headers)
    assert offers.status_code == 200
    for offer in offers.get_json()["items"]:
        assert set(offer) == {"id", "entity", "record_id", "mode", "rank", "expires_at",
                              "created_at"}
    me = client.get("/api/v1/me", headers=headers).get_json()
    assert set(me) == {"id", "name", "roles", "scopes"} and me["id"] == f"{role}0"

    actions = client.get(wo + "/actions", headers=headers)
    if actions.status_code == 200:
        plain = [a for a in actions.get_json()["items"] if a["form"] is None]
        if plain:
            res = client.post(f"{wo}/actions/{plain[0]['action']}", headers=headers, json={})
            assert res.status_code == 200, res.get_json()
            walk.record("work_order", res.get_json()["record"],
                        f"action {plain[0]['action']}")
    assert walk.checked > 0


def test_the_walk_catches_a_leak(rt, world) -> None:
    """The checker itself fails on an embedded record the role may not read."""
    walk = Walk(rt, _user_actor(rt, "customer", world))
    order = rt.records.get(SYSTEM_ACTOR, "work_order", world["orders"][0]["id"])
    tech = rt.records.get(SYSTEM_ACTOR, "technician", world["techs"][0]["id"])
    leaked = {**{k: order[k] for k in ("id", "title")}, "assignee": tech}
    with pytest.raises(AssertionError, match="may not read"):
        walk.record("work_order", leaked, "leak")
    with pytest.raises(AssertionError, match="not readable"):
        walk.record("customer", {"id": 1, "tier": "VIP"}, "leak")
