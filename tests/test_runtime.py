"""Device and precision policy (jetfm_coffea.runtime), for machines with 0, 1 and 4 GPUs.

The GPU count is a parameter of the rules, so every case is checked on any machine;
nothing about torch is mocked.
"""

from __future__ import annotations

import pytest
import torch

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.runtime import (
    autocast,
    matmul_precision,
    precision_context,
    process_group_backend,
    resolve_device,
    resolve_precision,
)

CPU, CUDA0 = torch.device("cpu"), torch.device("cuda", 0)


@pytest.mark.parametrize("gpus", [0, 1, 4])
def test_cpu_is_the_cpu_on_any_machine(gpus):
    for rank, world in [(0, 1), (1, 2), (3, 4)]:
        assert resolve_device("cpu", rank, world, device_count=gpus) == CPU


def test_auto_single_process():
    assert resolve_device("auto", device_count=0) == CPU
    assert resolve_device("auto", device_count=1) == CUDA0
    assert resolve_device("auto", device_count=8) == CUDA0


def test_auto_gives_each_local_rank_its_own_gpu_or_all_of_them_the_cpu():
    # 4 GPUs, 4 ranks: NCCL, one GPU each
    devices = [resolve_device("auto", r, 4, device_count=4) for r in range(4)]
    assert devices == [torch.device("cuda", r) for r in range(4)]
    assert {process_group_backend(d) for d in devices} == {"nccl"}
    # 2 Gloo ranks on a 1-GPU machine: both on the CPU (never cuda:1, never a mix)
    devices = [resolve_device("auto", r, 2, device_count=1) for r in range(2)]
    assert devices == [CPU, CPU]
    assert {process_group_backend(d) for d in devices} == {"gloo"}
    # 2 ranks per node on a 4-GPU node: the local rank picks the GPU
    assert resolve_device("auto", 1, 2, device_count=4) == torch.device("cuda", 1)


def test_explicit_cuda_is_checked():
    assert resolve_device("cuda", 1, 2, device_count=2) == torch.device("cuda", 1)
    assert resolve_device("cuda:3", device_count=4) == torch.device("cuda", 3)
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        resolve_device("cuda", device_count=0)
    with pytest.raises(ConfigError, match=r"local rank 1 of 2: cuda:1 does not exist, 1 GPU"):
        resolve_device("cuda", 1, 2, device_count=1)
    with pytest.raises(ConfigError, match=r"'cuda:2': cuda:2 does not exist, 2 GPU"):
        resolve_device("cuda:2", device_count=2)
    with pytest.raises(ConfigError, match="expected cuda:<index>"):
        resolve_device("cuda:x", device_count=2)
    with pytest.raises(ConfigError, match="unknown device 'tpu7'"):
        resolve_device("tpu7", device_count=0)


def test_visible_gpus_by_default():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert resolve_device("auto") == (CUDA0 if n else CPU)


def test_precision_by_purpose():
    assert resolve_precision("auto", CUDA0, "train") == "bf16"
    assert resolve_precision("auto", CPU, "train") == "fp32"
    # inference is float32 on every device: the same events get the same scores
    assert resolve_precision("auto", CUDA0, "inference") == "fp32"
    assert resolve_precision("auto", CPU, "inference") == "fp32"
    assert resolve_precision("bf16", CPU, "inference") == "bf16"
    assert resolve_precision("tf32", CUDA0) == "tf32"
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)


def test_precision_context_sets_and_restores_the_matmul_policy():
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # a caller that enabled TF32
        with matmul_precision("fp32"):
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == "high"
        torch.set_float32_matmul_precision("highest")
        with matmul_precision("tf32"):
            assert torch.get_float32_matmul_precision() == "high"
        assert torch.get_float32_matmul_precision() == "highest"
        with pytest.raises(ConfigError, match="unresolved precision 'auto'"):
            autocast("auto", CPU)
    finally:
        torch.set_float32_matmul_precision(before)


def test_bf16_context_autocasts_and_fp32_does_not():
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with precision_context("bf16", CPU):
        assert (a @ b).dtype == torch.bfloat16
    with precision_context("fp32", CPU):
        assert (a @ b).dtype == torch.float32
