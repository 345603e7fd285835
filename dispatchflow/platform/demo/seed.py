"""Demo data for ``dispatchflow serve --demo``: users for every role and sample records.

The records come from the bundle's ``demo/seed.yaml`` (:mod:`.demo_data`):
regions, customers, technicians and sample orders, some moved along their
lifecycle by the people of the city (:mod:`.demo_people`) so every role has
something to do. Only the records marked with a ``user`` are linked to a demo
account (the demo customer to their own customer record, the demo technician
to theirs); every other demo user is linked to nothing but the regions.

Idempotent: users that exist are kept (their first passwords are remembered in
the home folder, mode 0600, so the banner can show them again), and sample
records are only created into an empty work-order table.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ...errors import ConflictError
from ...rules.staff_behaviour import salt_of
from .. import defaults
from ..assembly import Runtime
from ..records.actors import SYSTEM_ACTOR
from ..records.users import add_user
from .data import CityScript, Seed, load_city, load_seed
from .people import SIMULATOR_ID, SIMULATOR_NAME, answer_offer, take_step

#: The reference bundle (a source checkout's examples/field-service).
REFERENCE_BUNDLE = Path(__file__).resolve().parents[3] / "examples" / "field-service"

#: The folder of a bundle that holds its demo data.
DEMO_FOLDER = "demo"


def demo_folder(bundle: Path | None = None) -> Path:
    """The demo data folder of ``bundle`` (default: the reference bundle)."""
    return (bundle or REFERENCE_BUNDLE) / DEMO_FOLDER


def _credentials_file(rt: Runtime) -> Path:
    return rt.settings.home / "demo-credentials.json"


def seed_users(rt: Runtime, folder: Path | None = None) -> list[tuple[str, str, str]]:
    """One user ``demo_<role>`` per role of the active app: (user id, role, password or
    the remembered one). Users named in the seed's ``user`` keys are linked to that
    record; the simulator's own user (no password, no role) names its actions."""
    roles = list((rt.app.roles.data.get("roles") or {}) if rt.app.roles else {})
    path = _credentials_file(rt)
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    links = _links(rt, load_seed(folder or demo_folder()), load_city(folder or demo_folder()))
    out = []
    for role in roles:
        user_id = f"demo_{role}"
        password = known.get(user_id) or secrets.token_urlsafe(9)
        attributes = {**_regions(rt), **links.get(user_id, {})}
        try:
            add_user(rt.engine, user_id, name=f"Demo {role}", password=password, roles=[role],
                     attributes=attributes)
        except ConflictError:
            pass
        known[user_id] = password
        out.append((user_id, role, password))
    try:
        add_user(rt.engine, SIMULATOR_ID, name=SIMULATOR_NAME, password=None, roles=[])
    except ConflictError:
        pass
    rt.settings.home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(known, f)
    return out


def _regions(rt: Runtime) -> dict[str, Any]:
    """Every region code, for the user field ``regions`` when the app declares it."""
    f = rt.app.user.fields.get("regions")
    if f is None or f.kind != "list" or "region" not in rt.tables:
        return {}
    table = rt.tables["region"]
    with rt.engine.connect() as conn:
        codes = conn.execute(select(table.c.code).where(table.c.deleted_at.is_(None))
                             .order_by(table.c.id)).scalars().all()
    return {"regions": list(codes)}


def _links(rt: Runtime, seed: Seed, script: CityScript) -> dict[str, dict[str, Any]]:
    """user id -> {user field: record id} for the seed's people marked with a ``user``."""
    out: dict[str, dict[str, Any]] = {}
    for who, people in (("customer", seed.customers), ("technician", seed.technicians)):
        entity = _entity_of(rt, script, who)
        for p in people:
            if p.user and entity:
                record_id = find_record(rt, entity, p.values)
                if record_id is not None:
                    out.setdefault(p.user, {})[script.roles[who][1]] = record_id
    return out


def _entity_of(rt: Runtime, script: CityScript, who: str) -> str | None:
    f = rt.app.user.fields.get(script.roles[who][1])
    return f.reference if f is not None and f.reference in rt.tables else None


