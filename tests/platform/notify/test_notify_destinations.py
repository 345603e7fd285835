"""Tests for dispatchflow.platform.notify.destinations: the webhook destination policy
(every resolved address checked, the allow-list) and connections pinned to the address
that was checked."""

from __future__ import annotations

import ipaddress
import urllib.request

import pytest
from notify_world import WebhookServer

from dispatchflow.platform.notify.destinations import (
    AllowList,
    Destination,
    address_class,
    check_destination,
    pinned_handlers,
)
from dispatchflow.platform.notify.errors import DeliveryError


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
    ("192.168.1.1", "private"), ("fd00::1", "private"), ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"), ("::ffff:127.0.0.1", "loopback"),
    ("100.64.0.1", "not public"), ("93.184.216.34", None), ("2606:4700::1111", None)])
def test_address_classes(address: str, kind: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == kind


def resolver(*addresses: str):  # noqa: ANN201 - a test double
    return lambda host, port: list(addresses)


def test_every_resolved_address_is_checked() -> None:
    with pytest.raises(DeliveryError) as err:
        check_destination("hooks.example.com", 443, AllowList(),
                          resolver("93.184.216.34", "10.0.0.5"))
    assert err.value.message == ("webhook destination refused: hooks.example.com resolves to "
                                 "10.0.0.5 (private)")
    assert not err.value.retryable and not err.value.unconfigured
    assert check_destination("hooks.example.com", 443, AllowList(),
                             resolver("93.184.216.34")) == \
        Destination("hooks.example.com", "93.184.216.34")


def test_the_allow_list_names_networks_and_hosts() -> None:
    allow = AllowList.parse(" 10.0.0.0/8, 192.168.1.20 ,hooks.corp.example,.intra.example,")
    assert [str(n) for n in allow.networks] == ["10.0.0.0/8", "192.168.1.20/32"]
    assert allow.hosts == ("hooks.corp.example", ".intra.example")
    assert check_destination("x", 80, allow, resolver("10.9.9.9")).address == "10.9.9.9"
    with pytest.raises(DeliveryError, match=r"192\.168\.1\.21 \(private\)"):
        check_destination("x", 80, allow, resolver("192.168.1.21"))
    for host in ("hooks.corp.example", "HOOKS.corp.example.", "a.b.intra.example"):
        assert check_destination(host, 80, allow, resolver("127.0.0.1")).address == "127.0.0.1"
    with pytest.raises(DeliveryError):
        check_destination("intra.example.evil", 80, allow, resolver("127.0.0.1"))


@pytest.mark.parametrize("text", ["10.0.0.0/33", "hooks example", "http://x", "*.x.com"])
def test_a_malformed_allow_list_is_unconfigured(text: str) -> None:
    with pytest.raises(DeliveryError, match="is neither a network") as err:
        AllowList.parse(text)
    assert err.value.unconfigured


def test_an_unresolvable_host_is_retried() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(DeliveryError, match="cannot resolve the webhook host x") as err:
        check_destination("x", 80, AllowList(), fail)
    assert err.value.retryable


def test_the_connection_goes_to_the_checked_address(webhook_server: WebhookServer) -> None:
    # "hook.invalid" resolves nowhere: only the pinned address can reach the server.
    port = webhook_server.url.split(":")[2].split("/")[0]
    opener = urllib.request.build_opener(
        *pinned_handlers(Destination("hook.invalid", "127.0.0.1")))
    request = urllib.request.Request(f"http://Hook.Invalid:{port}/hook", data=b"{}",
                                     method="POST")
    with opener.open(request, timeout=5) as response:
        assert response.status == 200
    [(headers, body)] = webhook_server.requests
    assert headers["host"] == f"Hook.Invalid:{port}" and body == b"{}"
