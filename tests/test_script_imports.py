"""The scripts outside the package (``.ci/``, ``benchmarks/``, ``docs/``) import only names
the package still has.

They are not imported by the suite, so a rename inside the package breaks them silently
until CI runs them (a moved ``POOL_EVENTS`` broke ``.ci/check_demo.py`` after 17 minutes of
CI). This test reads every ``from jetfm_coffea... import name`` in them, at any depth, and
imports it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_DIRS = (".ci", "benchmarks", "docs")


def _scripts() -> list[Path]:
    return sorted(p for d in SCRIPT_DIRS for p in (ROOT / d).rglob("*.py"))


def package_imports(source: str) -> list[tuple[str, str]]:
    """``(module, name)`` for each ``from jetfm_coffea... import name`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jetfm_coffea"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("jetfm_coffea")]
    return found


def missing_names(source: str) -> list[str]:
    """The package imports of ``source`` that fail, as ``module.name``."""
    missing = []
    for module, name in package_imports(source):
        try:
            imported = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        if name and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    return missing


def test_the_scan_finds_a_moved_name() -> None:
    planted = (
        "def f():\n"
        "    from jetfm_coffea.finetune.heldout import POOL_EVENTS, event_keys\n"
        "    import jetfm_coffea.no_such_module\n"
    )
    assert missing_names(planted) == [
        "jetfm_coffea.finetune.heldout.POOL_EVENTS",
        "jetfm_coffea.no_such_module",
    ]


def test_there_are_scripts_to_check() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _scripts()}
    assert {".ci/check_demo.py", "benchmarks/label_efficiency_study.py"} <= names


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_script_imports_exist(script: Path) -> None:
    assert missing_names(script.read_text()) == [], script.relative_to(ROOT)
