"""Shared pieces of the notification tests: the test app, the World of records and users,
and the test servers' helpers. (A plain module, not conftest: test modules import it.)
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from dispatchflow.dsl.compiler import App, compile_sources
from dispatchflow.dsl.diagnostics import render_text
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.notify import plan
from dispatchflow.platform.notify.channels import Receipt
from dispatchflow.platform.records.users import add_user
from dispatchflow.platform.store.db import notifications, users
from dispatchflow.platform.store.storage import from_row, to_row

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Monday 2 March 2026, 10:00 in Shanghai: working time in every calendar.
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)

EXTRA_NOTIFICATIONS = {
    # Critical, with quiet hours: never held.
    "notifications/urgent_alert.yaml": """\
notification: urgent_alert
entity: work_order
label: {zh: 紧急工单, en: Urgent order}
on: work_order.updated
when: work_order.urgent
channels: [inbox]
to:
  - user: sup_pd
quiet_hours: standard
severity: critical
subject: {zh: "【紧急】{{ work_order.title }}", en: "[Urgent] {{ work_order.title }}"}
body: {zh: "工单 {{ work_order.title }} 标记为紧急", en: "{{ work_order.title }} is urgent"}
""",
    # The same with severity info: held outside the standard calendar's hours.
    "notifications/quiet_notice.yaml": """\
notification: quiet_notice
entity: work_order
label: {zh: 工单提醒, en: Order notice}
channels: [inbox]
to:
  - user: sup_pd
quiet_hours: standard
subject: "{{ work_order.title }}"
body: "{{ work_order.title }}"
""",
    # Reads the assignee's name without a guard: fails for an unassigned order.
    "notifications/assignee_note.yaml": """\
notification: assignee_note
entity: work_order
channels: [inbox, email]
to:
  - user: sup_pd
  - field: work_order.contact_email
