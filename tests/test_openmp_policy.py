"""OpenMP threads sleep instead of spinning unless the user says otherwise (issue 27)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import sys, jetfm_coffea, os; "
    "assert 'torch' not in sys.modules or sys.argv[1] == 'late'; "
    "print(os.environ.get('OMP_WAIT_POLICY'))"
)


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_the_package_sets_the_wait_policy_before_torch(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", PROBE, "first"], env=env, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == expected
