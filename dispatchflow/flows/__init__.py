"""Process semantics, pure: compiled flow graphs, the transition function, SLA clocks.

Holds the pure core of flows: (compiled flow, instance state, event, now) ->
(new state, effects, timers). The durable runner lives in ``platform``. No
Flask, SQLAlchemy, Redis or RQ here. (Flow definitions are already validated and
type-checked by ``dsl``; the runtime semantics arrive with the flows issue.)
"""
