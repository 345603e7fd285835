"""Where outbound webhooks may go: public addresses, plus what the operator allows.

A webhook URL comes from the environment, but a wrong or hostile one could make the
workers POST into the private network (a database's HTTP port, a cloud metadata
service at 169.254.169.254, an admin page on localhost). So before each POST the
host is resolved and **every** address it resolves to is checked:

* allowed by default: global unicast addresses (the public Internet);
* refused by default: loopback, link-local, private (RFC 1918, fc00::/7), shared
  (100.64/10), multicast, unspecified and reserved ranges;
* ``DISPATCHFLOW_WEBHOOK_ALLOW`` (comma-separated) adds networks (``10.0.0.0/8``,
  ``192.168.1.20``) whose addresses are allowed, and host names
  (``hooks.example.com``; ``.example.com`` for every subdomain) that are allowed
  whatever they resolve to -- for on-premise receivers.

The connection is then made to the address that was checked (not to a fresh lookup
of the name, which a DNS rebinding could point elsewhere); TLS still verifies the
certificate against the host name.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DeliveryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class AllowList:
    """Networks and host names outbound webhooks may reach besides public addresses."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None, source: str = "DISPATCHFLOW_WEBHOOK_ALLOW") -> AllowList:
        """Parse ``10.0.0.0/8,192.168.1.20,hooks.example.com,.corp.example``.

        Raises DeliveryError (``unconfigured``) naming the entry that is neither a
        network nor a host name.
        """
        networks: list[IPNetwork] = []
        hosts: list[str] = []
        for raw in (text or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry[1:] if entry.startswith(".") else entry
            if not name or not all(label and label.replace("-", "").isalnum()
                                   for label in name.split(".")):
                raise DeliveryError(f"{source}: {raw.strip()!r} is neither a network (10.0.0.0/8, "
                                    "192.168.1.20) nor a host name (hooks.example.com)",
                                    retryable=False, unconfigured=True)
            hosts.append(entry)
        return cls(tuple(networks), tuple(hosts))

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` is named by an entry (``.example.com``: any subdomain)."""
        host = host.lower().rstrip(".")
        return any(host == h or (h.startswith(".") and host.endswith(h)) for h in self.hosts)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached, or None when it may."""
        if any(address in net for net in self.networks):
            return None
        return address_class(address)


def address_class(address: IPAddress) -> str | None:
    """The kind of non-public address ``address`` is (``loopback``, ``private``, ...), or
    None for a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("unspecified", address.is_unspecified),
                       ("multicast", address.is_multicast), ("private", address.is_private),
                       ("reserved", address.is_reserved)):
        if flag:
            return kind
    return None if address.is_global else "not public"


@dataclass(frozen=True)
class Destination:
    """A checked webhook destination: the host and the address to connect to."""

    host: str
    address: str


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_destination(host: str, port: int, allow: AllowList,
                      resolve: Resolver = system_resolver) -> Destination:
    """Resolve ``host`` and check every address against the policy (module docs).

    Raises DeliveryError: not retryable when an address is refused, retryable when
    the name cannot be resolved now.
    """
    try:
        addresses = list(resolve(host, port))
    except OSError as exc:
        raise DeliveryError(f"cannot resolve the webhook host {host}: {exc}",
                            retryable=True) from exc
    if not addresses:
        raise DeliveryError(f"the webhook host {host} has no address", retryable=True)
    if not allow.allows_host(host):
        for text in addresses:
            kind = allow.refusal(ipaddress.ip_address(text.split("%", 1)[0]))
            if kind is not None:
                raise DeliveryError(
                    f"webhook destination refused: {host} resolves to {text} ({kind})",
                    retryable=False,
                    hint="webhooks go to public addresses only; allow an on-premise receiver "
                         "with DISPATCHFLOW_WEBHOOK_ALLOW (a network such as 10.0.0.0/8 or "
                         "the host name)")
    return Destination(host, addresses[0])


def pinned_handlers(destination: Destination) -> list[urllib.request.BaseHandler]:
    """urllib handlers that connect to ``destination.address`` whenever the connection is
    to ``destination.host`` (a proxy's connection is left alone)."""

    def connection(base: type[http.client.HTTPConnection]) -> Callable[..., Any]:
        def build(host: str, *args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            conn = base(host, *args, **kwargs)
            if conn.host.lower().rstrip(".") == destination.host.lower().rstrip("."):
                def create(address: tuple[str, int], *rest: Any) -> socket.socket:
                    return socket.create_connection((destination.address, address[1]), *rest)
                conn._create_connection = create  # type: ignore[attr-defined]
            return conn
        return build

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(connection(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(connection(http.client.HTTPSConnection), req,
                                context=self._context)  # type: ignore[attr-defined]

    return [Http(), Https()]
