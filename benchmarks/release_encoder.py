"""Release a finished pretraining run as a built-in encoder (package data + release card).

Copies the run directory into ``jetfm_coffea/_data/pretrained/NAME/`` and writes its
release card from the run's own files: size and parameters (model config), objectives,
steps and batch (pretraining config), the pool (its event keys ``pool_events.npz``:
events, real events, datasets; the real data's luminosity mask from the campaign), the
code version that trained it and the SHA-256 of every file::

    python benchmarks/release_encoder.py --run study-cpu/run/pretrain --name tiny-ssl \\
        --study "label-efficiency cpu study (issue 25)" --checkout ../study-worktree \\
        --tag-campaign-seeds

``--tag-campaign-seeds``: a campaign run written before pool keys carried the dataset's
origin gets its generated datasets tagged with the campaign's fixed generator seeds
(``finetune.campaign.process_seed``) in the released copy of ``pool_events.npz``, so
that another sample of the same process (another seed, the same event numbers) is not
taken for a pretraining event.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from jetfm_coffea._resources import GOLDEN_JSON_2012, SINGLEMU_2012
from jetfm_coffea.generate.processes import PROCESSES
from jetfm_coffea.generate.run import dataset_name
from jetfm_coffea.model.released import release, released_root
from jetfm_coffea.pipelines.campaign import REAL_DATASET, SQRTS, process_seed
from jetfm_coffea.train.config import load_pretrain_config


def git_version(checkout: Path) -> str:
    """``git describe`` of ``checkout`` (the code that trained the run)."""
    out = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip() or "unknown"


def tag_campaign_seeds(pool_events: Path, out: Path) -> Path:
    """``pool_events`` with every generated dataset ``<process>_13TeV`` of the campaign
    tagged ``@seed <process_seed(process)>`` (collision data untagged), written to ``out``."""
    names = {dataset_name(p, SQRTS): f"seed {process_seed(p)}" for p in PROCESSES}
    with np.load(pool_events, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    tagged = [n if "@" in n or n not in names else f"{n}@{names[n]}"
              for n in arrays["dataset"].tolist()]  # fmt: skip
    arrays["dataset"] = np.array(tagged, dtype=str)
    np.savez_compressed(out, **arrays)
    return out


def card(run: Path, study: str, checkout: Path) -> dict:
    info = json.loads((run / "run.json").read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    active = load_pretrain_config(run / "config.yaml").objective.active()
    model = json.loads((run / "model_config.json").read_text())
    with np.load(run / "pool_events.npz") as f:
        names, counts = np.unique(f["dataset"], return_counts=True)
    per = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
    real = {"file": SINGLEMU_2012, "lumi_mask": GOLDEN_JSON_2012} if REAL_DATASET in per else None
    terms = [objective.name for objective, _ in active]  # every active term, in order
    return {
        "size": model.get("size", "custom"),
        "parameters": int(info["n_parameters"]),
        "objectives": terms,
        "steps": int(cfg["train"]["steps"]),
        "batch_size": int(cfg["train"]["batch_size"]),
        "date": time.strftime("%Y-%m-%d", time.gmtime((run / "model.safetensors").stat().st_mtime)),
        "pool": {
            "events": int(sum(per.values())),
            "real_events": per.get(REAL_DATASET, 0),
            "datasets": per,
            "processes": sorted(n for n in per if n != REAL_DATASET),
            "real_data": real,
        },
        "code_version": git_version(checkout),
        "study": study,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--study", default="")
    ap.add_argument(
        "--tag-campaign-seeds",
        action="store_true",
        help="tag the pool keys with the campaign's generator seeds",
    )
    ap.add_argument(
        "--checkout",
        type=Path,
        default=Path(__file__).parent,
        help="the git checkout whose code trained the run (default this one)",
    )
    args = ap.parse_args()
    run = args.run
    if args.tag_campaign_seeds:  # a copy of the run with tagged pool keys
        run = Path(tempfile.mkdtemp()) / "run"
        shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("checkpoints"))
        tag_campaign_seeds(args.run / "pool_events.npz", run / "pool_events.npz")
    dest = release(run, args.name, card(run, args.study, args.checkout))
    size = sum(p.stat().st_size for p in dest.iterdir())
    total = sum(p.stat().st_size for p in released_root().rglob("*") if p.is_file())
    mb = f"{size / 1e6:.2f} MB (all released: {total / 1e6:.2f} MB)"
    print(f"released {args.name} into {dest}: {mb}")


if __name__ == "__main__":
    main()
