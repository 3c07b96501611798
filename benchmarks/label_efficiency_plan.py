"""The cell count and wall-time estimate of a preset's cell study, in order of value.

Counts every cell the study will train (tuning grids on the tuning seeds, then the other
seeds at the chosen point; per arm = encoder + mode, per label count, per task) and
estimates its cost from measurements:

* seconds per optimiser step of each encoder mode, and seconds per boosting iteration of
  each BDT: the median over the cells of a cell-study summary JSON (``--rates``: a small
  run of this code, on whatever machine and load it ran; the summary records both);
* steps (iterations) to early stopping per mode at 1%, 10% and all labels: the committed
  `cpu` run of 2026-11-30 (``--steps``, the superseded per-run JSON), interpolated
  geometrically in the label count at 3% and 30%;
* generation and pretraining: events per second and seconds per step given on the
  command line (from the same committed run unless remeasured).

No grid extension is counted (each adds ``tune_seeds`` cells to its group).  Writes
``--out`` as JSON and Markdown (the plan block of ``docs/label-efficiency.md`` is the Markdown)::

    python benchmarks/label_efficiency_plan.py --scale cpu \\
        --rates /tmp/small/label_efficiency_small_tth_vs_ttbar.json \\
        --out benchmarks/results/label_efficiency_cpu_plan
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from jetfm_coffea.finetune import load_task_config
from jetfm_coffea.finetune.cellstudy import CellPlan, priority
from jetfm_coffea.finetune.config import label_fraction
from jetfm_coffea.finetune.presets import get_preset

ENCODER_MODES = ("linear-probe", "finetune")
BDT = ("bdt-raw", "bdt-features")


def _rates(summary: dict, clock: str) -> dict[str, float]:
    """Median seconds per step (iteration) of each mode in a cell-study summary, of the
    wall clock (``wall_s``) or the process CPU time (``cpu_s``: less sensitive to other
    jobs' load)."""
    per: dict[str, list[float]] = defaultdict(list)
    for c in summary["cells"]:
        steps = max(c["result"]["steps"], 1)
        per[c["key"]["mode"]].append(c["timing"][clock] / steps)
    return {m: float(np.median(v)) for m, v in per.items()}


def _steps(old: dict) -> dict[str, dict[float, float]]:
    """Mean steps to early stopping per mode and label fraction (1%, 10%, all)."""
    rows = old["rows"]
    full = max(r["n_labels"] for r in rows)
    per: dict[str, dict[float, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        per[r["mode"]][round(r["n_labels"] / full, 2)].append(r["steps"])
    out = {m: {f: float(np.mean(v)) for f, v in d.items()} for m, d in per.items()}
    if 1.0 not in out.get("scratch", {}):  # it never finished: as many as finetune needed
        out["scratch"][1.0] = out["finetune"][1.0]
    return out


def _interp(points: dict[float, float], frac: float) -> float:
    xs = sorted(points)
    return float(np.exp(np.interp(np.log(frac), np.log(xs), np.log([points[x] for x in xs]))))


def estimate(args: argparse.Namespace) -> dict:
    preset = get_preset(args.scale)
    rates = _rates(json.loads(Path(args.rates).read_text()), "wall_s")
    cpu_rates = _rates(json.loads(Path(args.rates).read_text()), "cpu_s")
    steps = _steps(json.loads(Path(args.steps).read_text()))
    plan = CellPlan(labels=preset.labels, seeds=preset.seeds, small_seeds=preset.small_seeds,
                    tune_seeds=preset.tune_seeds, bdt_leaves=preset.bdt_leaves,
                    bdt_l2=preset.bdt_l2)  # fmt: skip
    encoders = ["ssl", *[c for c in preset.controls if c != "random"], "random"]
    arms = [(e, m) for e in encoders for m in ENCODER_MODES]
    arms += [(None, "scratch"), *((None, b) for b in BDT)]
    groups = []
    for task in ("tth_vs_ttbar", "vh_vs_vz_bb"):
        cfg = load_task_config(task)
        n_lr, n_bdt_lr = len(cfg.optim.lr_grid), len(cfg.reference.learning_rates)
        for enc, mode in arms:
            for labels in preset.labels:
                frac = label_fraction(labels)
                seeds = len(plan.small_seeds if frac <= plan.small_fraction else plan.seeds)
                if mode in BDT:
                    points = n_bdt_lr + len(plan.bdt_leaves) - 1 + len(plan.bdt_l2) - 1
                else:
                    points = n_lr
                cells = points * plan.tune_seeds + seeds - plan.tune_seeds
                rate_mode = "finetune" if mode == "scratch" and "scratch" not in rates else mode
                n_steps = cells * _interp(steps[mode], frac)
                cost, cpu = n_steps * rates[rate_mode], n_steps * cpu_rates[rate_mode]
                rank = priority((enc, mode), frac)
                groups.append({"task": task, "encoder": enc, "mode": mode, "labels": labels,
                               "fraction": frac, "cells": cells, "seeds": seeds,
                               "hours": cost / 3600, "cpu_hours": cpu / 3600,
                               "priority": rank})  # fmt: skip
    groups.sort(key=lambda g: (g["priority"], g["task"]))
    tiers: dict[int, dict] = {}
    for g in groups:
        t = tiers.setdefault(
            g["priority"][0], {"tier": g["priority"][0], "cells": 0, "hours": 0.0, "cpu_hours": 0.0}
        )
        t["cells"] += g["cells"]
        t["hours"] += g["hours"]
        t["cpu_hours"] += g["cpu_hours"]
    # committed score files: per table cell (chosen point, every seed) one float32 per
    # test event, in the cell's npz and again in the task's summary score file
    small = json.loads(Path(args.rates).read_text())
    loads = [
        c["timing"]["loadavg_after"][0] for c in small["cells"] if c["timing"]["loadavg_after"]
    ]
    table_cells = sum(r["n_seeds"] for r in small["aggregate"])
    per_value = Path(small["scores"]).stat().st_size / (table_cells * small["test_events"])
    table = sum(g["seeds"] for g in groups)
    test_events = args.test_events
    score_mb = 2 * table * test_events * per_value / 1e6
    generate_h = preset.generated_events / args.events_per_s / 3600
    pretrain_h = (
        (1 + 2 * ("no-signal" in preset.controls))
        * preset.pretrain_steps
        * (args.pretrain_s_per_step / 3600)
    )
    return {
        "scale": preset.name,
        "rates_s_per_step": rates,
        "cpu_s_per_step": cpu_rates,
        "rates_from": str(args.rates),
        "steps_from": str(args.steps),
        "steps_to_stop": {m: {str(f): v for f, v in d.items()} for m, d in steps.items()},
        "generate_hours": generate_h,
        "pretrain_hours": pretrain_h,
        "tiers": list(tiers.values()),
        "rates_load_1min": [min(loads), max(loads)] if loads else None,
        "rates_cpu_count": os.cpu_count(),
        "table_cells": table,
        "score_bytes_per_value": per_value,
        "test_events_per_task": test_events,
        "scores_mb": score_mb,
        "cells": sum(g["cells"] for g in groups),
        "study_hours": sum(g["hours"] for g in groups),
        "study_cpu_hours": sum(g["cpu_hours"] for g in groups),
        "groups": groups,
    }


TIERS = {
    0: "goal: finetune (ssl) at 10%; scratch, bdt-raw, bdt-features at 100%",
    1: "the rest at 10%, random-encoder control at 10%",
    2: "stretch: finetune (ssl), scratch, BDTs at 1%",
    3: "main encoder and baselines at the other label counts",
    4: "random-encoder control at the other label counts",
    5: "no-signal-pool control",
}


def markdown(est: dict) -> str:
    lines = [
        "| order | cells (both tasks) | hours, wall under load | cumulative | CPU hours "
        "| cumulative |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = est["generate_hours"] + est["pretrain_hours"]
    cpu_total = total
    lines.append(f"| generation + pretraining (3 encoders) | – | {total:.1f} | {total:.1f} | – "
                 f"| {cpu_total:.1f} |")  # fmt: skip
    for t in est["tiers"]:
        total += t["hours"]
        cpu_total += t["cpu_hours"]
        lines.append(f"| {t['tier']}. {TIERS[t['tier']]} | {t['cells']:,} | {t['hours']:.1f} | "
                     f"{total:.1f} | {t['cpu_hours']:.1f} | {cpu_total:.1f} |")  # fmt: skip
    r = est["rates_s_per_step"]
    lo, hi = est["rates_load_1min"] or (float("nan"), float("nan"))
    lines += [
        "",
        f"{est['cells']:,} cells: about {total:.0f} hours of wall time at the per-step "
        f"rates of a small run under load (1-minute load average {lo:.1f}-{hi:.1f} on "
        f"{est['rates_cpu_count']} cores; seconds per step: "
        + ", ".join(f"{m} {v:.3f}" for m, v in sorted(r.items()))
        + f"), {cpu_total:.0f} hours of process CPU time (CPU seconds per step: "
        + ", ".join(f"{m} {v:.3f}" for m, v in sorted(est["cpu_s_per_step"].items()))
        + "). Steps to early stopping from the 2026-11-30 run; generation and pretraining "
        "rates from that run (under load); no grid extension counted. Both are estimates "
        "to be replaced by the quiet run's own cell timings.",
        f"Per-event scores to commit: {est['table_cells']:,} table cells x "
        f"{est['test_events_per_task']:,} test events x {est['score_bytes_per_value']:.2f} "
        f"bytes (compressed float32, measured), twice (cell files and the summary's score "
        f"file): about {est['scores_mb']:.0f} MB; tuning cells off the chosen point keep "
        "no scores.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--rates", required=True, help="a cell-study summary JSON (small run)")
    ap.add_argument(
        "--steps",
        default="benchmarks/results/superseded/label_efficiency_cpu_tth_2026-11-30.json",
    )
    ap.add_argument("--events-per-s", type=float, default=81.0, help="generation (2 workers)")
    ap.add_argument("--pretrain-s-per-step", type=float, default=0.27)
    ap.add_argument("--test-events", type=int, default=12_500, help="per task (expected)")
    ap.add_argument("--out", required=True, help="output stem (.json and .md)")
    args = ap.parse_args()
    est = estimate(args)
    Path(f"{args.out}.json").write_text(json.dumps(est, indent=1) + "\n")
    Path(f"{args.out}.md").write_text(markdown(est))
    print(markdown(est))


if __name__ == "__main__":
    main()
