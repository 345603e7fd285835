"""Find and read the files of a bundle folder.

A bundle is ``app.yaml``, ``roles.yaml`` and the folders ``entities``, ``forms``,
``flows``, ``channels``, ``notifications``, ``rules`` (``*.rules`` rule files and
``*.yaml`` decision tables) and ``tests``. This module only reads: each YAML file
is loaded with positions and validated against its kind's JSON Schema; each
``.rules`` file is kept as text for the parser. Paths in diagnostics are
relative to the bundle folder, with ``/`` separators.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import DiagnosticBag
from .schema_validation import validate_document
from .source import SourceFile
from .yaml_loader import YamlDocument, load_yaml

# folder (or file) -> schema kind; order is the order items are compiled in.
YAML_KINDS: tuple[tuple[str, str], ...] = (
    ("app.yaml", "app"),
    ("entities", "entity"),
    ("roles.yaml", "roles"),
    ("rules", "table"),
    ("forms", "form"),
    ("flows", "flow"),
    ("channels", "channel"),
    ("notifications", "notification"),
    ("tests", "testcases"),
)

MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass
class LoadedBundle:
    """The readable, schema-valid documents of a bundle, by kind, plus raw sources."""

    root: Path
    documents: dict[str, list[YamlDocument]] = field(default_factory=dict)
    rules_sources: list[SourceFile] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    # (kind, name) of items whose file failed its schema: later references to them
    # are not reported again, so one mistake gives one diagnostic.
    broken: set[tuple[str, str]] = field(default_factory=set)

    def digest(self) -> str:
        """SHA-256 over every file's path and text: the bundle's identity."""
        h = hashlib.sha256()
        for path in sorted(self.sources):
            h.update(path.encode() + b"\0" + self.sources[path].encode() + b"\0")
        return h.hexdigest()


def _read(path: Path, rel: str, bag: DiagnosticBag) -> SourceFile | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            bag.error("E1003", f"file is larger than {MAX_FILE_BYTES // 1024} KiB", rel)
            return None
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        bag.error("E1003", f"file is not valid UTF-8 ({exc.reason} at byte {exc.start})", rel,
                  hint="save the file as UTF-8")
        return None
    except OSError as exc:
        bag.error("E1003", f"cannot read file: {exc.strerror}", rel)
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    source = SourceFile(rel, text)
    bag.add_source(source)
    return source


def load_bundle(root: str | Path, bag: DiagnosticBag) -> LoadedBundle:
    """Read every bundle file under ``root``; problems go to ``bag``."""
    base = Path(root)
    bundle = LoadedBundle(base)
    if not base.is_dir():
        bag.error("E1003", "bundle folder does not exist or is not a folder", str(root))
        return bundle
    if not (base / "app.yaml").is_file():
        bag.error("E1022", "missing app.yaml", "app.yaml",
                  hint="every bundle starts with app.yaml (run 'dispatchflow init DIR' for one)")
    for name, kind in YAML_KINDS:
        target = base / name
        files = [target] if name.endswith(".yaml") else sorted(
            p for p in target.glob("*") if p.suffix in (".yaml", ".yml")) if target.is_dir() \
            else []
        for path in files:
            if not path.is_file():
                continue
            rel = path.relative_to(base).as_posix()
            source = _read(path, rel, bag)
            if source is None:
                continue
            bundle.sources[rel] = source.text
            doc = load_yaml(source, bag)
            if doc is None:
                continue
            if validate_document(doc, kind, bag):
                bundle.documents.setdefault(kind, []).append(doc)
            elif isinstance(doc.data, dict) and isinstance(doc.data.get(kind), str):
                bundle.broken.add((kind, doc.data[kind]))
    rules_dir = base / "rules"
    if rules_dir.is_dir():
        for path in sorted(rules_dir.glob("*.rules")):
            rel = path.relative_to(base).as_posix()
            source = _read(path, rel, bag)
            if source is not None:
                bundle.sources[rel] = source.text
                bundle.rules_sources.append(source)
    return bundle
