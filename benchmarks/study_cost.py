"""The label-efficiency study's encoder training cost: recorded rates vs a new rate.

Reads a committed study
(``superseded/label_efficiency_cpu_tth_2026-11-30.json``: per run its steps and
``train_s``) and sums, over the runs that train the encoder (finetune, scratch), the
recorded training time against the same steps at one per-step rate: by default the
median rate of the study's own 754-label fine-tuning runs (the same tiny steps, run
when the threads did not fight over the cores), or ``--ms-per-step``. With
``--threads threads.json`` (``bench_threads.py``) it also gives the same-run ratio of a
spinning to a sleeping 2-thread step, the mechanism measured directly.

    python benchmarks/study_cost.py --out benchmarks/results/study_cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    study = HERE / "results" / "superseded" / "label_efficiency_cpu_tth_2026-11-30.json"
    ap.add_argument("--study", type=Path, default=study)
    ap.add_argument("--threads", type=Path, help="default: threads.json beside --out")
    ap.add_argument("--ms-per-step", type=float, default=None)
    ap.add_argument("--out", default="study_cost.json")
    args = ap.parse_args()
    rows = json.loads(args.study.read_text())["rows"]
    runs = [r for r in rows if r["mode"] in ("finetune", "scratch") and r.get("steps")]
    steps = sum(r["steps"] for r in runs)
    recorded = sum(r["train_s"] for r in runs)
    ref = [1e3 * r["train_s"] / r["steps"] for r in runs
           if r["mode"] == "finetune" and r["n_labels"] == 754]  # fmt: skip
    rate = args.ms_per_step or statistics.median(ref)
    new = steps * rate / 1e3
    result = {"runs": len(runs), "steps": steps, "recorded_s": recorded,
              "recorded_ms_per_step": 1e3 * recorded / steps, "new_ms_per_step": rate,
              "new_s": new, "ratio": recorded / new}  # fmt: skip
    threads = args.threads or Path(args.out).with_name("threads.json")
    if threads.is_file():
        data = json.loads(threads.read_text())
        ms = data.get("busy0", data)["step_ms"]  # the quiet machine's figures
        spin = [v for k, v in ms.items() if "default" in k and not k.startswith("1t")]
        calm = [v for k, v in ms.items() if "PASSIVE" in k and not k.startswith("1t")]
        if spin and calm:
            result["threads_spin_over_passive"] = spin[0] / calm[0]
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("| encoder runs | steps | recorded s (ms/step) | at new rate s (ms/step) | ratio |")
    print("|---|---|---|---|---|")
    print(f"| {len(runs)} | {steps:,} | {recorded:,.0f} ({result['recorded_ms_per_step']:.0f}) | "
          f"{new:,.0f} ({rate:.1f}) | {result['ratio']:.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
