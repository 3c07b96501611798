"""Fine-tuning a released encoder on the demo's task, timed as a user runs it.

Loads ``builtin:NAME`` (its release card's checks included), reads the labelled fileset
of a finished ``jetfm demo`` workdir (``--demo``: its ``1-generate/labelled_fileset.json``,
ttbar vs W+jets), prepares the demo's task (the leak guard compares the task's test events
with the encoder's pretraining pool) and fine-tunes with all labels as the demo does;
records the wall time of each part, the test AUC and the load average::

    python benchmarks/bench_released_finetune.py --demo jetfm-demo --out released_ft.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from jetfm_coffea.finetune import prepare_finetune
from jetfm_coffea.finetune.data import load_labelled
from jetfm_coffea.finetune.trainer import finetune, load_pretrained
from jetfm_coffea.pipelines.demo import demo_task
from jetfm_coffea.pipelines.demo_plan import DemoPlan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", required=True, type=Path, help="a finished jetfm demo workdir")
    ap.add_argument("--name", default="tiny-ssl")
    ap.add_argument("--out", default="released_finetune.json")
    args = ap.parse_args()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    pre = load_pretrained(f"builtin:{args.name}")
    fileset = args.demo / "1-generate" / "labelled_fileset.json"
    data = load_labelled(fileset=fileset, token_config=pre.token_config)
    setup = prepare_finetune(demo_task(DemoPlan()), pre, data, labels=["all"])
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = finetune(setup, Path(tmp) / "run", mode="finetune", labels="all", seed=0)
    t2 = time.perf_counter()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "encoder": args.name,
        "events": len(data),
        "load_and_prepare_s": t1 - t0,
        "finetune_s": t2 - t1,
        "total_s": t2 - t0,
        "steps": res.steps,
        "test_auc": res.test_metrics["auc"],
        "load_average": [list(load0), list(os.getloadavg())],
        "cpu_count": os.cpu_count(),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"| encoder | events | load + prepare s | fine-tune s | total s | steps | test AUC "
          f"| load |\n|---|---|---|---|---|---|---|---|\n| {args.name} | {len(data):,} | "
          f"{t1 - t0:.1f} | {t2 - t1:.1f} | {t2 - t0:.1f} | {res.steps} | "
          f"{result['test_auc']:.4f} | {load0[0]:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