def find_record(rt: Runtime, entity: str, values: dict[str, Any]) -> int | None:
    """The first live ``entity`` record with the seed entry's name (and phone, if any)."""
    table = rt.tables[entity]
    query = select(table.c.id).where(table.c.deleted_at.is_(None))
    for name in ("name", "phone"):
        if name in values and name in table.c:
            query = query.where(table.c[name] == values[name])
    with rt.engine.connect() as conn:
        found = conn.execute(query.order_by(table.c.id).limit(1)).scalar()
    return None if found is None else int(found)


def seed_records(rt: Runtime, folder: Path | None = None, seed: int = defaults.DEMO_SEED) -> int:
    """Create the seed's records (only into an empty work-order table); returns how many.

    The demo users (:func:`seed_users`) are created once the people exist, before
    the orders. Sample orders with ``until`` are moved along the city's lifecycle at once
    (accepted by ``accept_by``, who must hold its offer). Raises DemoDataError for
    malformed data files, and what the services raise for records the app refuses.
    """
    folder = folder or demo_folder()
    data, script = load_seed(folder), load_city(folder)
    if script.entity not in rt.tables:
        return 0
    with rt.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(rt.tables[script.entity])).scalar():
            return 0
    create = rt.records.create
    a = SYSTEM_ACTOR
    regions = {r["code"]: create(a, "region", r)["id"] for r in data.regions} \
        if "region" in rt.tables else {}
    ids: dict[str, dict[str, int]] = {"customer": {}, "technician": {}}
    for who, people in (("customer", data.customers), ("technician", data.technicians)):
        entity = _entity_of(rt, script, who)
        if entity is None:
            continue
        for p in people:
            values = {**p.values, **({"region": regions[p.values["region"]]}
                                     if p.values.get("region") in regions else {})}
            if who == "technician":
                values.setdefault("on_duty", True)
            ids[who][p.key] = create(a, entity, values)["id"]
    # the demo accounts exist before the orders, so what the orders set off (customer
    # updates, escalations, approvals) reaches them
    seed_users(rt, folder)
    customers = {p.key: p for p in data.customers}
    salt = salt_of(seed)
    for sample in data.orders:
        home = customers[sample.customer].values
        values = {"location": home.get("location"), "address": home.get("address"),
                  **sample.values, "customer": ids["customer"][sample.customer]}
        region = home.get("region")
        if region in regions:
            values.setdefault("region", regions[region])
        order = create(a, script.entity, values)
        _move(rt, script, sample.until, sample.accept_by, ids["technician"], order["id"], salt)
        if sample.set:
            rt.records.update(a, script.entity, order["id"], sample.set, expected_version=None)
    return len(regions) + sum(len(v) for v in ids.values()) + len(data.orders)


def _move(rt: Runtime, script: CityScript, until: str | None, accept_by: str | None,
          technicians: dict[str, int], order_id: int, salt: int) -> None:
    """Move a fresh sample order along the lifecycle until its status is ``until``."""
    if until is None:
        return
    if accept_by is not None:
        answer_offer(rt, script, order_id, technicians[accept_by], accept=True)
    for _ in range(len(script.lifecycle) + 1):
        order = rt.records.get(SYSTEM_ACTOR, script.entity, order_id)
        status = order.get(script.status_field)
        if status == until or status not in script.lifecycle:
            return
        take_step(rt, script, script.lifecycle[status], order, salt)


def ensure_channel_secrets(rt: Runtime, script: CityScript) -> list[str]:
    """Give the channels the city's intake uses a secret when their variable is unset.

    A secret is made once and kept in the home folder (mode 0600), then set in this
    process's environment, so the city (and anyone holding the secret) can sign
    deliveries. Returns the variables that were set here.
    """
    from ..intake.channels import channel

    path = rt.settings.home / "demo-channel-secrets.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    done = []
    for spec in script.intake.values():
        if not isinstance(spec, dict) or "channel" not in spec:
            continue
        env = channel(rt.app, str(spec["channel"])).secret_env
        if not env or os.environ.get(env):
            continue
        kept.setdefault(env, secrets.token_urlsafe(24))
        os.environ[env] = kept[env]
        done.append(env)
    if done:
        rt.settings.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(kept, f)
    return done
