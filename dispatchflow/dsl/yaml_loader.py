"""Load bundle YAML with positions and without YAML 1.1 surprises.

PyYAML's ``safe_load`` follows YAML 1.1: ``NO`` becomes False, ``17:45`` becomes
1065 and ``02134`` becomes 1116. Bundles are written by operations staff who
mean strings there, so this loader resolves plain scalars with a YAML 1.2-core
style resolver instead: only ``true``/``false`` are booleans, only ``null``/``~``
/empty are null, integers have no leading zeros, and everything else (times,
dates, ``yes``/``no``/``on``/``off``, zip codes) stays a string. Duplicate keys
are reported rather than silently overwritten. Every value's position is kept so
schema and type errors point at the right line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .diagnostics import DiagnosticBag
from .source import Origin, SourceFile, Span

Path = tuple[str | int, ...]


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~5x faster composing


class _Yaml12Resolver(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader whose implicit scalar resolution follows the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict = {}


_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?|(?:0|[1-9][0-9]*)[eE][-+]?[0-9]+)$",
     "-+0123456789"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]
for _tag, _pattern, _first in _RESOLVERS:
    _Yaml12Resolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))

_STR = "tag:yaml.org,2002:str"


@dataclass
class YamlDocument:
    """A loaded YAML file: plain data plus the position of every key and value."""

    source: SourceFile
    data: Any
    value_spans: dict[Path, Span] = field(default_factory=dict)
    key_spans: dict[Path, Span] = field(default_factory=dict)
    origins: dict[Path, Origin] = field(default_factory=dict)
    raw_scalars: dict[Path, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.source.path

    def span(self, path: Path) -> Span | None:
        """Position of the value at ``path``, falling back to the nearest ancestor."""
        p = tuple(path)
        while True:
            if p in self.value_spans:
                return self.value_spans[p]
            if not p:
                return None
            p = p[:-1]

    def key_span(self, path: Path) -> Span | None:
        """Position of the key naming ``path`` (for unknown-key errors), else the value's."""
        return self.key_spans.get(tuple(path)) or self.span(path)

    def origin(self, path: Path) -> Origin:
        """Where the string at ``path`` starts, for mapping expression positions."""
        return self.origins.get(tuple(path)) or Origin(self.path, *(
            (s.line, s.column) if (s := self.span(path)) else (1, 1)))

    def raw(self, path: Path) -> str | None:
        """The scalar's text as written (before resolution), e.g. ``02134``."""
        return self.raw_scalars.get(tuple(path))


def value_at(data: Any, path: Path) -> Any:
    """The value at ``path`` in loaded YAML ``data``, or None where a key or index along
    it is absent (or the value there is not a mapping or list)."""
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def load_yaml(source: SourceFile, bag: DiagnosticBag) -> YamlDocument | None:
    """Parse one YAML file; on a syntax error report E1001 and return None."""
    bag.add_source(source)
    try:
        node = yaml.compose(source.text, Loader=_Yaml12Resolver)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = Span.point(mark.line + 1, mark.column + 1) if mark else None
        if span is not None and not (source.line_text(span.line) or "").strip():
            # An error at the end of the file: point after the last text instead.
            line = span.line
            while line > 1 and not (source.line_text(line) or "").strip():
                line -= 1
            span = Span.point(line, len((source.line_text(line) or "").rstrip()) + 1)
        problem = exc.problem or str(exc)
        hint = None
        line_text = source.line_text(mark.line + 1) if mark else None
        if mark and line_text is not None and "\t" in line_text[: mark.column + 1]:
            hint = "YAML does not allow tabs for indentation; use spaces"
        elif "mapping values are not allowed" in problem:
            hint = "a ':' inside a plain value needs quotes, e.g. \"09:00-18:00\""
        bag.error("E1001", f"YAML syntax error: {problem}", source.path, span, hint)
        return None
    except yaml.YAMLError as exc:
        bag.error("E1001", f"YAML syntax error: {exc}", source.path)
        return None
    doc = YamlDocument(source, None)
    if node is not None and _alias_problem(node, source.path, bag):
        return None
    doc.data = _build(node, (), doc, bag) if node is not None else None
    return doc


