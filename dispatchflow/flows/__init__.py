"""Process semantics, pure: compiled flow graphs, the transition function, SLA clocks.

What belongs here: compiling a checked flow (``App.flows``) into an immutable
graph (``model``, ``compile``); the transition function
(compiled flow, instance state, event, record, now) -> (new state, effects,
timers to set and cancel) (``transition``), the values it takes and returns
(``instance``, ``events``, ``outcome``) and what it derives once per flow
(``plan``); the graph checks ``check`` reports (``analysis``); SLA clocks
(``sla``), escalation levels (``escalation``) and business-calendar arithmetic
(``calendar``). Everything is a function of its inputs: no wall clock, no
randomness, no I/O, no Flask, SQLAlchemy, Redis or RQ. The durable runner that
stores instances, holds timers and applies effects lives in ``platform``.
"""

from .analysis import FlowProblem, analyse_flow
from .compile import compile_flow, compile_flows
from .events import ActionTaken, Event, EventOccurred, RecordChanged, TimerFired
from .instance import InstanceState
from .model import CompiledFlow, FlowError
from .outcome import ActionOption, Outcome, Taken, TimerRequest
from .transition import actions_available, apply, start

__all__ = [
    "ActionOption", "ActionTaken", "CompiledFlow", "Event", "EventOccurred", "FlowError",
    "FlowProblem", "InstanceState", "Outcome", "RecordChanged", "Taken", "TimerFired",
    "TimerRequest", "actions_available", "analyse_flow", "apply", "compile_flow",
    "compile_flows", "start",
]
