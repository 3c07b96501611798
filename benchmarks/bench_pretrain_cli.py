"""A new user's first pretraining run, timed as they run it: before vs now, in one run.

    jetfm pretrain --shards STORE --size small --steps 40 --batch-size 256 --device cpu

on a shard store of the 10k real 2012 SingleMu events, wall time including start-up
(imports, store, model, run directory), both cores (torch's default threads). Timed,
interleaved, for

* ``now``: the command as shipped;
* ``gloo2`` (``--variants``): two Gloo ranks of one thread each instead of one process
  of two threads (``python -m torch.distributed.run --nproc-per-node 2``, half the batch
  per rank: the same 256 events per step);
* ``before``: the same command with torch loaded before jetfm_coffea, so OpenMP keeps
  its default spin-waiting threads (what every run did before issue 27); or, with
  ``--baseline-src DIR``, the command of another checkout (e.g. ``git worktree add
  /tmp/main main``: today's code against this one on the same machine, same run).

Reports the best wall time of each, ``speedup = before / now`` and the load average.

    python benchmarks/bench_pretrain_cli.py --steps 40 --repeat 2 --out cli.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load_average
from bench_pretrain import make_store, real_event_tokens

ROOT = Path(__file__).resolve().parents[1]
SPIN_FIRST = "import torch; from jetfm_coffea.cli import main; main()"  # OpenMP before us


def command(variant: str, store: Path, out: Path, args) -> tuple[list[str], dict]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    cli = ["pretrain", "--shards", str(store), "--out", str(out), "--size", args.size,
           "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--device", "cpu",
           "--no-progress"]  # fmt: skip
    if variant == "now":
        env["PYTHONPATH"] = str(ROOT)
        return [sys.executable, "-m", "jetfm_coffea", *cli], env
    if variant == "gloo2":
        env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        i = cli.index("--batch-size") + 1
        cli[i] = str(args.batch_size // 2)
        run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "2", "-m", "jetfm_coffea"]  # fmt: skip
        return [*run, *cli], env
    env["PYTHONPATH"] = str(Path(args.baseline_src).resolve()) if args.baseline_src else str(ROOT)
    return [sys.executable, "-c", SPIN_FIRST, *cli], env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2, help="interleaved repeats (best kept)")
    ap.add_argument("--baseline-src", help="checkout whose code is 'before' (default: this one)")
    ap.add_argument("--variants", default="before,now", help="comma list: before, now, gloo2")
    ap.add_argument("--out", default="bench_pretrain_cli.json")
    args = ap.parse_args()
    load_before = load_average()
    tk = real_event_tokens()
    variants = args.variants.split(",")
    walls: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        store, _ = make_store(tk, Path(tmp) / "store", len(tk))
        for i in range(args.repeat):
            for variant in variants:
                cmd, env = command(variant, store, Path(tmp) / f"{variant}{i}", args)
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(f"{variant} failed: {proc.stderr[-2000:]}")
                walls[variant].append(time.perf_counter() - t0)
    best = {v: min(w) for v, w in walls.items()}
    before, now = best.get("before", float("nan")), best["now"]
    events = args.steps * args.batch_size
    result = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpu_count": os.cpu_count(),
            "load_average": [load_before, load_average()],
            "baseline": args.baseline_src or "this checkout, OpenMP spin-waiting (torch first)",
            "command": f"jetfm pretrain --size {args.size} --steps {args.steps} "
            f"--batch-size {args.batch_size} --device cpu",
        },
        "walls": walls,
        "best_s": best,
        "before_s": before,
        "now_s": now,
        "speedup": before / now if "before" in best else None,
        "events_per_s_now": events / now,
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("| command | before s | now s | speedup | load |")
    print("|---|---|---|---|---|")
    if "before" in best:
        print(f"| `{result['meta']['command']}` | {before:.1f} | {now:.1f} | {before / now:.2f}x"
              f" | {load_before[0]:.1f} |")  # fmt: skip
    else:
        print(f"| `{result['meta']['command']}` | — | {now:.1f} | — | {load_before[0]:.1f} |")
    if "gloo2" in best:
        print(f"| same, two Gloo ranks x 1 thread | — | {best['gloo2']:.1f} | "
              f"{now / best['gloo2']:.2f}x vs now | {load_before[0]:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
