"""Issue #22, finding 3, for field patterns: a submitted value was matched against
the entity field's ``pattern`` with Python's backtracking ``re`` (in the JSON
Schema ``pattern`` keyword and again in the field checks), so a pattern such as
``(a+)+b`` and a value of thirty ``a`` s and a ``!`` held a worker for minutes.
Values are now matched on RE2 (linear time), and a pattern RE2 cannot run is
refused at load (E3018, see the golden diagnostics).

The validation runs in a child process with a deadline, so that the old code
fails this test instead of hanging the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from dispatchflow.dsl.compiler import compile_bundle
    from dispatchflow.forms.validation import validate_payload

    result = compile_bundle(Path(sys.argv[1]))
    assert result.app is not None, result.diagnostics
    app = result.app
    checked = validate_payload(app, "site", {"code": "a" * 30 + "!"}, mode="create")
    print(sorted(e.code for e in checked.errors))
""")


def test_a_backtracking_field_pattern_answers_at_once(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "entities").mkdir(parents=True)
    (bundle / "app.yaml").write_text("app: patterns\nversion: '1'\ntitle: 模式\ntimezone: Asia/Shanghai\n",
                                     encoding="utf-8")
    (bundle / "entities" / "site.yaml").write_text(
        "entity: site\nlabel: 站点\nfields:\n"
        "  code: {type: string, pattern: '(a+)+b', required: true}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", CHILD, str(bundle)], capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['pattern']"
