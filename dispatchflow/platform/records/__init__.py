"""Records: reading and writing them on someone's behalf.

What belongs here: the records service (``service``: create, update, list,
delete, with validation, audit and events), authorization (``authz``: roles,
row filters, field masks; ``candidate_masks``), list filters compiled to SQL
(``sql_filter``, ``views``), actors, users and tokens (``actors``, ``users``),
stored files and the record fields holding them (``files``, ``attachments``)
and customers' tracking links (``tracking``). It may import ``store`` and the
layers below it; the runtime only for type annotations.
"""
