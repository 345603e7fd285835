"""Where a redirect after login may go: same-origin relative paths only.

An open redirect lets a phishing link bounce through our login page
(``/login?next=//evil.example``). Browsers are lenient with what follows
``Location:``: they drop tabs and newlines (``/\\t/evil`` becomes ``//evil``),
read ``\\`` as ``/``, and a server or proxy may decode ``%2F`` once more. So a
target is refused unless, after percent-decoding it until it stops changing,

* it has no control, format or whitespace character and no backslash,
* it has no non-ASCII punctuation or symbol (fullwidth solidus ``／``, fraction
  slash ``⁄``... which URL parsers and IDNA may map to ``/``), also after NFKC
  normalisation,
* the standard URL parser sees neither a scheme nor a host in it, and its path
  starts with exactly one ``/``.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

#: How many rounds of percent-decoding a target may need before it is stable.
_MAX_DECODES = 4


def safe_local_path(target: str | None) -> str | None:
    """``target`` if it is a same-origin relative path (see module docs), else None."""
    if not target:
        return None
    decoded = _fully_decoded(target)
    if decoded is None:
        return None
    for form in {target, decoded, unicodedata.normalize("NFKC", decoded)}:
        if not _is_local_path(form):
            return None
    return target


def _fully_decoded(target: str) -> str | None:
    """``target`` percent-decoded until stable; None when it keeps changing or is not UTF-8."""
    current = target
    for _ in range(_MAX_DECODES):
        try:
            decoded = unquote(current, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == current:
            return current
        current = decoded
    return None


def _is_local_path(text: str) -> bool:
    if any(_suspicious(ch) for ch in text):
        return False
    parts = urlsplit(text)
    if parts.scheme or parts.netloc:
        return False
    return text.startswith("/") and not text.startswith("//")


def _suspicious(ch: str) -> bool:
    """Characters a browser may drop, fold into ``/`` or read as a separator."""
    if ch == "\\" or ch.isspace():
        return True
    category = unicodedata.category(ch)
    if category[0] in "CZ":  # controls, format characters, separators, unassigned
        return True
    return not ch.isascii() and category[0] not in "LMN"
