"""The reference label-efficiency study: pretrain on an unlabelled mixture, fine-tune on a task.

1. Pretrain (self-supervised) on ``--unlabelled`` (NanoAOD ROOT files or fileset
   JSONs, e.g. generated ttbar/W+jets/Z+jets/QCD/diboson plus 2012 collision data;
   labels, if any, are ignored) -> ``OUT/pretrain`` (skipped if already complete).
2. Fine-tune on ``--task-fileset`` (a labelled fileset, e.g. generated ttbar (label 0)
   vs W+jets (label 1), written by ``jetfm generate``) with the three modes over the label
   grid and seeds -> ``OUT/study`` (results.json/.md, label-efficiency, ROC and
   score plots; completed runs are reused when re-run).
3. ``OUT/summary.json`` / ``summary.md``: the goal check of the issue, reported as
   measured — does ``finetune`` with 10% of the labels reach the mean AUC of
   ``scratch`` trained on all of them (within the seed spread)?

    python benchmarks/label_efficiency_study.py \\
        --unlabelled gen/mixture.json /work/shared/testdata/cms/Run2012B_SingleMu_10000.root \\
        --task-fileset gen/ttbar_vs_wjets.json --task task.yaml --out study/ \\
        --size small --pretrain-steps 3000 --labels 100,1000,10000,all --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from jetfm_coffea.finetune import label_efficiency, load_labelled, load_pretrained
from jetfm_coffea.finetune.config import load_task_config
from jetfm_coffea.train import TensorEventDataset, pretrain
from jetfm_coffea.train.checkpoint import atomic_write_text
from jetfm_coffea.train.data import events_source

DEFAULT_TASK = {
    "classes": {"wjets": 1, "ttbar": 0},  # the generator's process labels
    "signal": "ttbar",
    "labels": [100, 1000, 10000, "all"],
    "seeds": [0, 1, 2],
}


def unlabelled_mixture(paths: list[str], max_events: int | None, batch_size: int, seed: int):
    """All events of ``paths`` (ROOT files or fileset JSONs) as one shuffled batch source."""
    parts = [events_source(p, max_events=max_events) for p in paths]
    arrays = {
        k: np.concatenate([p.arrays[k].numpy() for p in parts])
        for k in ("tokens", "mask", "objects", "run", "luminosityBlock", "event")
    }
    return TensorEventDataset(
        arrays["tokens"],
        arrays["mask"],
        objects=arrays["objects"],  # the fresh physics views are made from them
        token_config=parts[0].token_config,
        run=arrays["run"],
        luminosityBlock=arrays["luminosityBlock"],
        event=arrays["event"],
        batch_size=batch_size,
        seed=seed,
        provenance={
            "source": "unlabelled mixture",
            "inputs": [p.provenance for p in parts],
            "n_events": len(arrays["mask"]),
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--unlabelled", nargs="+", required=True, help="ROOT files / fileset JSONs")
    ap.add_argument("--task-fileset", required=True, help="labelled fileset (metadata.label)")
    ap.add_argument("--task", help="task config YAML (default: W+jets vs ttbar, generator labels)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    ap.add_argument("--pretrain-steps", type=int, default=2000)
    ap.add_argument("--pretrain-batch", type=int, default=256)
    ap.add_argument("--pretrain-config", help="pretraining YAML (overrides --size/--steps)")
    ap.add_argument("--max-unlabelled", type=int, help="events per unlabelled input")
    ap.add_argument("--max-events-per-dataset", type=int, help="events per task dataset")
    ap.add_argument("--labels", help="comma list, e.g. 100,1000,10000,all")
    ap.add_argument("--seeds", help="comma list, e.g. 0,1,2")
    ap.add_argument("--modes", help="comma list (default: all three)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    pre_dir = out / "pretrain"
    if not (pre_dir / "model.safetensors").is_file():
        if args.pretrain_config:
            cfg: dict | str = args.pretrain_config
        else:
            cfg = {
                "model": {"size": args.size},
                "train": {"steps": args.pretrain_steps, "batch_size": args.pretrain_batch},
            }
        source = unlabelled_mixture(
            args.unlabelled, args.max_unlabelled, args.pretrain_batch, seed=0
        )
        pretrain(cfg, source, pre_dir, keep_model=False)
    pretrain_s = time.perf_counter() - t0

    task = load_task_config(args.task or DEFAULT_TASK)
    pre = load_pretrained(pre_dir)
    data = load_labelled(
        fileset=args.task_fileset,
        token_config=pre.token_config,
        max_events_per_dataset=args.max_events_per_dataset or task.max_events_per_dataset,
    )
    labels = [v if v == "all" else int(v) for v in args.labels.split(",")] if args.labels else None
    result = label_efficiency(
        task,
        pre,
        data,
        out / "study",
        modes=args.modes.split(",") if args.modes else None,
        labels=labels,
        seeds=[int(s) for s in args.seeds.split(",")] if args.seeds else None,
        log=print,
    )
    summary = goal_check(result.aggregate)
    summary.update(
        {
            "pretrain_dir": str(pre_dir),
            "pretrain_s": pretrain_s,
            "total_s": time.perf_counter() - t0,
            "n_task_events": len(data),
        }
    )
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    print(result.files["markdown"].read_text())
    print(summary_markdown(summary))


def goal_check(aggregate: list[dict]) -> dict:
    """Fine-tuned AUC at the label count closest to 10% of all vs scratch at 100%."""
    counts = sorted({e["n_labels"] for e in aggregate})
    full = counts[-1]
    tenth = min(counts, key=lambda n: abs(n - 0.1 * full))

    def entry(mode: str, n: int) -> dict | None:
        return next((e for e in aggregate if e["mode"] == mode and e["n_labels"] == n), None)

    ft, sc = entry("finetune", tenth), entry("scratch", full)
    out: dict = {"n_full": full, "n_tenth": tenth, "tenth_fraction": tenth / full}
    if ft and sc:
        gap = ft["auc_mean"] - sc["auc_mean"]
        spread = float(np.hypot(ft["auc_std"], sc["auc_std"]))
        out.update(
            {
                "finetune_tenth_auc": [ft["auc_mean"], ft["auc_std"]],
                "scratch_full_auc": [sc["auc_mean"], sc["auc_std"]],
                "auc_gap": gap,
                "combined_seed_std": spread,
                "goal_reached": bool(gap >= -spread),
            }
        )
    return out


def summary_markdown(s: dict) -> str:
    if "auc_gap" not in s:
        return "Goal check needs both finetune and scratch runs.\n"
    ft, sc = s["finetune_tenth_auc"], s["scratch_full_auc"]
    verdict = "reached" if s["goal_reached"] else "not reached"
    return (
        f"Fine-tuned with {s['n_tenth']} labels ({s['tenth_fraction']:.0%} of {s['n_full']}): "
        f"AUC {ft[0]:.4f} ± {ft[1]:.4f}; from scratch with all {s['n_full']}: "
        f"AUC {sc[0]:.4f} ± {sc[1]:.4f}; difference {s['auc_gap']:+.4f} "
        f"(combined seed std {s['combined_seed_std']:.4f}): goal {verdict}.\n"
    )


if __name__ == "__main__":
    main()
