"""Reading a bundle folder with an editor's unsaved texts in place of some files."""

from __future__ import annotations

from pathlib import Path

from dispatchflow.dsl.bundle import MAX_FILE_BYTES, is_bundle_file, read_bundle_files
from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.dsl.diagnostics import DiagnosticBag


def test_overrides_replace_and_add_bundle_files_only(make_bundle) -> None:
    root: Path = make_bundle()
    bag = DiagnosticBag()
    files = read_bundle_files(root, bag, {"app.yaml": "\ufeffapp: other\n",
                                          "rules/new.rules": "", "notes.txt": "x"})
    assert files is not None and len(bag) == 0
    assert files["app.yaml"] == "app: other\n"  # a byte-order mark is dropped, as on disk
    assert "rules/new.rules" in files and "notes.txt" not in files


def test_an_oversized_or_non_utf8_override_is_e1003(make_bundle) -> None:
    bag = DiagnosticBag()
    files = read_bundle_files(make_bundle(), bag, {
        "rules/big.rules": "#" * (MAX_FILE_BYTES + 1), "rules/bad.rules": "x\udcff"})
    assert files is not None and "rules/big.rules" not in files and "rules/bad.rules" not in files
    assert [(d.code, d.file, d.message, d.hint) for d in bag.sorted()] == [
        ("E1003", "rules/bad.rules", "file is not valid UTF-8 (surrogates not allowed at "
         "character 1)", "save the file as UTF-8"),
        ("E1003", "rules/big.rules", "file is larger than 2048 KiB", "split it into several files"),
    ]


def test_compile_with_overrides_checks_the_unsaved_text(make_bundle) -> None:
    root = make_bundle()
    rules = 'ruleset t on work_order.created\n\nrule "r"\n  when work_order.priorty == "P1"\n' \
            '  then tag work_order "x"\n'
    result = compile_bundle(root, {"rules/t.rules": rules})
    assert [(d.code, d.line, d.column) for d in result.diagnostics] == [("E3001", 4, 19)]
    assert result.app is None and result.draft is not None  # the draft still has the entities
    assert "work_order" in result.draft.entities


def test_bundle_files_are_the_ones_the_compiler_reads() -> None:
    assert all(is_bundle_file(p) for p in ("app.yaml", "roles.yaml", "entities/a.yaml",
                                            "rules/t.rules", "rules/sla.yaml", "flows/f.yml"))
    assert not any(is_bundle_file(p) for p in ("README.md", "rules/x/t.rules", "entities",
                                                "demo/orders.csv", "tests/sub/a.yaml"))
