"""Weights files: canonical bytes, so that the model hash (SHA-256 of the file) is stable."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from jetfm_coffea.model.rundir import save_weights

_SAVE = """
import sys, torch
from jetfm_coffea.model.rundir import save_weights
g = torch.Generator().manual_seed(0)
weights = {f"layer{i}.weight": torch.randn(4, 3, generator=g) for i in range(6)}
meta = {f"key{i}": str(i) for i in range(8)}
save_weights(sys.argv[1], weights, meta)
"""


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_weights_same_bytes_in_any_process(tmp_path):
    """safetensors writes its metadata in hash-map order, which differs between
    processes; the saved file must not."""
    paths = [tmp_path / f"w{i}.safetensors" for i in range(3)]
    for path in paths:
        subprocess.run([sys.executable, "-c", _SAVE, str(path)], check=True)
    assert len({_sha(p) for p in paths}) == 1


def test_canonical_file_loads_and_keeps_everything(tmp_path):
    weights = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(5, dtype=torch.int64)}
    first, second = tmp_path / "1.safetensors", tmp_path / "2.safetensors"
    save_weights(first, weights, {"z": "1", "a": "2", "m": "3"})
    save_weights(second, weights, {"m": "3", "z": "1", "a": "2"})
    assert first.read_bytes() == second.read_bytes()
    header_length = int.from_bytes(first.read_bytes()[:8], "little")
    assert header_length % 8 == 0
    loaded = load_file(str(first))
    assert set(loaded) == {"a", "b"}
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)
    with safe_open(str(first), "pt") as fh:
        assert fh.metadata() == {"z": "1", "a": "2", "m": "3"}
