"""The demo city's people acting: simulated technicians and customers moving orders along.

Every change goes through the services the API uses — :func:`.runner.take_action`
for flow actions (accept, reject, depart, complete with the completion report...)
and :meth:`.records.RecordService.update` for record changes (a rating, a
technician's position) — as the system actor :data:`SIMULATOR_ID`, named
"模拟城市 / City simulator" and carrying the role and link of the person it plays.
So the timeline shows who did it, and authorization, validation and the flow
apply exactly as for a person at a phone.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ...rules.geo import haversine_km, point_of
from ...rules.staff_behaviour import BehaviourConfig, draws, handling_minutes, travel_minutes
from .. import defaults
from ..intake.channels import discard_files
from ..records.actors import Actor
from ..records.files import store_file
from ..runtime.runner import take_action
from ..store.db import reading
from ..store.storage import from_row
from .data import CityScript, LifecycleStep

if TYPE_CHECKING:
    from ..assembly import Runtime

#: User id of everything the demo city does (audit rows, timeline entries).
SIMULATOR_ID = "city-simulator"
#: Its display name.
SIMULATOR_NAME = "模拟城市 / City simulator"


def person(script: CityScript, who: str, record_id: int) -> Actor:
    """The simulator playing the ``who`` (technician/customer) linked to ``record_id``."""
    role, user_field = script.roles[who]
    return Actor(SIMULATOR_ID, SIMULATOR_NAME, (role,), {user_field: int(record_id)},
                 channel="simulator")


def linked_entity(rt: Runtime, script: CityScript, who: str) -> str:
    """The entity a ``who`` (technician/customer) user is linked to (its user field's target)."""
    f = rt.app.user.fields.get(script.roles[who][1])
    if f is None or not f.reference:
        raise ValueError(f"the app has no user field {script.roles[who][1]!r} for {who}s")
    return f.reference


def field_to(rt: Runtime, script: CityScript, who: str) -> str:
    """The order's field that references the ``who`` (e.g. ``assignee``, ``customer``)."""
    target = linked_entity(rt, script, who)
    fields = rt.app.entities[script.entity].fields
    names = [n for n, f in fields.items() if f.kind == "reference" and f.reference == target]
    preferred = script.roles[who][1]
    if preferred in names:
        return preferred
    return "assignee" if "assignee" in names else names[0]


def records_of(rt: Runtime, entity: str, *where: Any) -> list[dict[str, Any]]:
    """Live records of ``entity`` matching the SQL conditions ``where``, oldest first.

    What the city *sees* is read directly (no audit, no transaction); what it *does*
    goes through the services.
    """
    table = rt.tables[entity]
    query = select(table).where(table.c.deleted_at.is_(None), *where).order_by(table.c.id)
    with reading(rt.engine) as conn:
        rows = conn.execute(query).mappings().all()
    return [from_row(rt.app.entities[entity], dict(r), rt.tz) for r in rows]


def record_of(rt: Runtime, entity: str, record_id: int) -> dict[str, Any] | None:
    """One live record (see :func:`records_of`), or None."""
    found = records_of(rt, entity, rt.tables[entity].c.id == record_id)
    return found[0] if found else None


def ref_id(value: Any) -> int | None:
    """The id of a reference value (an id, or a resolved record)."""
    if isinstance(value, dict):
        value = value.get("id")
    return None if value is None else int(value)


def step_minutes(rt: Runtime, script: CityScript, step: LifecycleStep, order: dict[str, Any],
                 config: BehaviourConfig, salt: int) -> float:
    """Simulated minutes ``step`` takes for ``order``: fixed, travel or handling time."""
    if isinstance(step.after, float):
        return step.after
    tech_id = ref_id(order.get(field_to(rt, script, "technician")))
    tech = None if tech_id is None else \
        record_of(rt, linked_entity(rt, script, "technician"), tech_id)
    if step.after == "travel":
        here = point_of(tech.get("location")) if tech else None
        there = point_of(order.get("location"))
        if here is None or there is None:
            return 0.0
        return travel_minutes(config, haversine_km(here[0], here[1], there[0], there[1]))
    u1, u2 = draws(salt, order["id"], "handling")
    return handling_minutes(config, order.get("category"),
                            tech.get("avg_handling_minutes") if tech else None, u1, u2)


def take_step(rt: Runtime, script: CityScript, step: LifecycleStep, order: dict[str, Any],
              salt: int) -> str:
    """Do ``step`` to ``order`` as its technician or customer; returns what was done.

    Raises what the services raise (ConflictError when the order moved meanwhile,
    ValidationError for values the bundle refuses); nothing is written then.
    """
    who_id = ref_id(order.get(field_to(rt, script, step.by)))
    if who_id is None:
        raise ValueError(f"order {order['id']} has no {step.by}")
    actor = person(script, step.by, who_id)
    if step.rate:
        values = rating_values(script, order, step.rate, salt)
        rt.records.update(actor, script.entity, int(order["id"]), values,
                          expected_version=None)
        return f"{step.by} {who_id} rated {script.entity} {order['id']}: {values[step.rate]}"
    assert step.action is not None
    form = completion_values(rt, script, order, salt) if step.form else None
    try:
        take_action(rt, actor, script.entity, int(order["id"]), step.action, form)
    except BaseException:
        discard_files(rt, _file_ids(script, form or {}))  # nothing points at them
        raise
    if step.move_to_order and step.by == "technician":
        location = order.get(step.move_to_order)
        if location is not None:
            rt.records.update(actor, linked_entity(rt, script, "technician"), who_id,
                              {step.move_to_order: location}, expected_version=None)
    return f"{step.by} {who_id}: {step.action} {script.entity} {order['id']}"


def answer_offer(rt: Runtime, script: CityScript, order_id: int, technician: int,
                 accept: bool) -> str:
    """Accept or reject (the script's actions) the offer of ``order_id`` as ``technician``."""
    action = script.accept if accept else script.reject
    take_action(rt, person(script, "technician", technician), script.entity, order_id, action)
    return f"technician {technician}: {action} {script.entity} {order_id}"


def completion_values(rt: Runtime, script: CityScript, order: dict[str, Any],
                      salt: int) -> dict[str, Any]:
    """The completion report's values for ``order``: resolution text, photo, signature."""
    spec = script.completion
    category = str(order.get("category"))
    values: dict[str, Any] = {}
    text = spec.get("text") or {}
    if text.get("field"):
        texts = text.get("by_category") or {}
        choices = texts.get(category) or texts.get("other") or ["OK"]
        u, _ = draws(salt, order["id"], "resolution")
        values[text["field"]] = choices[int(u * len(choices))]
    if spec.get("photos"):
        values[spec["photos"]] = [_image(rt, f"photo-{order['id']}.png", (70, 130, 180))]
    if spec.get("signature"):
        values[spec["signature"]] = _image(rt, f"signature-{order['id']}.png", (20, 20, 20))
    asset = spec.get("asset_code") or {}
    if asset and category in (asset.get("when_category") or ()):
        values[asset["field"]] = f"{asset.get('prefix', '')}{order['id']:05d}"
    return values


def rating_values(script: CityScript, order: dict[str, Any], field: str,
                  salt: int) -> dict[str, Any]:
    """A customer's rating of ``order`` in ``field`` (a weighted draw of the script's
    ``rating.weights``) and the comment that goes with it."""
    spec = script.rating
    weights = {int(k): float(v) for k, v in (spec.get("weights") or {5: 1.0}).items()}
    u, v = draws(salt, order["id"], "rating")
    total, acc, chosen = sum(weights.values()), 0.0, max(weights)
    for stars, w in sorted(weights.items(), reverse=True):
        acc += w / total
        if u < acc:
            chosen = stars
            break
    values: dict[str, Any] = {field: chosen}
    comments = (spec.get("comments") or {}).get(chosen) or []
    if comments and spec.get("comment_field"):
        values[spec["comment_field"]] = comments[int(v * len(comments))]
    return values


def _file_ids(script: CityScript, form: dict[str, Any]) -> list[str]:
    """The ids of the generated images in the completion values ``form``."""
    out: list[str] = []
    for key in ("photos", "signature"):
        value = form.get(script.completion.get(key) or "")
        out.extend(str(v) for v in (value if isinstance(value, list) else [value]) if v)
    return out


def _image(rt: Runtime, name: str, rgb: tuple[int, int, int]) -> str:
    """Store a small solid PNG (a stand-in for a photo or a signature); returns its file id."""
    data = png(defaults.DEMO_IMAGE_PIXELS, defaults.DEMO_IMAGE_PIXELS, rgb)
    return store_file(rt.engine, data, filename=name, content_type="image/png",
                      created_by=SIMULATOR_ID, max_bytes=len(data)).id


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG image of ``width`` x ``height`` pixels of one colour."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + \
        chunk(b"IEND", b"")
