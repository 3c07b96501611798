"""docs/bad-inputs.md names a test for every bad input: each named test exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-inputs.md"


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^\s*def (test_\w+)", path.read_text(), re.M))
    return names


@pytest.mark.skipif(not DOC.is_file(), reason="docs/ is not part of an installed package")
def test_every_test_the_bad_inputs_table_names_exists():
    named = set(re.findall(r"`(test_\w+)", DOC.read_text()))
    assert len(named) >= 30  # both tables: input files and stores/outputs
    missing = sorted(named - _defined_tests())
    assert not missing, f"docs/bad-inputs.md names tests that do not exist: {missing}"
