""""Did you mean" suggestions for misspelt names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class Hint(str):
    """A "did you mean" hint that also carries, as data, the ``word`` it is about and
    the ``replacements`` it names, so an editor can offer them as quick fixes
    without parsing the text. Anywhere else it is just the hint's text."""

    word: str
    replacements: tuple[str, ...]

    def __new__(cls, text: str, word: str, replacements: tuple[str, ...]) -> Hint:
        hint = super().__new__(cls, text)
        hint.word, hint.replacements = word, replacements
        return hint

    def __reduce__(self) -> tuple[type[Hint], tuple[str, str, tuple[str, ...]]]:
        return Hint, (str(self), self.word, self.replacements)  # for copy and pickle


def did_you_mean(word: str, candidates: Iterable[str]) -> Hint | None:
    """A hint naming the closest candidate(s), or None when nothing is close."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(word, pool, n=2, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    if not close:
        return None
    return Hint("did you mean " + " or ".join(f"'{c}'" for c in close) + "?", word, tuple(close))


def one_of(candidates: Iterable[str], limit: int = 12) -> str:
    """``'a', 'b' or 'c'`` for hints listing what is allowed."""
    items = sorted(set(candidates))
    shown = [f"'{c}'" for c in items[:limit]] + (["..."] if len(items) > limit else [])
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " or " + shown[-1]
