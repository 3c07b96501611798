"""This machine's float32 matmul rate: the denominator of every CPU MFU figure.

Times ``a @ b`` (best of ``--repeat``) for a square product and for the shapes the
``small`` encoder runs (``rows x 192 x 768`` and ``rows x 192 x 576`` at a batch's token
rows), with one thread and with all of torch's threads, in one process.

    python benchmarks/bench_matmul.py --out matmul.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from _common import load_average

SHAPES = {"square": (2048, 2048, 2048), "small qkv": (3500, 192, 576),
          "small ffn": (3500, 192, 768)}  # fmt: skip


def rate(m: int, k: int, n: int, repeat: int) -> float:
    """Best FLOP/s of an ``m x k`` by ``k x n`` float32 product."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the shapes (smoke run)")
    ap.add_argument("--out", default="bench_matmul.json")
    args = ap.parse_args()
    threads = torch.get_num_threads()
    load = load_average()
    rows = []
    for name, shape in SHAPES.items():
        m, k, n = (max(8, int(x * args.scale)) for x in shape)
        row = {"shape": name, "m": m, "k": k, "n": n}
        for t in sorted({1, threads}):
            torch.set_num_threads(t)
            row[f"gflops_{t}t"] = rate(m, k, n, args.repeat) / 1e9
        torch.set_num_threads(threads)
        rows.append(row)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average": [load, load_average()],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "torch": torch.__version__,
    }
    Path(args.out).write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    cols = sorted({c for r in rows for c in r if c.startswith("gflops")})
    names = " | ".join(c.replace("gflops_", "GFLOP/s ") for c in cols)
    print(f"| fp32 matmul | m x k x n | {names} |")
    print("|---|---|" + "---|" * len(cols))
    for r in rows:
        cells = " | ".join(f"{r[c]:.1f}" for c in cols)
        print(f"| {r['shape']} | {r['m']}x{r['k']}x{r['n']} | {cells} |")


if __name__ == "__main__":
    main()
