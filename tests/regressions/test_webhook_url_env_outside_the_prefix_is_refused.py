"""Issue #22, finding 8: ``webhook_url_env`` could name any environment variable.

A bundle author (anyone who may publish) could write ``webhook_url_env: DATABASE_URL``
or name a secret, and the workers would read it and use it as a destination. The
variable must now start with ``DISPATCHFLOW_WEBHOOK_URL_``: another name is a
``check`` error, and a version published before is refused at sending, the variable
left unread.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dispatchflow.cli import main
from dispatchflow.platform.notify import deliver
from dispatchflow.platform.notify.channels import WebhookTransport

from .notify_setup import MONDAY_10, notify_world

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"


def test_check_refuses_a_webhook_url_env_outside_the_prefix(tmp_path: Path) -> None:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(REFERENCE, bundle)
    path = bundle / "notifications" / "customer_status_update.yaml"
    path.write_text(path.read_text("utf-8").replace(
        "webhook_url_env: DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE",
        "webhook_url_env: DATABASE_URL"), "utf-8")
    result = CliRunner().invoke(main, ["check", str(bundle)])
    assert result.exit_code == 1
    assert ("notifications/customer_status_update.yaml:6:18: E1010: 'DATABASE_URL' is not a "
            "valid webhook URL variable") in result.output
    assert "its name starts with DISPATCHFLOW_WEBHOOK_URL_" in result.output


def test_a_stored_delivery_naming_another_variable_does_not_read_it(tmp_path: Path) -> None:
    with notify_world(tmp_path) as world:
        [hook_id] = [i for i in world.plan("customer_status_update", world.order())
                     if world.rows(id=i)[0]["channel"] == "webhook"]
        from sqlalchemy import update

        from dispatchflow.platform.store.db import notifications

        with world.rt.engine.begin() as conn:  # as a version published before would plan it
            conn.execute(update(notifications).where(notifications.c.id == hook_id)
                         .values(address="DATABASE_URL"))
        env = {"DATABASE_URL": "http://203.0.113.9/steal", "DISPATCHFLOW_WEBHOOK_SECRET": "s"}
        assert deliver(world.rt.engine, hook_id, MONDAY_10,
                       {"webhook": WebhookTransport(world.rt.engine, env)}) == "failed"
        assert world.rows(id=hook_id)[0]["last_error"].startswith(
            "the webhook URL variable DATABASE_URL does not start with "
            "DISPATCHFLOW_WEBHOOK_URL_: it is not read")
