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

    python benchmarks/resim_study.py --out resim-study/ --hard 600 --labelled 1500 --steps 300
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
from jetfm_coffea.train import load_pretrain_config, pretrain
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
    pool = [generate(p, n_hard, seed=31, out=gen / "pool", resim=3) for p in ("tth", "ttbar")]
    default = [generate(p, n_labelled, seed=32, out=gen / "default") for p in ("tth", "ttbar")]
    varied = [
        generate(p, n_labelled, seed=33, out=gen / "varied", pythia_extra=VARIED)
        for p in ("tth", "ttbar")
    ]
    return {
        "pool": _store(_merged(pool), out / "stores" / "pool"),
        "default": _store(_merged(default), out / "stores" / "default"),
        "varied": _store(_merged(varied), out / "stores" / "varied"),
    }


def _config(views: str, n_views: int, steps: int, batch_size: int):
    return load_pretrain_config(
        {
            "model": MODEL,
            "views": views,
            "objective": {"n_views": n_views, "masked_weight": 0.0},
            "train": {"steps": steps, "batch_size": batch_size, "progress": False,
                      "device": "cpu", "seed": 5, "checkpoint_every": 10_000},
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
    args = ap.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    stores = samples(out, args.hard, args.labelled)
    rows = {}
    for name, (views, n_views) in VARIANTS.items():
        cfg = _config(views, n_views, args.steps, args.batch_size)

        def data(rank, world_size, views=views):
            return shards_source(stores["pool"], views, batch_size=args.batch_size, seed=5,
                                 rank=rank, world_size=world_size)  # fmt: skip

        result = pretrain(cfg, data, out / "runs" / name.replace("+", "_"))
        rows[name] = {**probe(result.model, stores), "final_loss": result.losses[-1]}
    torch.manual_seed(5)
    random_model = EventModel(model_config_for(TokenConfig(), "custom", **MODEL["overrides"]))
    rows["random encoder"] = probe(random_model, stores)
    summary = {"args": vars(args), "varied": VARIED, "rows": rows,
               "wall_s": time.perf_counter() - start}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("| pretraining views | AUC default shower | AUC varied shower | shift |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['auc_default']:.3f} | {r['auc_varied']:.3f} | {r['shift']:+.3f} |")


if __name__ == "__main__":
    main()
