"""Every non-Python file of the package is in ``package_data`` (a wheel ships it).

setup.cfg listed its patterns comma-separated over a few lines; setuptools splits
such a value at line ends only, so each line was one pattern that matched nothing
and a built wheel had no templates, grammar, schemas or front-end build.
"""

from __future__ import annotations

from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parents[2]


def test_every_asset_matches_a_package_data_pattern() -> None:
    config = read_configuration(ROOT / "setup.cfg")
    patterns = config["options"]["package_data"]["dispatchflow"]
    package = ROOT / "dispatchflow"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    assets = {p for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
              and "__pycache__" not in p.parts}
    assert assets - shipped == set()
    assert any(p.parent.name == "dist" for p in shipped)  # the committed front-end build
