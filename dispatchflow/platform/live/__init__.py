"""The change feed: what changed, for pages that show records live.

Nothing new is written for it. Every change to a record already leaves a row in
the same transaction: an audit row (created, updated, deleted, changed by the
platform) or a timeline row (a rule fired, an action taken, an offer made,
answered or expired, a notification planned). The feed reads those two tables
(:mod:`.feed`); their ids give each change an event id that survives restarts
and lets a page that reconnects replay what it missed.

After a transaction that wrote such a row commits, a nudge goes out on a
:mod:`.broker` (in-process in the embedded default, Redis pub/sub when
``REDIS_URL`` is set, so a worker's commit reaches the web process); the
engine hook that sends it is :mod:`.watch`. A nudge carries nothing: whoever
listens reads the feed after its cursor, so a lost or extra nudge changes only
how soon, never what, a page is told. Authorization of what a viewer may see is
not here: the web layer filters each change through the records service.
"""
