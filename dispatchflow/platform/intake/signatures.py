"""Signatures of intake channel messages: a timestamp, the idempotency key and the body.

A sender signs each request it sends (webhook body or raw e-mail) with the
channel's shared secret and puts the result in the channel's signature header::

    X-Dispatchflow-Signature: t=1767225600,v1=<64 hex digits>

* ``t`` is the time of signing, in whole seconds since 1970-01-01 UTC;
* ``v1`` is the lower- or upper-case hex HMAC-SHA256, under the secret (its UTF-8
  bytes), of the **signed payload**: the ASCII digits of ``t``, a dot, the
  request's ``Idempotency-Key`` header value (empty when the request has none),
  a dot, and the raw body bytes -- ``b"1767225600.order-42." + body``.

Items are separated by commas (spaces around them are ignored); several ``v1``
items may be given (while a secret is rotated: one matching is enough); items of
other names are ignored. The idempotency key may not contain a dot
(:data:`KEY_PATTERN`), which makes the payload unambiguous: a key and body cannot
be re-split into another key and body with the same bytes.

A message is accepted when a ``v1`` matches and ``t`` is within the tolerance of
the receiver's clock (``defaults.CHANNEL_SIGNATURE_TOLERANCE_SECONDS``, either way).
Since the key is signed, a captured request cannot be replayed under a new key;
since the time is signed, it cannot be replayed after the window; inside the window
the receiver's duplicate detection answers with the record it already created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from ...errors import DispatchflowError

#: What an ``Idempotency-Key`` may look like: 1-190 characters, no dot (see module docs).
KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-:+/=@]{1,190}")

#: Where integrators read about the scheme (quoted in error hints).
SCHEME_DOC = "'Channel signatures' in docs/operations.md"

_HEX = re.compile(r"[0-9a-fA-F]{64}")
_TIME = re.compile(r"[0-9]{1,12}")


class ChannelError(DispatchflowError):
    """A channel message was refused before it reached validation."""


class SignatureInvalid(ChannelError):
    """The signature header is missing, malformed, does not match, or is too old/new."""


class BadKey(ChannelError):
    """The ``Idempotency-Key`` header is not of the allowed form (:data:`KEY_PATTERN`)."""


@dataclass(frozen=True)
class SignatureHeader:
    """A parsed signature header: the signing time and the candidate HMACs (lower hex)."""

    timestamp: int
    candidates: tuple[str, ...]


def signed_payload(timestamp: int, key: str, body: bytes) -> bytes:
    """The bytes the HMAC covers: ``b"<timestamp>.<key>." + body`` (see module docs)."""
    return f"{int(timestamp)}.{key}.".encode() + body


def sign(secret: bytes, body: bytes, *, timestamp: int, key: str = "") -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds) with
    ``Idempotency-Key: key`` (``""``: no such header): ``t=<timestamp>,v1=<hex>``."""
    digest = hmac.new(secret, signed_payload(timestamp, key, body), hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={digest}"


def check_key(key: str | None) -> str:
    """The idempotency key to sign and store (``""`` when none was sent).

    Raises BadKey when it contains a dot or another character outside
    :data:`KEY_PATTERN`, or is longer than 190 characters.
    """
    if key is None or key == "":
        return ""
    if not KEY_PATTERN.fullmatch(key):
        raise BadKey("the Idempotency-Key header must be 1-190 characters among A-Z a-z 0-9 "
                     "and - _ : + / = @ (no dot, no space)",
                     hint="use a UUID or another token without dots, e.g. order-42-try-1")
    return key


def parse_header(header: str, name: str) -> SignatureHeader:
    """Parse ``t=<unix>,v1=<hex>[,v1=<hex>...]``; raises SignatureInvalid when it is not
    of that form (``name`` is the header's name, for the message)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        label, sep, value = item.strip().partition("=")
        label, value = label.strip(), value.strip()
        if not sep:
            continue
        if label == "t" and _TIME.fullmatch(value):
            timestamp = int(value)
        elif label == "v1" and _HEX.fullmatch(value):
            candidates.append(value.lower())
    if timestamp is None or not candidates:
        raise SignatureInvalid(
            f"the {name} header is not of the form t=<unix time>,v1=<hex HMAC-SHA256>",
            hint="sign '<t>.<Idempotency-Key>.<body>' with the channel's secret; a bare "
                 f"sha256=<hex> of the body is not accepted (it could be replayed); see "
                 f"{SCHEME_DOC}")
    return SignatureHeader(timestamp, tuple(candidates))


def verify(secret: bytes, body: bytes, header: str, *, key: str, now: float,
           tolerance: float, name: str = "signature") -> None:
    """Raise SignatureInvalid unless ``header`` signs (its time, ``key``, ``body``) under
    ``secret`` and its time is within ``tolerance`` seconds of ``now`` (Unix seconds).

    The HMAC is checked first (so only an authentic sender learns about its clock);
    the comparison takes the same time wherever the strings differ.
    """
    parsed = parse_header(header, name)
    expected = hmac.new(secret, signed_payload(parsed.timestamp, key, body),
                        hashlib.sha256).hexdigest().encode("ascii")
    # Every candidate is compared (no early exit), so timing says nothing about which.
    matched = [hmac.compare_digest(expected, c.encode("ascii")) for c in parsed.candidates]
    if not secret or not any(matched):
        raise SignatureInvalid(f"the {name} signature does not match the body",
                               hint="HMAC-SHA256, hex, of '<t>.<Idempotency-Key>.<raw body>' "
                                    f"with the channel's secret; see {SCHEME_DOC}")
    age = now - parsed.timestamp
    if abs(age) > tolerance:
        when = f"{age:.0f} s old" if age > 0 else f"{-age:.0f} s in the future"
        raise SignatureInvalid(
            f"the {name} timestamp is {when} (more than {tolerance:g} s): refused as a "
            "possible replay",
            hint="sign every send with the current time (a retry too) and keep the sender's "
                 "clock synchronised (NTP)")
