"""Storage: the database and what is kept in it, independent of any one record.

What belongs here: engines and the system tables (``db``), the entity tables
generated per app version (``storage``), schema migrations between versions
(``migrate``), published versions and their semantic diff (``versions``,
``app_diff``), shared SQL statements (``statements``), the list-query time
limit (``statement_time``), SQLite's REGEXP on RE2 (``sql_regex``) and JSON
conversion of stored values (``jsonvalues``). It may import ``dsl`` and the
pure layers, ``config`` and ``defaults``; nothing else of ``platform``.
"""
