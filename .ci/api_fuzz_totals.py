"""Print the totals of a schemathesis run (used by ``.ci/api-fuzz``).

Usage: api_fuzz_totals.py REPORT.json SERVER.log SECONDS

REPORT.json is schemathesis' JSON report (``--report json``); SERVER.log the
served app's access log, which counts the requests actually answered and their
status codes.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

_ACCESS = re.compile(r'"(?P<method>[A-Z]+) \S+ HTTP/[0-9.]+" (?P<status>[0-9]{3}) ')


def main(report_path: str, log_path: str, seconds: str) -> int:
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    statuses: Counter[str] = Counter()
    for line in Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines():
        match = _ACCESS.search(line)
        if match:
            statuses[match["status"][0] + "xx"] += 1
    ops, cases = report["operations"], report["test_cases"]
    print("== api-fuzz totals")
    print(f"operations: {ops['tested']} tested of {ops['total']} "
          f"(errored {ops['errored']}, skipped {ops['skipped']})")
    print(f"test cases: {cases['generated']} generated, {cases['with_failures']} with failures, "
          f"{cases['errored']} errored")
    print(f"requests answered by the app: {sum(statuses.values())} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))})")
    phases = ", ".join(f"{name} {p['status']}" for name, p in report["phases"].items())
    print(f"phases: {phases}")
    failures = report["failures"]
    print("failures by check: " + (
        "; ".join(f"{f['code']} {f['title']}: {f['count']}" for f in failures) or "none"))
    for error in report["errors"]:
        print(f"error: {error['title']} x{error['count']}")
    print(f"time: {seconds} s")
    return 0 if not failures and not report["errors"] and statuses["5xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
