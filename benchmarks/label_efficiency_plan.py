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

Once the study's summaries say it is complete (``--summaries``: every task's
``label_efficiency_<scale>_<task>.json``), the plan also states what it *measured*: the
wall and CPU seconds recorded by every cell of every task (tuning cells included; across
sessions, under whatever load each cell recorded), plus generation and pretraining.  The
preset's ``budget_s`` is set from that total (a test holds them together).

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
from jetfm_coffea.finetune.study_presets import get_preset

ENCODER_MODES = ("linear-probe", "finetune")
BDT = ("bdt-raw", "bdt-features")


def _cell_files(root: Path) -> list[dict]:
    cells = []
    for path in sorted(root.rglob("*.json")):
        if path.name == "testset.json":
            continue
        cell = json.loads(path.read_text())
        cell["_npz"] = path.with_suffix("").with_name(path.stem + ".npz")
        cells.append(cell)
    return cells


def _rates(cells: list[dict], clock: str) -> dict[str, float]:
    """Median seconds per step (iteration) of each mode over ``cells``, of the wall clock
    (``wall_s``) or the process CPU time (``cpu_s``)."""
    per: dict[str, list[float]] = defaultdict(list)
    for c in cells:
        steps = max(c["result"]["steps"], 1)
        per[c["key"]["mode"]].append(c["timing"][clock] / steps)
    return {m: float(np.median(v)) for m, v in per.items()}


