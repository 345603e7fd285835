"""The imperative shell: config, database, storage, versions, outbox, queue, timers, auth.

Applies the effects the pure layers return. Session, queue and clock are passed
in, never global.
"""
