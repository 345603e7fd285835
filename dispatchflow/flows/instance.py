"""Where one flow instance is: :class:`InstanceState`, small, immutable, serialisable.

The transition function (:mod:`.transition`) takes one and returns the next;
the platform stores it as JSON (:meth:`InstanceState.to_dict`) beside the
record and reads it back with :meth:`InstanceState.from_dict`. It holds no
history: the event log that rebuilds it is kept by the platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import FlowError, NodePath


@dataclass(frozen=True, slots=True)
class InstanceState:
    """Where one flow instance is. Small: no history (the event log is kept elsewhere).

    ``active`` holds the node paths of the active leaf states in file order
    (``("in_service",)``, ``("repair_and_parts", "repair", "working")``);
    ``completed`` the node paths of parallel regions that reached a final state;
    ``final`` whether the instance has ended; ``step`` counts accepted events
    (``start`` is step 0); ``timers`` the armed timers as (timer id, step set).
    """

    flow: str
    version: int
    active: tuple[NodePath, ...]
    completed: tuple[NodePath, ...] = ()
    final: bool = False
    step: int = 0
    timers: tuple[tuple[str, int], ...] = ()

    @property
    def states(self) -> tuple[str, ...]:
        """Names of the active leaf states, in file order."""
        return tuple(node[-1] for node in self.active)

    def is_in(self, state: str) -> bool:
        """Whether ``state`` is active (as a leaf or as an enclosing parallel state)."""
        return any(state in node[::2] for node in self.active)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (:meth:`from_dict` reads it back)."""
        return {"flow": self.flow, "version": self.version, "step": self.step,
                "final": self.final, "active": [list(p) for p in self.active],
                "completed": [list(p) for p in self.completed],
                "timers": dict(self.timers)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceState:
        """Read :meth:`to_dict` output back; FlowError if it is malformed."""
        try:
            state = cls(
                flow=str(data["flow"]), version=_int(data["version"]),
                active=tuple(_node(p) for p in data["active"]),
                completed=tuple(_node(p) for p in data.get("completed", ())),
                final=bool(data.get("final", False)), step=_int(data.get("step", 0)),
                timers=tuple((str(k), _int(v)) for k, v in
                             sorted(dict(data.get("timers") or {}).items())))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FlowError(f"malformed flow instance state: {exc!r}",
                            hint="pass the dict InstanceState.to_dict() produced") from exc
        return state


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _node(value: Any) -> NodePath:
    if not isinstance(value, list | tuple) or not value or \
            not all(isinstance(p, str) for p in value):
        raise TypeError(f"expected a state path (a list of names), got {value!r}")
    return tuple(value)
