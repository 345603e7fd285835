"""The regular expressions of ``matches``: RE2, in time linear in the text.

Python's ``re`` backtracks: ``"aaaaaaaaaaaaaaaaaaaaaaaaaaaa!" matches "^(a+)+$"``
takes seconds and doubles with each extra ``a``, holding the GIL all the while.
A pattern or a text can come from a request (``?filter=``, a record field), so
``matches`` runs on RE2 (``google-re2``) everywhere: compiled rules, filters
evaluated in Python and SQLite's ``REGEXP``. RE2 has no backreferences and no
lookaround; :func:`problem` says so before anything runs (``dispatchflow
check`` reports it as E3018, a filter as a 400).

Patterns are at most :data:`MAX_PATTERN_CHARS` long, compiled programs at most
:data:`MAX_PROGRAM_BYTES`, and compiled patterns are kept in an LRU cache of
:data:`CACHE_SIZE` entries. Errors are :class:`re.error` (with ``pattern`` and
``pos``), which every evaluator already reports as an evaluation error.
"""

from __future__ import annotations

import functools
import re

import re2

#: Longest pattern ``matches`` accepts, in characters.
MAX_PATTERN_CHARS = 1000

#: Memory RE2 may use for one compiled pattern, in bytes (bounds compile time too).
MAX_PROGRAM_BYTES = 2 << 20

#: How many compiled patterns are kept (least recently used ones are dropped).
CACHE_SIZE = 512

#: What to say when a pattern needs what RE2 leaves out.
REGEX_HINT = ("'matches' runs in linear time (RE2 syntax): no backreferences (\\1), no "
              "lookaround ((?=...), (?!...), (?<=...), (?<!...)), repeat counts up to 1000; "
              "test the parts separately, e.g. x matches \"a\" and not (x matches \"b\")")

# The fragment RE2 names at the end of its messages ("invalid perl operator: (?=").
_FRAGMENT = re.compile(r": (.+)$", re.S)


class Regex:
    """A compiled ``matches`` pattern; :meth:`search` is a linear-time search."""

    __slots__ = ("pattern", "_re2")

    def __init__(self, pattern: str) -> None:
        """Compile ``pattern``; raises re.error (see :func:`problem`)."""
        engine, found = _compile(pattern)
        if engine is None:
            assert found is not None
            raise re.error(found[0], pattern, found[1])
        self.pattern = pattern
        self._re2 = engine

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text``."""
        data = text.encode("utf-8", "surrogatepass")
        return bool(self._re2.Match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # errors are raised, not printed to stderr
    options.never_capture = True  # only "is there a match" is asked
    options.max_mem = MAX_PROGRAM_BYTES
    return options


_OPTIONS = _options()
_UNANCHORED = re2._Anchor.UNANCHORED


def _compile(pattern: str) -> tuple[re2._re2.RE2 | None, tuple[str, int | None] | None]:
    """The RE2 program of ``pattern``, or None and why not (see :func:`problem`)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return None, (f"the pattern has {len(pattern)} characters; at most "
                      f"{MAX_PATTERN_CHARS} are allowed", None)
    # The module's own wrapper re-encodes the text and builds match objects on every
    # search (about 8x slower on short texts); the binding's RE2 object is the engine.
    engine = re2._re2.RE2(pattern.encode("utf-8", "surrogatepass"), _OPTIONS)
    if engine.ok():
        return engine, None
    reason = engine.error()
    reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    match = _FRAGMENT.search(reason)
    fragment = match.group(1) if match else ""
    pos = pattern.find(fragment) if fragment else -1
    return None, (reason, pos if pos >= 0 else None)


def problem(pattern: str) -> tuple[str, int | None] | None:
    """Why ``matches`` cannot run ``pattern``: ``(message, position or None)``, or None.

    Covers patterns over the length cap, invalid ones, and valid Python ones that
    need backtracking (``\\1``, ``(?=...)``, ``(?<!...)``): the message says which
    and where.
    """
    return _compile(pattern)[1]


@functools.lru_cache(maxsize=CACHE_SIZE)
def regex(pattern: str) -> Regex:
    """The compiled pattern (from the LRU cache when recently used); raises re.error."""
    return Regex(pattern)
