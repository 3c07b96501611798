"""Where pretraining time goes: a torch.profiler summary (top kernels, time shares).

Runs the real training loop twice on real CMS tokens (a warm-up run, then a profiled
one) and writes a short Markdown summary: the top operators/kernels by self time on
the device (CUDA kernels on a GPU, CPU operators on the CPU), each with its share of
the total, and the shares of a few families (matrix products, attention, elementwise
and normalisation, copies, optimizer); and the rate the matrix products ran at (their
FLOPs as the profiler counts them over their own self time), which tells slow products
(small shapes) from time spent outside them.

    python benchmarks/profile_pretrain.py --device cuda --size small --out profile.md
"""

from __future__ import annotations

import jetfm_coffea  # noqa: F401  # isort: skip  (first: OpenMP's wait policy before torch)

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from bench_pretrain import real_event_tokens, resident_arrays
from torch.profiler import ProfilerActivity, profile

from jetfm_coffea.runtime import resolve_device
from jetfm_coffea.train import TensorEventDataset, load_pretrain_config, pretrain

FAMILIES = {
    "matmul (gemm)": ("gemm", "matmul", "addmm", "mm", "linear", "cutlass", "sm90_xmma", "bmm"),
    "attention": ("attention", "sdpa", "fmha", "flash", "softmax"),
    "norm + elementwise": (
        "layer_norm",
        "elementwise",
        "vectorized",
        "gelu",
        "mul",
        "add",
        "where",
        "fill",
        "masked",
        "reduce",
        "exp",
        "log",
        "sqrt",
    ),
    "copies": ("copy", "memcpy", "cat", "index", "gather", "scatter", "pad"),
    "optimizer": ("adam", "foreach", "multi_tensor"),
}


def family(name: str) -> str:
    low = name.lower()
    for fam, keys in FAMILIES.items():
        if any(k in low for k in keys):
            return fam
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", default="profile_pretrain.md")
    args = ap.parse_args()
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch_size or (4096 if gpu else 256)
    arrays = resident_arrays(real_event_tokens(), batch * (args.steps + 2))
    cfg = load_pretrain_config(
        {
            "model": {"size": args.size},
            "train": {
                "steps": args.steps,
                "batch_size": batch,
                "device": str(device),
                "progress": False,
                "log_every": args.steps,
                "monitor_every": 10**6,
                "checkpoint_every": 10**6,
                "compile": args.compile,
            },
        }
    )

    def data():
        ds = TensorEventDataset(arrays["tokens"], arrays["mask"], event=arrays["event"],
                                objects=arrays["objects"],  # fresh views are made from them
                                batch_size=batch, seed=2)  # fmt: skip
        ds.arrays = {k: v.to(device) for k, v in ds.arrays.items()}
        return ds

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with tempfile.TemporaryDirectory() as tmp:
        pretrain(cfg, data(), Path(tmp) / "warm", keep_model=False)
        with profile(activities=activities, with_flops=True) as prof:
            t0 = time.perf_counter()
            pretrain(cfg, data(), Path(tmp) / "run", keep_model=False)
            if gpu:
                torch.cuda.synchronize()
            wall = time.perf_counter() - t0
    key = "self_device_time_total" if gpu else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    if gpu:  # kernels only (device-side entries), not the CPU operators that launched them
        events = [e for e in events if getattr(e, "self_cpu_time_total", 0) == 0] or events
    total = sum(getattr(e, key) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    fams: dict[str, float] = {}
    for e in events:
        fams[family(e.key)] = fams.get(family(e.key), 0.0) + getattr(e, key)
    counted = [e for e in events if getattr(e, "flops", 0) and "mm" in e.key]
    gemm_flops = sum(e.flops for e in counted)
    gemm_s = sum(getattr(e, key) for e in counted) / 1e6
    gemm_rate = (
        f"Matrix products ({', '.join(sorted({e.key for e in counted}))}): "
        f"{gemm_flops / 1e9:.1f} GFLOP in {gemm_s:.3f} s of their own time, "
        f"{gemm_flops / max(gemm_s, 1e-9) / 1e9:.1f} GFLOP/s; "
        f"{gemm_s / (total / 1e6):.1%} of the operator time."
    )
    where = torch.cuda.get_device_name(device) if gpu else "CPU"
    lines = [
        f"# Pretraining profile: `{args.size}`, batch {batch}, {args.steps} steps, {where}",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}; "
        f"compile {args.compile}; wall {wall:.2f} s for the profiled run (profiler on); "
        f"{'device kernel' if gpu else 'CPU operator'} self time {total / 1e6:.3f} s.",
        *(
            []
            if gpu
            else [
                "",
                f"Host work outside any operator (Python, the loop, batch bookkeeping): "
                f"{max(0.0, 1 - total / 1e6 / wall):.1%} of the wall time; load average "
                f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}; OMP_WAIT_POLICY "
                f"{os.environ.get('OMP_WAIT_POLICY')}.",
            ]
        ),
        "",
        gemm_rate,
        "",
        "| family | share |",
        "|---|---|",
        *[f"| {k} | {v / total:.1%} |" for k, v in sorted(fams.items(), key=lambda kv: -kv[1])],
        "",
        f"| top {args.top} by self time | calls | self ms | share |",
        "|---|---|---|---|",
    ]
    for e in events[: args.top]:
        name = e.key if len(e.key) <= 90 else e.key[:87] + "..."
        name = name.replace("|", "/")
        t = getattr(e, key)
        lines.append(f"| `{name}` | {e.count} | {t / 1e3:.1f} | {t / total:.1%} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
