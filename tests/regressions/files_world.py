"""Records and users the file regressions share: two customers in two regions, a
technician for each, and a PNG and an HTML page to upload (not a test module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dispatchflow.platform.records.actors import SYSTEM_ACTOR

PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
HTML = b"<!doctype html><script>fetch('/api/v1/me')</script>"
ORDER = {"title": "空调不制冷", "category": "aircon", "description": "开机后不出冷风",
         "location": {"lat": 31.21, "lng": 121.51}}


def make_world(rt: Any, user_token: Callable[..., dict[str, str]]) -> dict[str, Any]:
    """Regions PD and XH; customer and technician ``a`` in PD, ``b`` in XH; a token per
    role-holder (``customer_a``, ``tech_b``, ``dispatcher_pd``, ``finance``, ...)."""
    create = rt.records.create
    regions = {code: create(SYSTEM_ACTOR, "region", {"code": code, "name": code})["id"]
               for code in ("PD", "XH")}
    people: dict[str, Any] = {"regions": regions}
    for key, code in (("a", "PD"), ("b", "XH")):
        customer = create(SYSTEM_ACTOR, "customer", {
            "name": f"客户{key}", "phone": "13800000001", "tier": "normal",
            "region": regions[code]})["id"]
        tech = create(SYSTEM_ACTOR, "technician", {
            "name": f"师傅{key}", "level": 3, "on_duty": False, "skills": ["aircon"],
            "region": regions[code], "location": {"lat": 31.2, "lng": 121.5}})["id"]
        people[f"customer_{key}"] = user_token(f"customer_{key}", "customer", customer=customer)
        people[f"tech_{key}"] = user_token(f"tech_{key}", "technician", technician=tech)
        people[f"customer_{key}_id"], people[f"tech_{key}_id"] = customer, tech
        people[f"dispatcher_{code.lower()}"] = user_token(f"dispatcher_{code.lower()}",
                                                          "dispatcher", regions=[code])
    people["finance"] = user_token("finance", "finance")
    people["admin"] = user_token("admin", "admin")
    return people


def upload(client: Any, headers: dict[str, str], data: bytes, filename: str,
           content_type: str) -> str:
    """Upload through the API as ``headers``' user; the new file's id."""
    import io

    res = client.post("/api/v1/files", headers=headers, content_type="multipart/form-data",
                      data={"file": (io.BytesIO(data), filename, content_type)})
    assert res.status_code == 201, res.get_json()
    return str(res.get_json()["id"])
