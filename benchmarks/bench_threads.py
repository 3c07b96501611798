"""Threads on a shared CPU: torch threads x OpenMP wait policy, one training step, one run.

Times a fine-tuning-sized step of the ``tiny`` encoder (forward, backward, AdamW; 126
events of 24 tokens) in fresh subprocesses, interleaved, for 1 and 2 (all) torch threads
with OpenMP's default spin-waiting threads (``OMP_WAIT_POLICY`` unset: libgomp spins
300,000 rounds before it sleeps), with sleeping ones (``PASSIVE``) and with a short
bounded spin (``GOMP_SPINCOUNT``, ``--spincount``). On an idle machine spinning wins
(the threads hand work to each other within microseconds); when other processes share
the cores (CI, login nodes, six engineers on two cores), spinning threads steal the time
the computing ones need. ``--busy K`` runs every variant again beside K busy processes
of the benchmark's own (a controlled load). The load average is recorded with every
figure.

    python benchmarks/bench_threads.py --seconds 8 --busy 2 --out threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import load_average

ROOT = Path(__file__).resolve().parents[1]

STEP = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from jetfm_coffea.model import build_model, model_config_for
c = model_config_for(size="tiny"); m = build_model(c)
g = torch.Generator().manual_seed(0)
x = torch.randn(126, 24, len(c.feature_names), generator=g)
x[..., c.feature_names.index("type_id")] = 1
mk = torch.ones(126, 24, dtype=torch.bool)
opt = torch.optim.AdamW(m.parameters())
def step():
    m.encoder(x, mk).embedding.square().sum().backward(); opt.step(); opt.zero_grad()
step(); t = time.perf_counter(); n = 0
while time.perf_counter() - t < float(sys.argv[2]):
    step(); n += 1
print((time.perf_counter() - t) / n)
"""


BUSY = "import time\nwhile True: sum(range(10000))"


def step_time(threads: int, policy: str | None, seconds: float) -> float:
    """Seconds per step; ``policy``: None (libgomp's default), ``PASSIVE``, ``ACTIVE`` or
    ``spin=N`` (``GOMP_SPINCOUNT=N`` with the policy unset)."""
    drop = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if policy and policy.startswith("spin="):
        env["GOMP_SPINCOUNT"] = policy.split("=", 1)[1]
    elif policy:
        env["OMP_WAIT_POLICY"] = policy
    # torch is imported first: the policy is the environment's, not jetfm_coffea's default
    cmd = [sys.executable, "-c", STEP, str(threads), str(seconds)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per variant")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved repeats (best kept)")
    ap.add_argument("--spincount", type=int, default=20_000, help="the bounded-spin variant")
    ap.add_argument("--busy", type=int, default=0, help="also time beside K busy processes")
    ap.add_argument("--out", default="bench_threads.json")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    policies = (None, "PASSIVE", f"spin={args.spincount}")
    variants = [(t, p) for p in policies for t in sorted({1, cores})]
    result: dict = {"meta": {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu_count": cores,
        "step": "tiny, 126 events x 24 tokens, fwd+bwd+AdamW",
    }}  # fmt: skip
    for busy in sorted({0, args.busy}):
        procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
        try:
            time.sleep(1.0 if busy else 0.0)
            best: dict[str, float] = {}
            loads = [load_average()]
            for _ in range(args.repeat):
                for threads, policy in variants:
                    key = f"{threads}t {policy or 'spin (default)'}"
                    t = step_time(threads, policy, args.seconds)
                    best[key] = min(best.get(key, float("inf")), t)
                    loads.append(load_average())
        finally:
            for p in procs:
                p.kill()
        ref = best[f"{cores}t spin (default)"]
        result[f"busy{busy}"] = {
            "busy_processes": busy,
            "load_average": loads,
            "step_ms": {k: 1e3 * v for k, v in best.items()},
            "speedup_vs_default": {k: ref / v for k, v in best.items()},
        }
        print(f"\n{busy} busy processes beside it (load at start {loads[0][0]:.1f})")
        print(f"| threads, OpenMP wait | step ms | speedup vs {cores}t spin |")
        print("|---|---|---|")
        for k, v in best.items():
            print(f"| {k} | {1e3 * v:.0f} | {ref / v:.2f}x |")
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
