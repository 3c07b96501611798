"""A small re-simulation (RS3L) robustness probe: physics views vs resim views vs both.

Tiny-scale stand-in for issue 20's study (not its label-efficiency table): on the
tth-vs-ttbar task,

1. generate ttH(bb) and ttbar with ``--resim 3`` (the pretraining pool), and labelled
   ttH/ttbar samples with the default shower (train + test) and with varied shower and
   hadronisation settings (test only, :data:`VARIED`);
2. pretrain three micro encoders on the pool, same seed and steps: ``views: fresh``
   (physics views only), ``resim`` (the siblings), ``resim+physics`` (both);
3. for each encoder (and a randomly initialised one), fit a logistic regression on the
   frozen embeddings of the default-shower training events and report the test AUC on
   default and varied showers and their difference (the robustness shift).

``--seeds`` repeats 2-3 with other pretraining seeds (and probe splits) and reports mean ±
std; a rerun reuses the generated samples, stores and finished runs in ``--out``.

    python benchmarks/resim_study.py --out resim-study/ --hard 500 --labelled 1500 --seeds 5,6,7
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

from jetfm_coffea.generate import generate
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.model import EventModel, model_config_for
from jetfm_coffea.shards import open_loader
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import load_pretrain_config, load_run, pretrain
from jetfm_coffea.train.data import shards_source

#: Shower/hadronisation settings of the "varied" test samples.
VARIED = ("TimeShower:alphaSvalue = 0.1365", "StringZ:aLund = 0.8")
VARIANTS = {"physics": ("fresh", 2), "resim": ("resim", 3), "resim+physics": ("resim+physics", 3)}
MODEL = {
    "size": "custom",
    "overrides": {"dim": 32, "heads": 2, "layers": 2, "pair_hidden": 8, "proj_dim": 16},
}


def _store(fileset: dict, out: Path) -> Path:
    if not (out / "manifest.json").exists():
        build_store(fileset, out, token_config=TokenConfig(), executor="iterative")
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
    positive = y == 6  # tth's label
    clf = LogisticRegression(max_iter=2000).fit(x[train], positive[train])
    xv, yv = _embed(model, stores["varied"])
    auc_default = roc_auc_score(positive[~train], clf.decision_function(x[~train]))
    auc_varied = roc_auc_score(yv == 6, clf.decision_function(xv))
    return {"auc_default": auc_default, "auc_varied": auc_varied, "shift": auc_varied - auc_default}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--hard", type=int, default=600, help="hard events per pool process")
    ap.add_argument("--labelled", type=int, default=1500, help="events per labelled sample")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seeds", default="5", help="comma list of pretraining/probe seeds")
    args = ap.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    stores = samples(out, args.hard, args.labelled)
    seeds = [int(x) for x in args.seeds.split(",")]
    per_seed: dict[str, list[dict[str, float]]] = {}
    for seed in seeds:
        for name, (views, n_views) in VARIANTS.items():
            run = out / "runs" / f"{name.replace('+', '_')}_s{seed}"
            if (run / "model.safetensors").exists():
                model, _ = load_run(run)
            else:
                cfg = _config(views, n_views, args.steps, args.batch_size, seed)

                def data(rank, world_size, views=views, seed=seed):
                    return shards_source(stores["pool"], views, batch_size=args.batch_size,
                                         seed=seed, rank=rank, world_size=world_size)  # fmt: skip

                model = pretrain(cfg, data, run).model
            per_seed.setdefault(name, []).append(probe(model, stores, seed))
        torch.manual_seed(seed)
        random_model = EventModel(model_config_for(TokenConfig(), "custom", **MODEL["overrides"]))
        per_seed.setdefault("random encoder", []).append(probe(random_model, stores, seed))
    rows = {
        name: {
            f"{key}_{stat}": float(fn([r[key] for r in runs]))
            for key in ("auc_default", "auc_varied", "shift")
            for stat, fn in (("mean", np.mean), ("std", np.std))
        }
        | {"per_seed": runs}
        for name, runs in per_seed.items()
    }
    summary = {"args": vars(args), "varied": VARIED, "rows": rows,
               "wall_s": time.perf_counter() - start}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("| pretraining views | AUC default shower | AUC varied shower | shift |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        cells = [
            f"{r[f'{k}_mean']:+.3f} ± {r[f'{k}_std']:.3f}"
            for k in ("auc_default", "auc_varied", "shift")
        ]
        print(f"| {name} | " + " | ".join(c.lstrip("+") for c in cells[:2]) + f" | {cells[2]} |")


if __name__ == "__main__":
    main()
