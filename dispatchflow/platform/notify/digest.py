"""Digests: several messages of one notification to one recipient, sent as one.

With ``digest_window: 15m`` the first message of a notification to a recipient is
held until the window ends (its *head*); messages planned while the head is still
held attach to it (status ``digested``). When the head is sent, :func:`compose`
turns it and its attachments into one message: one message alone goes out as
it is; several become ``【汇总】3 条 SLA 超时预警`` / ``[Digest] 3 × SLA breach
warning`` listing each message's subject and text, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from .. import defaults


@dataclass(frozen=True)
class Composed:
    """The text to send: subject, plain text, HTML fragment, and the items listed."""

    subject: str
    text: str
    html: str
    items: tuple[dict[str, Any], ...]


def digest_subject(count: int, label: str, locale: str) -> str:
    """``【汇总】3 条 SLA 超时预警`` (zh) or ``[Digest] 3 × SLA breach warning``."""
    if locale == "zh":
        space = " " if label[:1].isascii() else ""
        return f"【汇总】{count} 条{space}{label}"
    return f"[Digest] {count} × {label}"


def compose(head: Mapping[str, Any], attached: Sequence[Mapping[str, Any]],
            label: str) -> Composed:
    """The message for a head row and the rows attached to it (see module docs)."""
    rows = [head, *attached]
    if len(rows) == 1:
        return Composed(head["subject"], head["body_text"], head["body_html"], ())
    locale = str(head["locale"])
    limit = defaults.NOTIFY_DIGEST_MAX_ITEMS
    shown, rest = rows[:limit], len(rows) - limit
    text_parts, html_parts = [], []
    for i, row in enumerate(shown, 1):
        body = "\n".join("   " + line if line else "" for line in
                         str(row["body_text"]).splitlines())
        text_parts.append(f"{i}. {row['subject']}\n{body}".rstrip())
        html_parts.append(Markup("<li><strong>{}</strong>{}</li>").format(
            row["subject"], Markup(row["body_html"])))
    if rest > 0:
        more = f"…还有 {rest} 条" if locale == "zh" else f"… and {rest} more"
        text_parts.append(more)
        html_parts.append(Markup("<li>{}</li>").format(more))
    items = tuple({"delivery_id": int(r["id"]), "record_id": int(r["record_id"]),
                   "subject": str(r["subject"]), "body": str(r["body_text"])} for r in rows)
    html = Markup("<ol>{}</ol>").format(Markup("").join(html_parts))
    return Composed(digest_subject(len(rows), label, locale), "\n\n".join(text_parts),
                    str(html), items)

