"""What the runtime calls in the layers above it, handed in by the composition root.

The runner, steps, the queue and the scheduler live below dispatch (and below
the job registry), yet a record event may start a dispatch round, an offer's
timer belongs to dispatch, an action is gated by the actor's offer, and an
inline queue runs jobs that dispatch and notify define. Rather than import
upwards, they call the functions collected in one :class:`Services` value,
which :mod:`dispatchflow.platform.assembly` builds from the layers above and
sets on every :class:`~.state.RuntimeState` it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .queue import Jobs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..assembly import Runtime
    from ..records.actors import Actor
    from .step import Step

#: A job: the runtime first, plain arguments after (see :mod:`~..assembly.jobs`).
Job = Callable[..., Any]
#: A timer kind's handler: the step of the timer's record and the timer's payload.
TimerHandler = Callable[["Step", Mapping[str, Any]], None]
#: Something to do after a record event's rules and flows ran, in the same step.
EventHook = Callable[["Step", str, Mapping[str, Any]], None]
#: Before or after an action's transition, in its step (the actor and the action).
ActionHook = Callable[["Step", "Actor", str], None]
#: Runs a dispatch round; ``then`` may take the record's events in its transaction.
RoundRunner = Callable[..., Jobs]


@dataclass(frozen=True)
class Services:
    """The layers above the runtime, as the runtime sees them (see module docs)."""

    #: Job name -> job, for the inline queue (RQ workers find them by the same names).
    jobs: Mapping[str, Job]
    #: Timer kinds handled above the runtime (``flow``, ``sla`` and ``escalation``
    #: timers are the runtime's own), e.g. ``offer``.
    timer_handlers: Mapping[str, TimerHandler]
    #: Called for every record event after its rules and flows (dispatch hooks).
    on_record_event: EventHook
    #: A ``request dispatch`` effect: (step, policy or None, the rule that asked).
    request_dispatch: Callable[[Step, str | None, str], Any]
    #: Runs one dispatch round now (``run_round(rt, entity, id, round_id, then=...)``).
    run_round: RoundRunner
    #: Refuses an action the actor may not take on the step's record now (raises).
    check_action: ActionHook
    #: Around an action's transition (an offer accepted, rejected, an assignment).
    before_action: ActionHook
    after_action: ActionHook
    #: Groups of batched dispatch rounds whose window has passed (scheduler).
    due_batches: Callable[[Runtime, Connection, datetime], list[list[int]]]
