"""E-mail addresses of recipients: exactly one address per recipient, or none.

A recipient's address comes from data (a user's ``email`` attribute, a record's
field, a customer's ``email`` field). Put into a ``To:`` header as it is, a value such
as ``a@x.com, b@y.com`` would address two people -- one of whom nobody chose -- so
every address is checked to be a single plain ``local@domain`` before it is used.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address

# local@domain without list separators, brackets, quotes, comments or spaces.
_PLAIN = re.compile(r"[^\s@,;:<>()\[\]\"\\]+@[^\s@,;:<>()\[\]\"\\]+")


def single_address(value: object) -> str | None:
    """``value`` (stripped) when it is exactly one plain e-mail address, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _PLAIN.fullmatch(text):
        return None
    try:
        Address(addr_spec=text)
    except (ValueError, IndexError, HeaderParseError):
        return None
    return text


def refusal(value: object, whose: str) -> str:
    """Why ``value`` is not used as ``whose`` e-mail address (for logs and delivery rows)."""
    shown = str(value)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    return (f"{whose} {shown!r} is not exactly one e-mail address (a list, a display name "
            "or a malformed value); the message is not sent to it")
