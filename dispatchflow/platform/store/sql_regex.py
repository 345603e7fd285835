"""``matches`` in the database: RE2 behind SQLite's ``REGEXP``, checked patterns for ``~``.

SQLite has no regex engine of its own; SQLAlchemy registers Python's backtracking
``re.search`` as its ``REGEXP`` function, where one crafted pattern or text can
hold a worker (and the GIL) for seconds. :func:`register_sqlite_regexp` puts the
DSL's RE2 engine (:mod:`dispatchflow.dsl.regex`) there instead, so a filter reads
the same on SQLite as in rules. PostgreSQL keeps its own ``~``: a constant
pattern is first checked by RE2 (the same syntax subset, length cap included) and
for the constructs PostgreSQL reads differently; the statement timeout
(:mod:`.statement_time`) bounds the rest.
"""

from __future__ import annotations

import re
from typing import Any

from ...dsl.regex import REGEX_HINT, problem, regex

# Regex syntax PostgreSQL reads differently from RE2 (\b is a backspace there) or not
# at all (named groups, \z, \p{...} classes, \C, \Q...\E).
_NON_PORTABLE = re.compile(r"\\[bBzpPCQE]|\(\?P")


def pattern_problem(pattern: str) -> tuple[str, str] | None:
    """Why a constant pattern cannot be used in a filter: ``(message, hint)``, or None."""
    found = problem(pattern)
    if found is not None:
        return f"'matches' cannot run this pattern: {found[0]}", REGEX_HINT
    if _NON_PORTABLE.search(pattern):
        return ("this pattern uses \\b, \\B, \\z, \\p, \\C, \\Q or (?P<...>), which "
                "PostgreSQL reads differently from RE2 or not at all",
                "spell the word boundary out, e.g. (^|[^a-z])word([^a-z]|$)")
    return None


def sqlite_regexp(pattern: Any, text: Any) -> bool | None:
    """SQLite's ``REGEXP`` (``text REGEXP pattern``): RE2 search; NULL when either is."""
    if pattern is None or text is None:
        return None
    return regex(str(pattern)).search(str(text))


def register_sqlite_regexp(dbapi_conn: Any) -> None:
    """Make ``REGEXP`` on this sqlite3 connection run :func:`sqlite_regexp`."""
    dbapi_conn.create_function("regexp", 2, sqlite_regexp, deterministic=True)
