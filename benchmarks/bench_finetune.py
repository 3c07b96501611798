"""Fine-tuning wall time per mode, per 1k labelled events (CPU; GPU when available).

Builds a labelled two-class set from real CMS files (2012 SingleMu collisions = 0,
NanoAODv5 ttbar = 1; a machinery benchmark, not a physics one), writes a 1-step
"pretrained" run of each model size (timing does not depend on the weights), then
trains every mode with ``--labels`` labelled events for a fixed ``--epochs`` (early
stopping off) through the real :func:`jetfm_coffea.finetune.finetune` and reports

* ``s_per_1k_epoch``: training-loop seconds (incl. the validation passes) per epoch
  per 1k labelled events;
* ``cpu_s_*``: the same in process CPU time (with ``--threads 1``, the number a
  shared machine does not inflate);
* ``s_per_1k_run``: the whole call (set-up, loop, test scoring, run directory) per 1k
  labelled events; for ``linear-probe`` plus the one-off frozen embedding of the
  labelled train+val events (``embed_s_per_1k``), which a study shares between runs.

    python benchmarks/bench_finetune.py --sizes tiny,small --labels 1000 --out bench.json
"""

from __future__ import annotations

import jetfm_coffea  # noqa: F401  # isort: skip  (first: OpenMP's wait policy before torch)

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from _common import real_file

from jetfm_coffea.finetune import MODES, finetune, load_labelled, prepare_finetune
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import pretrain
from jetfm_coffea.train.data import TensorEventDataset


def labelled_set(max_per_dataset: int, tmp: Path):
    fileset = tmp / "labelled.json"
    spec = {
        "collisions2012": {
            "files": [str(real_file("Run2012B_SingleMu_10000.root"))],
            "metadata": {"label": 0},
        },
        "ttbar": {"files": [str(real_file("NanoAODv5_ttbar_1000.root"))], "metadata": {"label": 1}},
    }
    fileset.write_text(json.dumps(spec))
    return load_labelled(
        fileset=fileset, token_config=TokenConfig(), max_events_per_dataset=max_per_dataset
    )


def pretrained_run(size: str, data, tmp: Path) -> Path:
    out = tmp / f"pretrained-{size}"
    src = TensorEventDataset(data.tokens, data.mask, event=data.event, batch_size=32)
    cfg = {
        "model": {"size": size},
        "train": {"steps": 1, "progress": False, "device": "cpu"},
        "objective": {"contrastive": "none"},
    }
    pretrain(cfg, src, out, keep_model=False)
    return out


def run(size: str, mode: str, data, pre: Path, labels: int, epochs: int, device: str, tmp: Path):
    task = {
        "classes": {"collisions": 0, "ttbar": 1},
        "train": {
            "batch_size": 128,
            "max_epochs": epochs,
            "min_steps": 0,
            "max_steps": 10**6,
            "patience": 10**6,
            "device": device,
        },
    }
    setup = prepare_finetune(task, pre, data, labels=[labels])
    embed_s = embed_cpu_s = 0.0
    if mode == "linear-probe":  # time the frozen embedding of the labelled events only
        n_lab = labels + len(setup.select(labels, 0)[1])
        c0 = time.process_time()
        setup.embeddings()
        frac = n_lab / int((setup.targets >= 0).sum())
        embed_s = setup.embed_seconds * frac
        embed_cpu_s = (time.process_time() - c0) * frac
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    c0 = time.process_time()
    res = finetune(setup, tmp / f"{size}-{mode}", mode=mode, labels=labels, seed=0)
    cpu_s = time.process_time() - c0
    k = labels / 1000
    return {
        "size": size,
        "mode": mode,
        "device": device,
        "labels": labels,
        "epochs": epochs,
        "steps": res.steps,
        "s_per_1k_epoch": res.train_s / epochs / k,
        "embed_s_per_1k": embed_s / k,
        "s_per_1k_run": (res.wall_s + embed_s) / k,
        "cpu_s_per_1k_epoch": res.train_cpu_s / epochs / k,
        "cpu_s_per_1k_run": (cpu_s + embed_cpu_s) / k,
        "test_auc": res.test_metrics["auc"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--labels", type=int, default=1000, help="labelled training events")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out", default="bench_finetune.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # train split 60%: enough events per class for --labels plus val and test splits
    per_dataset = min(1000, int(args.labels / 0.6 / 2 * 1.15) + 50)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        data = labelled_set(per_dataset, tmp)
        load_s = time.perf_counter() - t0
        results = []
        for size in args.sizes.split(","):
            pre = pretrained_run(size, data, tmp)
            # warm-up: imports (sklearn), allocator, kernels
            run(size, "scratch", data, pre, 2 * 64, 1, args.device, tmp / "warm")
            for mode in args.modes.split(","):
                results.append(
                    run(size, mode, data, pre, args.labels, args.epochs, args.device, tmp)
                )
    meta = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "events": len(data),
        "token_build_s": load_s,
        "mean_valid_tokens": float(data.mask.sum(1).mean()),
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg(),  # a shared machine inflates wall times
    }
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    cols = ["size", "mode", "device", "labels", "epochs", "steps", "s_per_1k_epoch"]
    cols += ["cpu_s_per_1k_epoch", "embed_s_per_1k", "s_per_1k_run", "cpu_s_per_1k_run"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        cells = [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        print("| " + " | ".join(cells) + " |")
    print(f"\n{meta}")


if __name__ == "__main__":
    main()
