"""Designer benchmark: the editor's live check and completion on the reference bundle.

Run::

    python bench/designer_bench.py [--edits N] [--completions M] [--seed S]

In process, on a copy of ``examples/field-service`` in a temporary folder:

- ``live check``: N one-character edits of ``rules/triage.rules`` (a space added
  at the end of a line, cycling through the lines; every other edit also turns
  ``customer.tier`` into ``customer.tiex``, so half the checks report an error),
  each re-checked through what ``dispatchflow lsp`` runs after the quiet period:
  :meth:`BundleSession.recheck` with the edited text as an open document and the
  checker of ``dispatchflow lsp`` (``check_bundle`` with overrides). The whole
  bundle is checked every time (nothing incremental yet). The debounce delay is not
  included.
- ``baseline check`` (same run, same N): what ``dispatchflow check`` does in
  process -- ``check_bundle`` of the folder on disk, no open documents, nothing
  printed.
- ``completion``: M requests of :func:`dispatchflow.lsp.assist.complete` at
  random (seeded) positions of ``triage.rules`` and ``dispatch.rules``, a third of
  them right after a ``.`` (field completion), with the bundle's draft app.

The last line is ``check_ms_p50=A check_ms_p95=B complete_ms_p50=C
baseline_check_ms_p50=D``. ``replay_events_per_s`` joins it with the replay
feature (see bench/README.md).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dispatchflow.cli.common import check_bundle  # noqa: E402
from dispatchflow.cli.editor import _check  # noqa: E402
from dispatchflow.lsp import assist  # noqa: E402
from dispatchflow.lsp.session import BundleSession  # noqa: E402

TRIAGE = "rules/triage.rules"
DISPATCH = "rules/dispatch.rules"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def edits(text: str, n: int) -> list[str]:
    """``n`` versions of ``text``, each one character away from the original or
    two from it (a space at a line's end, plus ``tier`` -> ``tiex`` every other)."""
    lines = text.split("\n")
    out = []
    for i in range(n):
        edited = list(lines)
        k = i % len(lines)
        edited[k] += " "
        version = "\n".join(edited)
        if i % 2:
            version = version.replace("customer.tier", "customer.tiex", 1)
        out.append(version)
    return out


def live_checks(root: Path, n: int) -> tuple[list[float], list[float], int]:
    """(live check ms, baseline check ms, errors seen in the live checks)."""
    session = BundleSession(root, _check)
    original = (root / TRIAGE).read_text("utf-8")
    session.recheck({TRIAGE: original})  # warm-up: grammar and schema caches
    check_bundle(root)
    live, baseline, errors = [], [], 0
    for text in edits(original, n):
        start = time.perf_counter()
        by_file = session.recheck({TRIAGE: text})
        live.append(_ms(start))
        errors += sum(1 for items in by_file.values() for d in items if d.is_error)
        start = time.perf_counter()
        result = check_bundle(root)
        baseline.append(_ms(start))
        if any(d.is_error for d in result.diagnostics):
            raise SystemExit("the reference bundle does not check clean: fix it first")
    return live, baseline, errors


def completions(root: Path, m: int, seed: int) -> tuple[list[float], Counter[str]]:
    """Milliseconds of ``m`` completion requests at random positions, and how many
    suggestions of each kind they gave."""
    draft = BundleSession(root, _check).check({}).draft
    assert draft is not None, "the reference bundle has no draft app"
    rng = random.Random(seed)
    files = {rel: (root / rel).read_text("utf-8").splitlines() for rel in (TRIAGE, DISPATCH)}
    times: list[float] = []
    kinds: Counter[str] = Counter()
    for i in range(m):
        lines = list(files[rng.choice(sorted(files))])
        line = rng.randrange(len(lines))
        dots = [k + 1 for k, ch in enumerate(lines[line]) if ch == "."]
        if i % 3 == 0 and dots:
            column = rng.choice(dots)
        else:
            column = rng.randrange(len(lines[line]) + 1)
        start = time.perf_counter()
        found = assist.complete(draft, lines, line, column, rules_file=True)
        times.append(_ms(start))
        kinds.update(s.kind for s in found)
    return times, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=40, help="one-character edits (default 40)")
    parser.add_argument("--completions", type=int, default=200,
                        help="completion requests (default 200)")
    parser.add_argument("--seed", type=int, default=16, help="seed of the completion positions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "field-service"
        shutil.copytree(REPO / "examples" / "field-service", root)
        live, baseline, errors = live_checks(root, args.edits)
        complete, kinds = completions(root, args.completions, args.seed)
    print(f"bundle: reference (examples/field-service, copied); {args.edits} edits of "
          f"{TRIAGE}, {errors} error diagnostics seen; {args.completions} completions")
    print("suggestions given: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    print(f"{'':34}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, values in (("live check (lsp, open document)", live),
                         ("baseline check (dispatchflow check)", baseline),
                         ("completion", complete)):
        print(f"{name:34}{statistics.median(values):10.2f}{_pct(values, 0.95):10.2f}"
              f"{max(values):10.2f}")
    print(f"check_ms_p50={statistics.median(live):.2f} check_ms_p95={_pct(live, 0.95):.2f} "
          f"complete_ms_p50={statistics.median(complete):.2f} "
          f"baseline_check_ms_p50={statistics.median(baseline):.2f}")


if __name__ == "__main__":
    main()