#: Values a file may expand to through aliases (``*name``); beyond it is an alias bomb.
MAX_VALUES = 100_000


def _alias_problem(root: yaml.Node, path: str, bag: DiagnosticBag) -> bool:
    """Report (E1010) an alias that contains itself or a file expanding to more than
    :data:`MAX_VALUES` values; both would hang or crash the loader."""
    counts: dict[int, int] = {}  # node id -> values it expands to

    def size(node: yaml.Node, inside: frozenset[int]) -> int:
        if id(node) in inside:
            raise _Recursive(node)
        if id(node) not in counts:
            children = [n for pair in node.value for n in pair] if isinstance(
                node, yaml.MappingNode) else node.value if isinstance(node, yaml.SequenceNode) \
                else []
            inner = inside | {id(node)}
            counts[id(node)] = 1 + sum(size(child, inner) for child in children)
        return counts[id(node)]

    try:
        total = size(root, frozenset())
    except _Recursive as exc:
        bag.error("E1010", "an alias contains itself", path, _node_span(exc.node),
                  "YAML aliases (*name) cannot refer to the value they are part of")
        return True
    if total > MAX_VALUES:
        bag.error("E1010", f"the file expands to {total} values through aliases, more than "
                  f"{MAX_VALUES}", path, hint="write the values out instead of nesting aliases")
        return True
    return False


class _Recursive(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _node_span(node: yaml.Node) -> Span:
    s, e = node.start_mark, node.end_mark
    return Span(s.line + 1, s.column + 1, e.line + 1, e.column + 1)


def _scalar_origin(node: yaml.ScalarNode, source: SourceFile) -> Origin:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if node.style in ('"', "'"):
        return Origin(source.path, line, col + 1)
    if node.style in ("|", ">"):
        # Content starts on the next non-empty line; its indentation is the block indent.
        n = line + 1
        while (text := source.line_text(n)) is not None and not text.strip():
            n += 1
        text = source.line_text(n) or ""
        indent = len(text) - len(text.lstrip(" "))
        return Origin(source.path, line + 1, indent + 1, block_indent=indent)
    return Origin(source.path, line, col, block_indent=node.start_mark.column)


def _scalar_value(node: yaml.ScalarNode) -> Any:
    tag, text = node.tag, node.value
    if tag.endswith(":bool"):
        return text.lower() == "true"
    if tag.endswith(":int"):
        return int(text)
    if tag.endswith(":float"):
        return float(text)
    if tag.endswith(":null"):
        return None
    return text


def _build(node: yaml.Node, path: Path, doc: YamlDocument, bag: DiagnosticBag) -> Any:
    doc.value_spans[path] = _node_span(node)
    if isinstance(node, yaml.ScalarNode):
        doc.raw_scalars[path] = node.value
        if node.tag == _STR or node.style is not None and node.style != "":
            doc.origins[path] = _scalar_origin(node, doc.source)
            return node.value
        implicit = _Yaml12Resolver.resolve(_Yaml12Resolver, yaml.ScalarNode, node.value,
                                           (True, False))
        if node.tag == implicit:
            value = _scalar_value(node)
            if isinstance(value, str):
                doc.origins[path] = _scalar_origin(node, doc.source)
            return value
        if node.tag.startswith("tag:yaml.org,2002:"):
            bag.error("E1010", f"explicit tag !!{node.tag.rsplit(':', 1)[1]} is not allowed "
                      f"here", doc.path, _node_span(node),
                      "remove the '!!' tag and quote the value if it is text")
            return node.value
        bag.error("E1010", f"unsupported YAML tag {node.tag}", doc.path, _node_span(node),
                  "remove the '!' tag; bundles use plain YAML values")
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), doc, bag) for i, child in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                bag.error("E1012", "mapping keys must be plain names", doc.path,
                          _node_span(key_node))
                continue
            key = key_node.value  # raw text: `on:` and `NO:` stay strings
            if key in result:
                bag.error("E1002", f"duplicate key '{key}'", doc.path, _node_span(key_node),
                          "YAML keeps only the last one; remove or rename the duplicate")
            doc.key_spans[path + (key,)] = _node_span(key_node)
            result[key] = _build(value_node, path + (key,), doc, bag)
        return result
    return None
