"""The portal: the server-rendered pages customers and staff use today.

What belongs here: home, create forms, confirmation and tracking (``views``),
my records, a record, forms bound to it and its flow actions (``records``),
what those pages share (``pages``: who may use a form, what a record offers)
and form posts with their uploads (``submissions``). Templates are under
``templates/portal/``. It may import ``platform``, ``web.auth`` and the shared
modules of ``web``.
"""
