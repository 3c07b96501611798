"""Device and precision policy (jetfm_coffea.runtime), for machines with 0, 1 and 4 GPUs.

The GPU count is a parameter of the rules, so every case is checked on any machine;
nothing about torch is mocked.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from jetfm_coffea import runtime
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune import loop as finetune_loop
from jetfm_coffea.runtime import (
    autocast,
    matmul_precision,
    precision_context,
    process_group_backend,
    resolve_device,
    resolve_precision,
)
from jetfm_coffea.train import loop as pretrain_loop

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


def _one_param_step(loss_scale: float, clip: float | None):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    loss = (w * torch.tensor([3.0, 4.0])).sum() * loss_scale
    loss.backward()
    gnorm, stepped = runtime.guarded_step(opt, sched, loss, [w], clip)
    return w.detach(), gnorm, stepped, sched.last_epoch


def test_guarded_step_clips_and_steps_only_when_finite():
    w, gnorm, stepped, sched_steps = _one_param_step(1.0, clip=1.0)
    assert stepped and sched_steps == 1
    assert float(gnorm) == pytest.approx(5.0)  # the norm before clipping
    # clipped to norm 1: the step is lr * (3, 4) / 5
    torch.testing.assert_close(w, torch.tensor([1.0 - 0.06, -2.0 - 0.08]))
    w, _, stepped, sched_steps = _one_param_step(float("nan"), clip=None)
    assert not stepped and sched_steps == 0  # neither optimiser nor schedule moved
    torch.testing.assert_close(w, torch.tensor([1.0, -2.0]))


def test_step_helpers_have_one_owner():
    """Pretraining and fine-tuning use runtime's step helpers, not copies of them."""
    for module in (pretrain_loop, finetune_loop):
        src = inspect.getsource(module)
        assert "clip_grad_norm_" not in src and "class TrainProgress" not in src, module
        assert ', "a")' not in src, module  # metrics lines go through append_metrics
    assert pretrain_loop.TrainProgress is runtime.TrainProgress
    g1 = runtime.step_generator(3, 1, 7, torch.device("cpu"))
    g2 = runtime.step_generator(3, 1, 7, torch.device("cpu"))
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
