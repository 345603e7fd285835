"""The imperative shell: applies what the pure layers decide to stored records.

One subpackage per concept, in layers (each may import those before it, never
those after; ``tests/test_import_graph.py`` checks it):

``store``     database, system and entity tables, migrations, published versions
``live``      the change feed read from audit and timeline rows, and its brokers
``records``   the records service, authorization, row filters in SQL, users, files
``notify``    notifications: compiled specs, recipients, templates, transports
``runtime``   the running app's state, the outbox runner and steps, flow instances,
              timers, SLA clocks, escalation, the job queue, the scheduler
``dispatch``  dispatch rounds and offers, batches, manual assignment, explanations
``intake``    inbound channels (webhook, e-mail) and CSV import
``assembly``  the composition root: a runtime with its services, the job registry
``demo``      the demo data and the living city

``config`` (settings from the environment) and ``defaults`` (named tunables) sit
below them all. Session, queue and clock are passed in, never global.
"""
