"""Live updates: ``GET /live``, a Server-Sent Events stream of record changes.

What belongs here: the stream (``views``) and how it turns the platform's
change feed (:mod:`dispatchflow.platform.live`) into the events one viewer may
see (``stream``). Events carry ids, kind and row version only; pages re-fetch
the record through the normal authorized routes. It may import ``platform``,
``web.auth`` and the shared modules of ``web``.
"""
