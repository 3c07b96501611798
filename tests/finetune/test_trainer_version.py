"""The trainer's numbers are pinned under :data:`~jetfm_coffea.finetune.cells.TRAINER_VERSION`.

Cells of a long label-efficiency study are keyed by the trainer's version, not by its
source text, so a refactor keeps a study's finished cells.  This test is what makes that
safe: it trains fixed cells (every mode, on the real files of the fine-tuning fixtures,
with a randomly initialised encoder so that pretraining's own numbers do not enter) and
compares their results with the ones pinned for the current version.  A change of the
trainer's numbers fails here until TRAINER_VERSION is bumped and its results pinned
beside the older versions' (stored cells of the old version are then refused as stale).
"""

from __future__ import annotations

import pytest

from jetfm_coffea.finetune import load_task_config, prepare_finetune
from jetfm_coffea.finetune.cells import TRAINER_VERSION, CellStore
from jetfm_coffea.finetune.cellstudy import CellPlan, cell_study, random_encoder
from jetfm_coffea.finetune.trainer import load_pretrained

from .conftest import tiny_task

#: version -> {cell path: (steps, best validation loss, test AUC)}
PINNED: dict[str, dict[str, tuple[int, float, float]]] = {
    "2026.12.07": {
        "none/bdt-features/all/s1_l20_leaves15_lr0.3.json": (12, 0.09512841148755034, 0.95945946),
        "none/bdt-features/all/s1_l20_leaves31_lr0.3.json": (12, 0.09512841148755034, 0.95945946),
        "none/bdt-raw/all/s1_l20_leaves15_lr0.3.json": (12, 0.1500863457338367, 0.98119859),
        "none/bdt-raw/all/s1_l20_leaves31_lr0.3.json": (12, 0.1500863457338367, 0.98119859),
        "none/scratch/all/s1_archaff8eab8_lr0.003.json": (6, 0.15828247368335724, 0.98119859),
        "ssl/finetune/all/s1_lr0.003.json": (6, 0.5932732820510864, 0.96122209),
        "ssl/linear-probe/all/s1_lr0.003.json": (6, 0.7539446353912354, 0.07403055),
    },
}


def _results(labelled, pretrained_run, tmp_path) -> dict[str, tuple[int, float, float]]:
    cfg = tiny_task(max_epochs=None, max_steps=6, schedule="constant", min_eval_interval=2,
                    patience=2)  # fmt: skip
    cfg["optim"]["lr_grid"] = [3e-3]
    cfg["reference"] = {"learning_rates": [0.3], "max_iter": 12, "patience": 4}
    cfg["min_val_events"] = 10
    task = load_task_config(cfg)
    plan = CellPlan(labels=("all",), seeds=(1,), small_seeds=(1,), tune_seeds=1,
                    bdt_leaves=(15,), bdt_l2=(0.0,), max_extend=0, strict=False,
                    n_boot=10)  # fmt: skip
    setup = prepare_finetune(task, pretrained_run, labelled, labels=["all"])
    encoder = random_encoder(load_pretrained(pretrained_run), seed=5)
    store = CellStore(tmp_path / "cells")
    cell_study(setup, {"ssl": encoder}, store, plan, task_name="pin", work=tmp_path / "w")
    out = {}
    for path, c in store.cells("pin"):
        r = c["result"]
        out[str(path.relative_to(store.root / "pin"))] = (
            r["steps"], r["best_val_loss"], r["auc"]
        )  # fmt: skip
    return out


def test_trainer_numbers_are_the_ones_pinned_for_its_version(labelled, pretrained_run, tmp_path):
    got = _results(labelled, pretrained_run, tmp_path)
    want = PINNED.get(TRAINER_VERSION)
    assert want, f"no results pinned for TRAINER_VERSION {TRAINER_VERSION!r}: pin {got!r}"
    assert set(got) == set(want)
    for name, (steps, loss, auc) in want.items():
        g = got[name]
        assert (
            g[0] == steps
            and g[1] == pytest.approx(loss, rel=1e-4, abs=1e-6)
            and g[2] == pytest.approx(auc, abs=1e-4)
        ), (
            f"{name}: {g} now, {(steps, loss, auc)} pinned for {TRAINER_VERSION}: the trainer's "
            "numbers changed; bump TRAINER_VERSION (stored cells become stale) and pin these"
        )


def test_every_pinned_version_has_its_own_numbers():
    seen = [tuple(sorted(v.items())) for v in PINNED.values() if v]
    assert len(seen) == len(set(seen)), "a bumped version must pin the numbers that changed"