def _measured_steps(cells: list[dict]) -> dict[str, dict[float, float]]:
    """Mean steps to early stopping per mode and label fraction of the finished cells."""
    per: dict[str, dict[float, list[int]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        frac = label_fraction(c["key"]["labels"])
        if frac is not None:
            per[c["key"]["mode"]][frac].append(c["result"]["steps"])
    return {m: {f: float(np.mean(v)) for f, v in d.items()} for m, d in per.items()}


def _steps(old: dict) -> dict[str, dict[float, float]]:
    """Mean steps to early stopping per mode and label fraction (1%, 10%, all) of the
    superseded per-run JSON."""
    rows = old["rows"]
    full = max(r["n_labels"] for r in rows)
    per: dict[str, dict[float, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        per[r["mode"]][round(r["n_labels"] / full, 2)].append(r["steps"])
    out = {m: {f: float(np.mean(v)) for f, v in d.items()} for m, d in per.items()}
    if 1.0 not in out.get("scratch", {}):  # it never finished: as many as finetune needed
        out["scratch"][1.0] = out["finetune"][1.0]
    return out


def _extensions(cells: list[dict], lr_grid: int, bdt_points: int) -> dict[str, float]:
    """Mean tuning points beyond the grid per finished group, by mode."""
    groups: dict[tuple, set] = defaultdict(set)
    for c in cells:
        k = c["key"]
        groups[(k["task"], k["encoder"], k["mode"], k["labels"])].add(
            json.dumps({h: v for h, v in k["hyper"].items() if h != "arch"}, sort_keys=True)
        )
    per: dict[str, list[float]] = defaultdict(list)
    for (_, _, mode, _), points in groups.items():
        base = bdt_points if mode in BDT else lr_grid
        per[mode].append(max(len(points) - base, 0))
    return {m: float(np.mean(v)) for m, v in per.items()}


def _interp(points: dict[float, float], frac: float) -> float:
    xs = sorted(points)
    return float(np.exp(np.interp(np.log(frac), np.log(xs), np.log([points[x] for x in xs]))))


def measured(summaries: list[dict], generate_h: float, pretrain_h: float) -> dict | None:
    """What the finished study cost: the cells' recorded wall and CPU hours over every
    task's summary (``timing_totals``: every cell, tuning included), plus generation and
    pretraining; None while any task is incomplete (or there is none)."""
    if not summaries or not all(s.get("complete") for s in summaries):
        return None
    totals = [s["timing_totals"] for s in summaries]
    cells_h = sum(t["all_wall_s"] for t in totals) / 3600
    return {
        "tasks": sorted(s["task"] for s in summaries),
        "cells": sum(t["all_cells"] for t in totals),
        "cells_hours": cells_h,
        "cells_cpu_hours": sum(t["all_cpu_s"] for t in totals) / 3600,
        "setup_hours": generate_h + pretrain_h,
        "total_hours": cells_h + generate_h + pretrain_h,
    }


def _summaries(pattern: str) -> list[dict]:
    """The cell-study summaries that ``pattern`` (a glob) names; other JSONs skipped."""
    root = Path(pattern).parent
    out = [json.loads(p.read_text()) for p in sorted(root.glob(Path(pattern).name))]
    return [s for s in out if "timing_totals" in s]


def estimate(args: argparse.Namespace) -> dict:
    preset = get_preset(args.scale)
    cells = _cell_files(Path(args.cells))
    rates, cpu_rates = _rates(cells, "wall_s"), _rates(cells, "cpu_s")
    if args.rates:  # modes the study has not reached yet
        old_cells = json.loads(Path(args.rates).read_text())["cells"]
        for m, v in _rates(old_cells, "wall_s").items():
            rates.setdefault(m, v)
        for m, v in _rates(old_cells, "cpu_s").items():
            cpu_rates.setdefault(m, v)
    steps = _steps(json.loads(Path(args.steps).read_text()))
    for mode, points in _measured_steps(cells).items():
        steps.setdefault(mode, {}).update(points)
    plan = CellPlan(labels=preset.labels, seeds=preset.seeds, small_seeds=preset.small_seeds,
                    tune_seeds=preset.tune_seeds, bdt_leaves=preset.bdt_leaves,
                    bdt_l2=preset.bdt_l2)  # fmt: skip
    encoders = ["ssl", *[c for c in preset.controls if c != "random"], "random"]
    arms = [(e, m) for e in encoders for m in ENCODER_MODES]
    arms += [(None, "scratch"), *((None, b) for b in BDT)]
    cfg0 = load_task_config("tth_vs_ttbar")
    bdt_points = (
        len(cfg0.reference.learning_rates) + len(plan.bdt_leaves) - 1 + len(plan.bdt_l2) - 1
    )
    extend = _extensions(cells, len(cfg0.optim.lr_grid), bdt_points)
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
                points += extend.get(mode, 0.0)
                n_cells = points * plan.tune_seeds + seeds - plan.tune_seeds
                rate_mode = "finetune" if mode == "scratch" and "scratch" not in rates else mode
                n_steps = n_cells * _interp(steps[mode], frac)
                cost, cpu = n_steps * rates[rate_mode], n_steps * cpu_rates[rate_mode]
                rank = priority((enc, mode), frac)
                groups.append({"task": task, "encoder": enc, "mode": mode, "labels": labels,
                               "fraction": frac, "cells": round(n_cells), "seeds": seeds,
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
    # committed scores: per table cell (chosen point, every seed) one uint8 level per test
    # event, compressed, in the cell's score file only (measured on the finished cells)
    scored = [c for c in cells if c.get("scores") and c["_npz"].is_file()]
    n_values = sum(c["result"]["n_test"] for c in scored)
    per_value = sum(c["_npz"].stat().st_size for c in scored) / max(n_values, 1)
    loads = [c["timing"]["loadavg_after"][0] for c in cells if c["timing"]["loadavg_after"]]
    table = sum(g["seeds"] for g in groups)
    test_events = args.test_events
    score_mb = table * test_events * per_value / 1e6
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
        "rates_from": f"{len(cells)} finished cells in {args.cells}"
        + (f" (+ {args.rates} for the modes they lack)" if args.rates else ""),
        "steps_from": f"the finished cells, else {args.steps}",
        "steps_to_stop": {m: {str(f): v for f, v in d.items()} for m, d in steps.items()},
        "grid_extensions": extend,
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
        "measured": measured(_summaries(args.summaries), generate_h, pretrain_h)
        if args.summaries
        else None,
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
        "| order | cells (both tasks) | hours, wall | cumulative | CPU hours | cumulative |",
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
        f"rates of {est['rates_from']} (1-minute load average {lo:.1f}-{hi:.1f} on "
        f"{est['rates_cpu_count']} cores; seconds per step: "
        + ", ".join(f"{m} {v:.3f}" for m, v in sorted(r.items()))
        + f"), {cpu_total:.0f} hours of process CPU time (CPU seconds per step: "
        + ", ".join(f"{m} {v:.3f}" for m, v in sorted(est["cpu_s_per_step"].items()))
        + f"). Steps to early stopping from {est['steps_from']}; grid extensions as the "
        "finished groups needed them; generation and pretraining at the rates the study "
        "measured.",
        f"Per-event scores to commit: {est['table_cells']:,} table cells x "
        f"{est['test_events_per_task']:,} test events x {est['score_bytes_per_value']:.2f} "
        f"bytes (8-bit rank levels, compressed, measured), once: about "
        f"{est['scores_mb']:.1f} MB; tuning cells off the chosen point keep no scores.",
    ]
    if m := est.get("measured"):
        lines.append(
            f"Measured, the whole study ({', '.join(m['tasks'])}, complete): "
            f"{m['cells']:,} cells, {m['cells_hours']:.1f} hours of wall time as the cells "
            f"recorded it ({m['cells_cpu_hours']:.1f} CPU hours; several sessions), plus "
            f"{m['setup_hours']:.1f} for generation and pretraining: "
            f"**{m['total_hours']:.1f} hours**, the `{est['scale']}` preset's budget "
            f"(`budget_s`)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--cells", required=True, help="the study's cell store (finished cells)")
    ap.add_argument("--rates", help="a cell-study summary JSON for modes without cells yet")
    ap.add_argument(
        "--steps",
        default="benchmarks/results/superseded/label_efficiency_cpu_tth_2026-11-30.json",
    )
    ap.add_argument("--events-per-s", type=float, default=141.0, help="generation (2 workers)")
    ap.add_argument("--pretrain-s-per-step", type=float, default=0.21)
    ap.add_argument("--test-events", type=int, default=12_500, help="per task (mean)")
    ap.add_argument(
        "--summaries",
        help="glob of the study's task summaries (default "
        "benchmarks/results/label_efficiency_<scale>_*.json): the measured total",
    )
    ap.add_argument("--out", required=True, help="output stem (.json and .md)")
    args = ap.parse_args()
    if args.summaries is None:
        args.summaries = f"benchmarks/results/label_efficiency_{args.scale}_*.json"
    est = estimate(args)
    Path(f"{args.out}.json").write_text(json.dumps(est, indent=1) + "\n")
    Path(f"{args.out}.md").write_text(markdown(est))
    print(markdown(est))


if __name__ == "__main__":
    main()
