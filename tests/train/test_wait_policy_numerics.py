"""The OpenMP wait policy (issue 27's speed-up on shared CPUs) changes no number.

The first 20 pretraining steps, on 2 torch threads, with spinning and with sleeping
OpenMP threads in fresh processes: the same losses, bitwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import json, sys
import torch
torch.set_num_threads(2)
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import pretrain
from jetfm_coffea.train.data import events_source
source = events_source(sys.argv[1], TokenConfig(), max_events=320)
source.batch_size = 16
cfg = {"model": {"size": "custom", "overrides": {"dim": 16, "heads": 2, "layers": 1,
       "pair_hidden": 8, "proj_dim": 8}},
       "train": {"steps": 20, "progress": False, "log_every": 10, "device": "cpu"}}
print(json.dumps(pretrain(cfg, source, sys.argv[2], keep_model=False).losses))
"""


def _losses(singlemu: Path, out: Path, policy: str) -> list[float]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", RUN, str(singlemu), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two fresh processes: ~20 s on a quiet machine, more under load
def test_first_20_losses_do_not_depend_on_the_wait_policy(singlemu, tmp_path):
    spinning = _losses(singlemu, tmp_path / "active", "ACTIVE")
    sleeping = _losses(singlemu, tmp_path / "passive", "PASSIVE")
    assert len(spinning) == 20
    assert sleeping == spinning