body: "技师：{{ work_order.assignee.name }}"
""",
}


def _reference_sources() -> dict[str, str]:
    return {str(p.relative_to(REFERENCE)): p.read_text(encoding="utf-8")
            for p in sorted(REFERENCE.rglob("*")) if p.is_file()}


def compile_variant(extra: dict[str, str] | None = None) -> App:
    """The reference bundle plus :data:`EXTRA_NOTIFICATIONS` and ``extra`` files."""
    files = {**_reference_sources(), **EXTRA_NOTIFICATIONS, **(extra or {})}
    work_order = files["entities/work_order.yaml"]
    if "contact_email:" not in work_order:
        files["entities/work_order.yaml"] = work_order.rstrip("\n") + \
            "\n  contact_email:\n    type: string\n    label: {zh: 联系邮箱, en: Contact e-mail}\n"
    result = compile_sources(files)
    assert result.app is not None, render_text(result.diagnostics)
    return result.app


@dataclass
class World:
    """Records and users of the tests (ids by short names)."""

    rt: Runtime
    ids: dict[str, int] = field(default_factory=dict)

    def record(self, entity: str, key: str) -> dict[str, Any]:
        """The stored record as the runner hands it over (references as ids)."""
        table = self.rt.tables[entity]
        with self.rt.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == self.ids[key])).mappings().one()
        return from_row(self.rt.app.entities[entity], dict(row), self.rt.tz)

    def order(self, key: str = "wo_pd") -> dict[str, Any]:
        return self.record("work_order", key)

    def insert(self, entity: str, key: str, **values: Any) -> int:
        """Store a record straight into its table: no validation, no events (so the
        event runner plans nothing behind the tests' back)."""
        entity_def = self.rt.app.entities[entity]
        full = {f.name: self.rt.default_value(f) if f.default is not None else None
                for f in entity_def.fields.values() if not f.system}
        full.update(values)
        row = {**to_row(entity_def, full), "created_at": MONDAY_10, "updated_at": MONDAY_10,
               "created_by": "test", "row_version": 1, "tags": []}
        with self.rt.engine.begin() as conn:
            inserted = conn.execute(self.rt.tables[entity].insert().values(**row))
            self.ids[key] = int(inserted.inserted_primary_key[0])
        return self.ids[key]

    def new_order(self, key: str, **values: Any) -> dict[str, Any]:
        """A work order in PD for customer cust_pd, assigned to tech1 (``values`` override)."""
        self.insert("work_order", key, **{
            "title": key, "category": "aircon", "customer": self.ids["cust_pd"],
            "region": self.ids["pd"], "location": {"lat": 31.2, "lng": 121.5},
            "assignee": self.ids["tech1"], "contact_phone": "13700000000", **values})
        return self.order(key)

    def plan(self, name: str, record: dict[str, Any], now: datetime = MONDAY_10,
             cause: str = "test") -> list[int]:
        with self.rt.engine.begin() as conn:
            return plan(conn, self.rt, name, record, now, cause)

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Delivery rows matching ``where`` (column = value), by id."""
        query = select(notifications).order_by(notifications.c.id)
        for column, value in where.items():
            query = query.where(notifications.c[column] == value)
        with self.rt.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def make_world(rt: Runtime) -> World:
    """Regions PD and JA, a customer, two technicians, orders in PD and JA, and users:
    supervisors of PD (e-mail) and JA, an inactive PD supervisor, a PD dispatcher
    (English, no e-mail), technician tech1 and customer cust_pd (both linked)."""
    w = World(rt)
    w.insert("region", "pd", code="PD", name="浦东新区")
    w.insert("region", "ja", code="JA", name="静安区")
    w.insert("customer", "cust_pd", name="张伟", phone="13800000001", region=w.ids["pd"])
    for key, name in (("tech1", "王师傅"), ("tech2", "赵师傅")):
        w.insert("technician", key, name=name, level=3, on_duty=True,
                 location={"lat": 31.2, "lng": 121.5})
    w.new_order("wo_pd", title="空调不制冷")
    w.new_order("wo_ja", title="热水器漏水", region=w.ids["ja"], assignee=w.ids["tech2"])
    people: list[tuple[str, str, list[str], dict[str, Any]]] = [
        ("sup_pd", "浦东主管", ["area_supervisor"],
         {"regions": ["PD"], "email": "sup.pd@example.com"}),
        ("sup_ja", "静安主管", ["area_supervisor"],
         {"regions": ["JA"], "email": "sup.ja@example.com"}),
        ("sup_old", "离职主管", ["area_supervisor"],
         {"regions": ["PD"], "email": "old@example.com"}),
        ("disp_pd", "Dana", ["dispatcher"], {"regions": ["PD"], "locale": "en"}),
        ("tech1", "王师傅", ["technician"],
         {"technician": w.ids["tech1"], "email": "wang@example.com"}),
        ("cust_pd", "张伟", ["customer"], {"customer": w.ids["cust_pd"]}),
    ]
    for user_id, name, roles, attrs in people:
        add_user(rt.engine, user_id, name=name, password=None, roles=roles, attributes=attrs)
    with rt.engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == "sup_old").values(active=False))
    return w


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """aiosmtpd handler keeping every envelope it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, SmtpSink]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: (port, sink of received envelopes)."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, sink
    finally:
        controller.stop()


@dataclass
class WebhookServer:
    """An HTTP server recording POSTs and answering with the queued status codes."""

    url: str
    requests: list[tuple[dict[str, str], bytes]]
    statuses: list[int]

    def json(self, i: int = -1) -> Any:
        return json.loads(self.requests[i][1].decode("utf-8"))


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    """An HTTP server on 127.0.0.1 recording POSTs; queue status codes in ``statuses``."""
    requests: list[tuple[dict[str, str], bytes]] = []
    statuses: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = statuses.pop(0) if statuses else 200
            reply = b'{"ok": true}' if status < 400 else b"boom"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookServer(f"http://127.0.0.1:{server.server_address[1]}/hook", requests,
                            statuses)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)




class CountingTransport:
    """A transport recording messages; each send pops the next entry of ``fail``
    (a DeliveryError to raise, or None to succeed) and waits ``delay`` seconds."""

    name = "inbox"

    def __init__(self, fail: list[Any] | None = None, delay: float = 0.0) -> None:
        self.sent: list[Any] = []
        self.fail = list(fail or [])
        self.delay = delay

    def send(self, message: Any, now: datetime) -> Receipt:
        if self.delay:
            time.sleep(self.delay)
        self.sent.append(message)
        if self.fail:
            error = self.fail.pop(0)
            if error is not None:
                raise error
        return Receipt("ok", 200)
