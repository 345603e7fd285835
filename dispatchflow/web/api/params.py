"""The grammar of the API's request parameters: list queries and ``If-Match``.

Each parameter is parsed here and described here, so the OpenAPI document
(:mod:`.openapi`) and the code that enforces it read one definition:

``limit``
    whole number from 1 to :data:`~dispatchflow.platform.defaults.MAX_PAGE_SIZE`
    (ASCII digits); anything else is 422, never clamped.
``cursor``
    the ``next_cursor`` of a previous page: base64url without padding.
``sort``
    a sortable field (scalar kinds and the system fields), ``-`` in front for
    descending; 422 for a field that is not one (or that the caller may not read).
``filter``
    a DSL condition (docs/dsl.md), at most
    :data:`~dispatchflow.platform.defaults.MAX_FILTER_LENGTH` characters; 400 when
    it does not parse or type-check.
``If-Match``
    ``*`` (any current representation, RFC 9110 section 13.1.1) or the record's
    ETag ``"<row_version>"`` (a ``W/`` prefix is tolerated).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...dsl.model import EntityDef
from ...errors import ValidationError
from ...forms.validation import FieldError
from ...platform import defaults

#: Field kinds whose columns order meaningfully (geo, list and attachment do not).
SORTABLE_KINDS = frozenset({"string", "text", "integer", "decimal", "boolean", "date",
                            "datetime", "duration", "enum", "reference"})

#: System columns a list may be sorted by.
SORTABLE_SYSTEM = ("id", "created_at", "updated_at", "created_by", "row_version")

CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
LIMIT_PATTERN = re.compile(r"[0-9]{1,9}")
ETAG_PATTERN = r'^(\*|(W/)?"[0-9]{1,18}"|[0-9]{1,18})$'


@dataclass(frozen=True)
class ListQuery:
    """The parsed query of a list request."""

    limit: int
    cursor: str | None
    sort: str | None
    filter: str | None


def sortable_fields(entity: EntityDef) -> list[str]:
    """The fields a list of ``entity`` records may be sorted by, in a stable order."""
    names = list(SORTABLE_SYSTEM)
    names += [f.name for f in entity.fields.values()
              if not f.system and f.kind in SORTABLE_KINDS]
    return names


def parse_list_query(entity: EntityDef, args: Mapping[str, str]) -> ListQuery:
    """The list query in ``args``; ValidationError (422) naming each bad parameter."""
    errors: list[FieldError] = []
    raw_limit = args.get("limit")
    limit = defaults.PAGE_SIZE
    if raw_limit is not None:
        if LIMIT_PATTERN.fullmatch(raw_limit) is None:
            errors.append(FieldError("limit", "type", "limit must be a whole number "
                                     f"from 1 to {defaults.MAX_PAGE_SIZE}"))
        else:
            limit = int(raw_limit)
            if not 1 <= limit <= defaults.MAX_PAGE_SIZE:
                code = "minimum" if limit < 1 else "maximum"
                errors.append(FieldError("limit", code, f"limit must be from 1 to "
                                         f"{defaults.MAX_PAGE_SIZE}, not {limit}"))
    cursor = args.get("cursor")
    if cursor is not None and re.fullmatch(CURSOR_PATTERN, cursor) is None:
        errors.append(FieldError("cursor", "cursor",
                                 "invalid cursor: use next_cursor from the previous page"))
    sort = args.get("sort")
    if sort is not None and sort.removeprefix("-") not in sortable_fields(entity):
        errors.append(FieldError("sort", "sort", f"cannot sort by '{sort}': use one of "
                                 f"{', '.join(sortable_fields(entity))} ('-' first to "
                                 "sort descending)"))
    text = args.get("filter")
    if text is not None and not 1 <= len(text) <= defaults.MAX_FILTER_LENGTH:
        errors.append(FieldError("filter", "max_length" if text else "required",
                                 f"a filter is 1 to {defaults.MAX_FILTER_LENGTH} characters"))
    if errors:
        raise ValidationError("the list parameters are not valid", errors=errors)
    return ListQuery(limit, cursor or None, sort or None, text or None)


def list_parameters(entity: EntityDef) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of a list of ``entity`` records (see the module docs)."""
    sorts = sortable_fields(entity)
    return [
        {"name": "filter", "in": "query", "schema": {
            "type": "string", "minLength": 1, "maxLength": defaults.MAX_FILTER_LENGTH},
         "description": f"DSL condition over the record (docs/dsl.md), e.g. "
                        f"`{entity.name}.id > 10`; 400 when it does not parse or type-check"},
        {"name": "sort", "in": "query",
         "schema": {"type": "string", "enum": sorts + ["-" + s for s in sorts]},
         "description": "the field to sort by, '-' first for descending (default: id)"},
        {"name": "limit", "in": "query", "schema": {
            "type": "integer", "minimum": 1, "maximum": defaults.MAX_PAGE_SIZE,
            "default": defaults.PAGE_SIZE},
         "description": "records per page; out of range is 422 (never clamped)"},
        {"name": "cursor", "in": "query",
         "schema": {"type": "string", "pattern": CURSOR_PATTERN},
         "description": "next_cursor of the previous page (same filter and sort)"},
    ]


@dataclass(frozen=True)
class Precondition:
    """What ``If-Match`` asks for: one ``version``, or any current one (``None``, ``*``)."""

    version: int | None


def parse_if_match(header: str | None) -> Precondition | None:
    """The precondition of an ``If-Match`` header, or None when there is none.

    Raises ValidationError (422) for anything that is not ``*`` or one ETag.
    """
    if header is None:
        return None
    text = header.strip()
    if re.fullmatch(ETAG_PATTERN, text) is None:
        raise ValidationError("If-Match must be * or the record's ETag, e.g. \"3\"",
                              errors=[FieldError("If-Match", "pattern",
                                                 "If-Match must be * or one ETag")])
    if text == "*":
        return Precondition(None)
    return Precondition(int(text.removeprefix("W/").strip('"')))


def if_match_parameter(required: bool) -> dict[str, Any]:
    """The OpenAPI description of the ``If-Match`` header."""
    return {"name": "If-Match", "in": "header", "required": required,
            "schema": {"type": "string", "pattern": ETAG_PATTERN, "examples": ["*", '"1"']},
            "description": "the record's ETag (its row_version, e.g. \"3\"), or * for any "
                           "current version" + ("" if required else
                                                "; see the operation for what happens "
                                                "without it")}
