"""The label-efficiency study on the hard tasks, at a preset scale.

Generates ttH(bb), ttbar, VH(bb), VZ(bb) and the other processes, pretrains on the
unlabelled pool (every generated process + the real 2012 SingleMu events, the test
events of every task excluded), then runs linear-probe / finetune / scratch and the
gradient-boosted references (raw objects, engineered features) over the label grid
and seeds of each shipped task, with early stopping and a per-mode learning-rate
choice. Everything lands in ``--out`` (reruns reuse completed stages and runs):

    python benchmarks/label_efficiency_study.py --scale cpu --out study-cpu/ \
        --cells benchmarks/results/label_efficiency_cells \
        --results-dir benchmarks/results --commit-cells   # the committed cpu study
    python benchmarks/label_efficiency_study.py --scale gpu --out study-gpu/ --ablation

``--scale ci`` is the test-suite size (minutes); ``cpu`` takes several sessions on two
cores (it resumes from its committed cells; its measured cost is the ``measured`` field
of ``benchmarks/results/label_efficiency_cpu_plan.json`` and the preset's ``budget_s``);
``gpu`` is meant for <= 10 minutes on one H100/H200-class GPU with 16 cores (see
``jetfm_coffea.finetune.study_presets``). Same as ``jetfm label-efficiency --scale ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from jetfm_coffea.cluster import Execution
from jetfm_coffea.finetune.study_presets import PRESETS
from jetfm_coffea.pipelines.campaign import DEFAULT_TASKS, run_campaign


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", required=True, choices=sorted(PRESETS))
    ap.add_argument("--out", required=True, help="study folder (reruns continue in it)")
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma list of tasks")
    ap.add_argument("--real-file", help="2012 SingleMu NanoAOD (default: shared test data)")
    ap.add_argument("--threads", type=int, help="torch threads")
    ap.add_argument("--executor", default="futures", choices=["futures", "dask"])
    ap.add_argument("--scheduler", help="dask scheduler address (generation)")
    ap.add_argument("--ablation", action="store_true", help="pretraining-objective ablation")
    ap.add_argument("--cells", help="finished cells (default OUT/cells); reruns resume from them")
    ap.add_argument("--results-dir", help="summary JSONs (default OUT)")
    ap.add_argument("--commit-cells", action="store_true", help="git-commit each finished cell")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    summary = run_campaign(
        args.scale, args.out, tasks=args.tasks.split(","), real_file=args.real_file, log=print,
        execution=Execution(args.executor, scheduler=args.scheduler), ablate=args.ablation,
        cells=args.cells, results_dir=args.results_dir, commit_cells=args.commit_cells,
    )  # fmt: skip
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()
    record = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "device": device or platform.machine(),
        "cpu_count": os.cpu_count(),
        "wall_s": time.perf_counter() - t0,
        **summary,
    }
    Path(args.out, "benchmark.json").write_text(json.dumps(record, indent=1, default=str))
    print(Path(args.out, "summary.md").read_text())


if __name__ == "__main__":
    main()
