"""Demo data for ``dispatchflow serve --demo``: users for every role and sample records.

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

from ..errors import ConflictError
from .actors import SYSTEM_ACTOR
from .runtime import Runtime
from .users import add_user

REGIONS = [
    {"code": "PD", "name": "浦东新区", "center": {"lat": 31.2216, "lng": 121.5447}},
    {"code": "XH", "name": "徐汇区", "center": {"lat": 31.1885, "lng": 121.4365}},
]


def _credentials_file(rt: Runtime) -> Path:
    return rt.settings.home / "demo-credentials.json"


def seed_users(rt: Runtime) -> list[tuple[str, str, str]]:
    """One user per role of the active app: (user id, role, password or '(unchanged)')."""
    roles = list((rt.app.roles.data.get("roles") or {}) if rt.app.roles else {})
    path = _credentials_file(rt)
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    out = []
    for role in roles:
        user_id = f"demo_{role}"
        password = known.get(user_id) or secrets.token_urlsafe(9)
        attributes = _demo_attributes(rt)
        try:
            add_user(rt.engine, user_id, name=f"Demo {role}", password=password, roles=[role],
                     attributes=attributes)
        except ConflictError:
            pass
        known[user_id] = password
        out.append((user_id, role, password))
    rt.settings.home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(known, f)
    return out


def _demo_attributes(rt: Runtime) -> dict[str, Any]:
    """User fields for demo users: every region, and references to the first record
    of their entity (so the demo customer and technician have someone to be)."""
    out: dict[str, Any] = {}
    for name, f in rt.app.user.fields.items():
        if f.system:
            continue
        if name == "regions" and f.kind == "list":
            out[name] = [r["code"] for r in REGIONS]
        elif f.kind == "reference" and f.reference in rt.tables:
            table = rt.tables[f.reference]
            with rt.engine.connect() as conn:
                first = conn.execute(select(table.c.id).where(table.c.deleted_at.is_(None))
                                     .order_by(table.c.id).limit(1)).scalar()
            if first is not None:
                out[name] = first
    return out


def seed_records(rt: Runtime) -> int:
    """Sample regions, customers, technicians and work orders (only into empty tables)."""
    if "work_order" not in rt.tables:
        return 0
    with rt.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(rt.tables["work_order"])).scalar():
            return 0
    create = rt.records.create
    a = SYSTEM_ACTOR
    regions = [create(a, "region", r)["id"] for r in REGIONS] if "region" in rt.tables else []
    region = regions[0] if regions else None
    customers = [
        create(a, "customer", {"name": "张伟", "phone": "13800000001", "tier": "VIP",
                               "address": "浦东新区世纪大道100号",
                               "location": {"lat": 31.2352, "lng": 121.5055}, "region": region}),
        create(a, "customer", {"name": "李娜", "phone": "13800000002", "tier": "normal",
                               "address": "浦东新区张江路88号",
                               "location": {"lat": 31.2036, "lng": 121.5903}, "region": region}),
    ]
    technicians = [
        create(a, "technician", {"name": name, "phone": phone, "skills": skills, "level": level,
                                 "region": region, "location": loc, "on_duty": True})
        for name, phone, skills, level, loc in [
            ("王师傅", "13900000001", ["aircon", "appliance"], 4, {"lat": 31.23, "lng": 121.51}),
            ("赵师傅", "13900000002", ["plumbing", "water_heater"], 3,
             {"lat": 31.21, "lng": 121.55}),
            ("陈师傅", "13900000003", ["electrical", "elevator", "hvac"], 5,
             {"lat": 31.20, "lng": 121.58}),
        ]
    ]
    orders = [
        ("厨房水管漏水", "水槽下方水管爆裂，地面积水", "plumbing", customers[0]),
        ("空调不制冷", "客厅空调开机后不出冷风", "aircon", customers[1]),
        ("热水器点不着火", "燃气热水器打火无反应", "water_heater", customers[1]),
    ]
    for title, description, category, customer in orders:
        create(a, "work_order", {"title": title, "description": description,
                                 "category": category, "customer": customer["id"],
                                 "region": region, "location": customer["location"],
                                 "address": customer["address"], "channel": "phone"})
    return len(customers) + len(technicians) + len(orders) + len(regions)
