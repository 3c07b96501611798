"""OpenMP threads spin briefly, then sleep, unless the user says otherwise (issue 27)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import sys, jetfm_coffea, os; "
    "assert 'torch' not in sys.modules or sys.argv[1] == 'late'; "
    "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
)


@pytest.mark.parametrize(
    "given, expected",
    [
        ({}, "None 20000"),  # the bounded spin
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE None"),  # the user's policy, no spin count
        ({"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE None"),
        ({"GOMP_SPINCOUNT": "5"}, "None 5"),  # the user's spin count
    ],
)
def test_importing_the_package_sets_the_wait_policy_before_torch(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(given)
    out = subprocess.run([sys.executable, "-c", PROBE, "first"], env=env, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == expected
