"""Issue #22, finding 8: outbound webhooks had no destination policy.

Whatever URL the variable held, the workers POSTed to it -- ``http://127.0.0.1:...``,
a private address, the cloud metadata service. Now the host is resolved and every
address checked: loopback, link-local and private ranges are refused unless
``DISPATCHFLOW_WEBHOOK_ALLOW`` names them (an on-premise receiver).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchflow.platform.notify import deliver
from dispatchflow.platform.notify.channels import WebhookTransport

from .notify_setup import MONDAY_10, World, notify_world, webhook_server


def planned_webhook(world: World) -> tuple[int, str]:
    """The webhook delivery of a status update, and the variable its URL is read from."""
    [row] = [world.rows(id=i)[0] for i in world.plan("customer_status_update", world.order())
             if world.rows(id=i)[0]["channel"] == "webhook"]
    return row["id"], row["address"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_webhook_to_loopback_is_refused_and_nothing_is_posted(
        tmp_path: Path, host: str) -> None:
    with notify_world(tmp_path) as world, webhook_server() as server:
        hook_id, var = planned_webhook(world)
        env = {var: server.url.replace("127.0.0.1", host), "DISPATCHFLOW_WEBHOOK_SECRET": "s"}
        status = deliver(world.rt.engine, hook_id, MONDAY_10,
                         {"webhook": WebhookTransport(world.rt.engine, env)})
        assert status == "failed"
        assert server.requests == []
        error = world.rows(id=hook_id)[0]["last_error"]
        assert error.startswith(f"webhook destination refused: {host} resolves to ")
        assert "(loopback)" in error and "DISPATCHFLOW_WEBHOOK_ALLOW" in error


def test_the_allow_list_opens_an_on_premise_receiver(tmp_path: Path) -> None:
    with notify_world(tmp_path) as world, webhook_server() as server:
        hook_id, var = planned_webhook(world)
        env = {var: server.url, "DISPATCHFLOW_WEBHOOK_SECRET": "s",
               "DISPATCHFLOW_WEBHOOK_ALLOW": "10.0.0.0/8, 127.0.0.0/8"}
        assert deliver(world.rt.engine, hook_id, MONDAY_10,
                       {"webhook": WebhookTransport(world.rt.engine, env)}) == "sent"
        assert len(server.requests) == 1
