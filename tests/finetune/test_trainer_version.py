"""The trainers' numbers are pinned under their versions
(:data:`~jetfm_coffea.finetune.cells.TRAINER_VERSION` for the encoder modes,
:data:`~jetfm_coffea.finetune.cells.REFERENCE_VERSION` for the BDTs).

Cells of a long label-efficiency study are keyed by their trainer's version, not by its
source text, so a refactor keeps a study's finished cells.  This test is what makes that
safe: it trains fixed cells (every mode, on the real files of the fine-tuning fixtures,
with a randomly initialised encoder so that pretraining's own numbers do not enter) and
compares their results with the ones pinned for the current versions.  A change of a
trainer's numbers fails here until its version is bumped and its results pinned beside
the older versions' (stored cells of the old version are then refused as stale).
"""

from __future__ import annotations

import pytest

from jetfm_coffea.finetune import load_task_config, prepare_finetune
from jetfm_coffea.finetune.cells import REFERENCE_VERSION, TRAINER_VERSION, CellStore
from jetfm_coffea.finetune.cellstudy import CellPlan, cell_study, random_encoder
from jetfm_coffea.finetune.trainer import load_pretrained

from .conftest import tiny_task

Pins = dict[str, dict[str, tuple[int, float, float]]]
#: encoder modes: version -> {cell path: (steps, best validation loss, test AUC)}
PINNED: Pins = {
    "2026.12.07": {
        "none/scratch/all/s1_archaff8eab8_lr0.003.json": (6, 0.15828247368335724, 0.98119859),
        "ssl/finetune/all/s1_lr0.003.json": (6, 0.5932732820510864, 0.96122209),
        "ssl/linear-probe/all/s1_lr0.003.json": (6, 0.7539446353912354, 0.07403055),
    },
}
#: the BDTs, the same way
PINNED_REFERENCE: Pins = {
    "2026.12.07": {  # stopped at max_iter (12) while still improving
        "none/bdt-features/all/s1_l20_leaves15_lr0.3.json": (12, 0.09512841148755034, 0.95945946),
        "none/bdt-features/all/s1_l20_leaves31_lr0.3.json": (12, 0.09512841148755034, 0.95945946),
        "none/bdt-raw/all/s1_l20_leaves15_lr0.3.json": (12, 0.1500863457338367, 0.98119859),
        "none/bdt-raw/all/s1_l20_leaves31_lr0.3.json": (12, 0.1500863457338367, 0.98119859),
    },
    "2026.12.08": {  # max_iter doubled while still improving
        "none/bdt-features/all/s1_l20_leaves15_lr0.3.json": (15, 0.09512841148755034, 0.95945946),
        "none/bdt-features/all/s1_l20_leaves31_lr0.3.json": (15, 0.09512841148755034, 0.95945946),
        "none/bdt-raw/all/s1_l20_leaves15_lr0.3.json": (17, 0.14863229516744839, 0.97943596),
        "none/bdt-raw/all/s1_l20_leaves31_lr0.3.json": (17, 0.14863229516744839, 0.97943596),
    },
}


@pytest.fixture(scope="module")
def pinned_cells(labelled, pretrained_run, tmp_path_factory) -> dict[str, tuple]:
    """The fixed cells' results, trained once for both trainers' tests."""
    return _results(labelled, pretrained_run, tmp_path_factory.mktemp("pinned"))


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


@pytest.mark.parametrize("reference", [False, True], ids=["encoder-modes", "bdts"])
def test_trainer_numbers_are_the_ones_pinned_for_its_version(pinned_cells, reference):
    version, pins = (
        (REFERENCE_VERSION, PINNED_REFERENCE) if reference else (TRAINER_VERSION, PINNED)
    )
    got = {k: v for k, v in pinned_cells.items() if ("/bdt-" in k) == reference}
    want = pins.get(version)
    assert want, f"no results pinned for version {version!r}: pin {got!r}"
    assert set(got) == set(want)
    for name, (steps, loss, auc) in want.items():
        g = got[name]
        assert (
            g[0] == steps
            and g[1] == pytest.approx(loss, rel=1e-4, abs=1e-6)
            and g[2] == pytest.approx(auc, abs=1e-4)
        ), (
            f"{name}: {g} now, {(steps, loss, auc)} pinned for {version}: the trainer's "
            "numbers changed; bump its version (stored cells become stale) and pin these"
        )


@pytest.mark.parametrize("pins", [PINNED, PINNED_REFERENCE], ids=["encoder-modes", "bdts"])
def test_every_pinned_version_has_its_own_numbers(pins):
    seen = [tuple(sorted(v.items())) for v in pins.values() if v]
    assert len(seen) == len(set(seen)), "a bumped version must pin the numbers that changed"
