"""The running application: its state, and the outbox runner that moves records on.

What belongs here: the runtime's state (``state``: settings, engine, clock,
queue, active version), the services it calls above it (``services``), the job
queue (``queue``), the outbox runner (``runner``: events, rules, flows, actions)
and its unit of work (``step``, ``facts``), stored flow instances and advancing
them (``instance_rows``, ``instances``), timers and the scheduler (``timers``,
``scheduler``), SLA clocks (``sla_clocks``) and escalation ladders
(``escalation``). It may import ``notify``, ``records``, ``store`` and the
layers below; dispatch and the job registry it reaches only through
:class:`~.services.Services`, which the composition root hands it.
"""
