"""Issue 20's re-simulation (RS3L) study at a small scale: physics vs resim views vs both.

On the hard task ttH(bb) vs ttbar (``tth_vs_ttbar``; VH vs VZ cannot use ``--resim``:
``vz_bb``'s truth filter is not supported by the re-simulation generator):

1. generate ttH(bb) and ttbar with ``--resim 3`` (the pretraining pool), and labelled
   ttH/ttbar samples with the default shower (train/val/test by the task's hash split)
   and with varied shower and hadronisation settings (test only, :data:`VARIED`);
2. pretrain three micro encoders on the pool per seed, same steps: ``views: fresh``
   (physics views only), ``resim`` (the siblings), ``resim+physics`` (both);
3. label efficiency: the project's study (:func:`jetfm_coffea.finetune.label_efficiency`,
   the shipped ``tth_vs_ttbar`` task with its selection and splits, the label grid and
   modes of ``--labels``/``--modes``) per encoder and seed; ``scratch`` (random weights,
   same architecture) is trained once per seed, it does not depend on the pretraining;
4. robustness: every classifier of step 3 (trained on the default shower) scores the
   whole varied-shower sample (the task's selection applied); the AUC shift is the varied
   AUC minus the AUC on the default-shower test split;
5. the frozen-embedding probe (a logistic regression on half of the default sample,
   tested on the other half and on the varied sample) as a cheap cross-check.

The pretraining seed is also the fine-tuning seed (label draw, head init, batches), so
the three variants see the same labelled events.  A rerun reuses the generated samples,
stores, pretraining runs and completed fine-tuning runs in ``--out``; ``--results`` gets
``resim_study.json`` and ``resim_study.md``.

    python benchmarks/resim_study.py --out resim-study/ --hard 500 --labelled 3000 \
        --seeds 5,6,7 --labels 10%,all --results benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.cluster import Execution
from jetfm_coffea.finetune import (
    LabelledEvents,
    TaskConfig,
    aggregate,
    evaluate_run,
    label_efficiency,
    load_labelled,
    load_task_config,
)
from jetfm_coffea.finetune.study import STUDY_METRICS
from jetfm_coffea.generate import generate
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.model import EventModel, model_config_for
from jetfm_coffea.shards import open_loader
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import load_pretrain_config, load_run, pretrain
from jetfm_coffea.train.data import shards_source

#: Shower/hadronisation settings of the "varied" test samples (Pythia's defaults: 0.1365
#: and 0.68): more final-state radiation, harder string fragmentation.
VARIED = ("TimeShower:alphaSvalue = 0.15", "StringZ:aLund = 0.8")
TASK = "tth_vs_ttbar"
SIGNAL_LABEL = 6  # tth's data label
#: Row name of the classifiers trained from random weights (no pretraining).
SCRATCH = "none (scratch)"
#: Aggregated per row: the study's metrics plus the varied-shower AUC and its shift.
METRICS_ROBUST = (*STUDY_METRICS, "auc_varied", "auc_shift")
VARIANTS = {"physics": ("fresh", 2), "resim": ("resim", 3), "resim+physics": ("resim+physics", 3)}
MODEL = {
    "size": "custom",
    "overrides": {"dim": 32, "heads": 2, "layers": 2, "pair_hidden": 8, "proj_dim": 16},
}


def _store(fileset: dict, out: Path) -> Path:
    if not (out / "manifest.json").exists():
        build_store(
            fileset, out, execution=Execution(executor="iterative"), token_config=TokenConfig()
        )
    return out


def _merged(results: list) -> dict:
    fileset: dict = {}
    for r in results:
        fileset.update(r.fileset())
    return fileset


def samples(out: Path, n_hard: int, n_labelled: int) -> dict[str, Path]:
    gen = out / "gen"
    pool = [
        generate(p, n_hard, seed=31, out=gen / "pool", resim=3, resume=True)
        for p in ("tth", "ttbar")
    ]
    default = [
        generate(p, n_labelled, seed=32, out=gen / "default", resume=True) for p in ("tth", "ttbar")
    ]
    varied = [
        generate(p, n_labelled, seed=33, out=gen / "varied", pythia_extra=VARIED, resume=True)
        for p in ("tth", "ttbar")
    ]
    return {
        "pool": _store(_merged(pool), out / "stores" / "pool"),
        "default": _store(_merged(default), out / "stores" / "default"),
        "varied": _store(_merged(varied), out / "stores" / "varied"),
    }


def _config(views: str, n_views: int, steps: int, batch_size: int, seed: int = 5):
    return load_pretrain_config(
        {
            "model": MODEL,
            "views": views,
            "objective": {"n_views": n_views, "masked_weight": 0.0},
            "train": {"steps": steps, "batch_size": batch_size, "progress": False,
                      "device": "cpu", "seed": seed, "checkpoint_every": 10_000},
            "optim": {"warmup_steps": 20, "lr": 1e-3},
        }
    )  # fmt: skip


def _embed(model: EventModel, store: Path) -> tuple[np.ndarray, np.ndarray]:
    embs, labels = [], []
    model.eval()
    with torch.no_grad():
        for batch in open_loader(store, batch_size=512, shuffle=False, load_views=False):
            embs.append(model.embed(batch["tokens"], batch["mask"].bool()).numpy())
            labels.append(batch["label"].numpy())
    return np.concatenate(embs), np.concatenate(labels)


def probe(model: EventModel, stores: dict[str, Path], seed: int = 0) -> dict[str, float]:
    """Logistic regression on frozen embeddings: AUC on default and varied showers."""
    x, y = _embed(model, stores["default"])
    rng = np.random.default_rng(seed)
    train = rng.random(len(y)) < 0.5
    positive = y == SIGNAL_LABEL
    clf = LogisticRegression(max_iter=2000).fit(x[train], positive[train])
    xv, yv = _embed(model, stores["varied"])
    auc_default = roc_auc_score(positive[~train], clf.decision_function(x[~train]))
    auc_varied = roc_auc_score(yv == SIGNAL_LABEL, clf.decision_function(xv))
    return {"auc_default": auc_default, "auc_varied": auc_varied, "shift": auc_varied - auc_default}


def encoders(out: Path, pool: Path, seeds: list[int], steps: int, batch_size: int) -> dict:
    """``{(variant, seed): run directory}``: each variant pretrained on the pool (or reused)."""
    runs = {}
    for seed in seeds:
        for name, (views, n_views) in VARIANTS.items():
            run = out / "runs" / f"{name.replace('+', '_')}_s{seed}"
            if not (run / "model.safetensors").exists():
                cfg = _config(views, n_views, steps, batch_size, seed)

                def data(rank, world_size, views=views, seed=seed):
                    return shards_source(pool, views, batch_size=batch_size, seed=seed,
                                         rank=rank, world_size=world_size)  # fmt: skip

                pretrain(cfg, data, run)
            runs[name, seed] = run
    return runs


def task_config(labels: list, modes: list[str], max_steps: int | None) -> TaskConfig:
    """The shipped ``tth_vs_ttbar`` task (selection, splits, early stopping on the
    validation loss, best checkpoint kept) with this study's grid and one learning rate
    (the task's 1e-3, no rate search); ``max_steps`` caps every run (CPU budget)."""
    updates = {"labels": labels, "modes": modes, "optim.lr_grid": [1e-3]}
    return load_task_config(TASK, **updates, **{"train.max_steps": max_steps})


def _robustness(row: dict, varied: LabelledEvents) -> dict:
    """``row`` plus the AUC of its classifier on the whole varied-shower sample."""
    run = Path(row["run_dir"])
    res = evaluate_run(run, varied, split="all", out=run / "eval_varied", plots=False)
    return {**row, "auc_varied": res["auc"], "auc_shift": res["auc"] - row["auc"],
            "n_varied": res["n_events"]}  # fmt: skip


def finetune_study(
    out: Path, runs: dict, stores: dict[str, Path], seeds: list[int], task: TaskConfig
) -> list[dict]:
    """Every (variant, mode, label count, seed) row: test AUC on the default shower and
    AUC on the varied shower (``auc_varied``, ``auc_shift``)."""
    default = load_labelled(shards=stores["default"])
    varied = load_labelled(shards=stores["varied"])
    encoder_modes = [m for m in task.modes if m != "scratch"]
    rows = []
    for seed in seeds:
        jobs = [(name, encoder_modes) for name in VARIANTS]
        if "scratch" in task.modes:  # random weights: the first variant's architecture
            jobs.append((SCRATCH, ["scratch"]))
        for name, modes in jobs:
            pretrained = runs[next(iter(VARIANTS)) if name == SCRATCH else name, seed]
            where = out / "finetune" / f"{name.replace('+', '_').split()[0]}_s{seed}"
            res = label_efficiency(task, pretrained, default, where, modes=modes, seeds=[seed],
                                   plots=False, log=print)  # fmt: skip
            rows += [{"variant": name, **_robustness(r, varied)} for r in res.rows]
    return rows


def _cell(entry: dict, key: str, signed: bool = False) -> str:
    mean, std = entry[f"{key}_mean"], entry[f"{key}_std"]
    return f"{mean:+.3f} ± {std:.3f}" if signed else f"{mean:.3f} ± {std:.3f}"


def study_tables(rows: list[dict]) -> tuple[list[dict], str]:
    """Aggregates over seeds per (variant, mode, label count) and the two Markdown tables."""
    agg = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        agg += [{"variant": name, **a} for a in aggregate(mine, METRICS_ROBUST)]
    counts = sorted({a["n_labels"] for a in agg})
    seeds = max(a["n_seeds"] for a in agg)
    lines = [f"Test AUC on the default shower (mean ± std over {seeds} seeds):", "",
             "| pretraining views | mode | " + " | ".join(f"{n} labels" for n in counts) + " |",
             "|---|---|" + "---:|" * len(counts)]  # fmt: skip
    by_key = {(a["variant"], a["mode"], a["n_labels"]): a for a in agg}
    pairs = list(dict.fromkeys((a["variant"], a["mode"]) for a in agg))
    for name, mode in pairs:
        cells = [_cell(by_key[name, mode, n], "auc") if (name, mode, n) in by_key else "-"
                 for n in counts]  # fmt: skip
        lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "Robustness: trained on the default shower, AUC on the default-shower test "
              "split and on the varied-shower sample:", "",
              "| pretraining views | mode | labels | AUC default | AUC varied | shift |",
              "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, mode in pairs:
        for n in counts:
            a = by_key.get((name, mode, n))
            if a is not None:
                cells = [_cell(a, "auc"), _cell(a, "auc_varied"), _cell(a, "auc_shift", True)]
                lines.append(f"| {name} | {mode} | {n} | " + " | ".join(cells) + " |")
    return agg, "\n".join(lines) + "\n"


def probe_study(runs: dict, stores: dict[str, Path], seeds: list[int]) -> tuple[dict, str]:
    """The frozen-embedding probe of every encoder (and a random one), mean ± std over seeds."""
    per_seed: dict[str, list[dict[str, float]]] = {}
    for seed in seeds:
        for name in VARIANTS:
            model, _ = load_run(runs[name, seed])
            per_seed.setdefault(name, []).append(probe(model, stores, seed))
        torch.manual_seed(seed)
        random_model = EventModel(model_config_for(TokenConfig(), "custom", **MODEL["overrides"]))
        per_seed.setdefault("random encoder", []).append(probe(random_model, stores, seed))
    rows = {
        name: {
            f"{key}_{stat}": float(fn([r[key] for r in results]))
            for key in ("auc_default", "auc_varied", "shift")
            for stat, fn in (("mean", np.mean), ("std", np.std))
        }
        | {"per_seed": results}
        for name, results in per_seed.items()
    }
    lines = ["Frozen-embedding probe (logistic regression, no selection; std ddof=0):", "",
             "| pretraining views | AUC default shower | AUC varied shower | shift |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for name, r in rows.items():
        lines.append(f"| {name} | {_cell(r, 'auc_default')} | {_cell(r, 'auc_varied')} | "
                     f"{_cell(r, 'shift', True)} |")  # fmt: skip
    return rows, "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--hard", type=int, default=500, help="hard events per pool process")
    ap.add_argument("--labelled", type=int, default=3000, help="events per labelled sample")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seeds", default="5,6,7", help="comma list of pretraining/fine-tuning seeds")
    ap.add_argument("--labels", default="10%,all", help="label grid (counts, %% or all)")
    ap.add_argument("--modes", default="linear-probe,finetune,scratch")
    ap.add_argument("--max-steps", type=int, help="fine-tuning step cap (default: none)")
    ap.add_argument("--results", help="folder for resim_study.json / .md (default: --out)")
    args = ap.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    seeds = [int(x) for x in args.seeds.split(",")]
    labels = [x if not x.isdigit() else int(x) for x in args.labels.split(",")]
    stores = samples(out, args.hard, args.labelled)
    runs = encoders(out, stores["pool"], seeds, args.steps, args.batch_size)
    t_pretrain = time.perf_counter() - start
    rows = finetune_study(
        out, runs, stores, seeds, task_config(labels, args.modes.split(","), args.max_steps)
    )
    agg, table = study_tables(rows)
    probe_rows, probe_table = probe_study(runs, stores, seeds)
    summary = {"args": vars(args), "task": TASK, "varied": VARIED, "rows": rows,
               "aggregate": agg, "probe": probe_rows, "pretrain_s": t_pretrain,
               "wall_s": time.perf_counter() - start}  # fmt: skip
    results = Path(args.results) if args.results else out
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results / "resim_study.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(results / "resim_study.md", table + "\n" + probe_table)
    print(table + "\n" + probe_table)


if __name__ == "__main__":
    main()
