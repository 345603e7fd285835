"""Who is acting: a user (with roles and attributes), a token holder, or the system."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The subject of an authorization decision.

    ``attributes`` hold the bundle's ``user_fields`` (e.g. ``regions``,
    ``technician``); ``scopes`` restrict an API token (empty = the user's full
    rights); ``channel`` says how the request came in (web, api, webhook, ...).
    """

    user_id: str
    name: str = ""
    roles: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    channel: str = "web"
    scopes: tuple[str, ...] = ()
    is_system: bool = False

    def as_user_record(self) -> dict[str, Any]:
        """The ``user`` record row filters see (``user.id``, ``user.regions``...)."""
        return {"id": self.user_id, "name": self.name, "roles": list(self.roles),
                **self.attributes}


SYSTEM_ACTOR = Actor("system", "system", is_system=True, channel="system")
