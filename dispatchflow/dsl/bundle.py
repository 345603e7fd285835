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


def _kind_of(rel: str) -> str | None:
    """The YAML kind of a bundle-relative path, or None (``.rules`` and others)."""
    parts = rel.split("/")
    for name, kind in YAML_KINDS:
        if name.endswith(".yaml"):
            if rel == name:
                return kind
        elif len(parts) == 2 and parts[0] == name and parts[1].endswith((".yaml", ".yml")):
            return kind
    return None


def read_bundle_files(root: str | Path, bag: DiagnosticBag,
                      overrides: dict[str, str] | None = None) -> dict[str, str] | None:
    """Every bundle file under ``root`` as {relative path: text}; None if not a folder.

    ``overrides`` ({relative path: text}, e.g. an editor's unsaved buffers) replace
    or add bundle files; paths that are not bundle files are ignored, and texts
    get the same size limit as files on disk.
    """
    base = Path(root)
    if not base.is_dir():
        bag.error("E1003", "bundle folder does not exist or is not a folder", str(root))
        return None
    files: dict[str, str] = {}
    candidates = [base / "app.yaml", base / "roles.yaml"] + [
        p for name, _ in YAML_KINDS if not name.endswith(".yaml") and (base / name).is_dir()
        for p in sorted((base / name).glob("*")) if p.suffix in (".yaml", ".yml")] + \
        (sorted((base / "rules").glob("*.rules")) if (base / "rules").is_dir() else [])
    for path in candidates:
        if not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        text = _read(path, rel, bag)
        if text is not None:
            files[rel] = text
    for rel, text in (overrides or {}).items():
        files.pop(rel, None)
        if not is_bundle_file(rel):
            continue
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # lone surrogates: text no file could hold
            bag.error("E1003", f"file is not valid UTF-8 ({exc.reason} at character "
                      f"{exc.start})", rel, hint="save the file as UTF-8")
            continue
        if _within_limit(rel, size, bag):
            files[rel] = text[1:] if text.startswith("\ufeff") else text
    return files


def is_bundle_file(rel: str) -> bool:
    """Whether a bundle-relative path (``/`` separators) is a file the compiler reads."""
    return _kind_of(rel) is not None or (
        rel.startswith("rules/") and rel.count("/") == 1 and rel.endswith(".rules"))


def _within_limit(rel: str, size: int, bag: DiagnosticBag) -> bool:
    if size > MAX_FILE_BYTES:
        bag.error("E1003", f"file is larger than {MAX_FILE_BYTES // 1024} KiB", rel,
                  hint="split it into several files")
        return False
    return True


def _read(path: Path, rel: str, bag: DiagnosticBag) -> str | None:
    try:
        if not _within_limit(rel, path.stat().st_size, bag):
            return None
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        bag.error("E1003", f"file is not valid UTF-8 ({exc.reason} at byte {exc.start})", rel,
                  hint="save the file as UTF-8")
        return None
    except OSError as exc:
        bag.error("E1003", f"cannot read file: {exc.strerror}", rel)
        return None
    return text[1:] if text.startswith("\ufeff") else text


def load_bundle(root: str | Path, bag: DiagnosticBag,
                overrides: dict[str, str] | None = None) -> LoadedBundle:
    """Read every bundle file under ``root`` (``overrides`` in place of some, see
    :func:`read_bundle_files`); problems go to ``bag``."""
    files = read_bundle_files(root, bag, overrides)
    if files is None:
        return LoadedBundle(Path(root))
    return load_sources(files, bag, Path(root))


def load_sources(files: dict[str, str], bag: DiagnosticBag,
                 root: Path | None = None) -> LoadedBundle:
    """Load a bundle from {relative path: text} (a folder's files, or a stored version)."""
    bundle = LoadedBundle(root or Path("."))
    if "app.yaml" not in files:
        bag.error("E1022", "missing app.yaml", "app.yaml",
                  hint="every bundle starts with app.yaml (run 'dispatchflow init DIR' for one)")
    order = {kind: i for i, (_, kind) in enumerate(YAML_KINDS)}
    yaml_files = sorted(((rel, _kind_of(rel)) for rel in files if _kind_of(rel)),
                        key=lambda item: (order[item[1] or ""], item[0]))
    for rel, kind in yaml_files:
        assert kind is not None
        source = SourceFile(rel, files[rel])
        bag.add_source(source)
        bundle.sources[rel] = source.text
        doc = load_yaml(source, bag)
        if doc is None:
            continue
        if validate_document(doc, kind, bag):
            bundle.documents.setdefault(kind, []).append(doc)
        elif isinstance(doc.data, dict) and isinstance(doc.data.get(kind), str):
            bundle.broken.add((kind, doc.data[kind]))
    for rel in sorted(files):
        if rel.startswith("rules/") and rel.endswith(".rules"):
            source = SourceFile(rel, files[rel])
            bag.add_source(source)
            bundle.sources[rel] = source.text
            bundle.rules_sources.append(source)
    return bundle
