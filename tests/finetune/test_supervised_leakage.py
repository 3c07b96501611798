"""No leakage through supervised pretraining (issue 26): a task's signal process is never
among the supervised labels of an encoder that task evaluates, and a control pool holds
no event of it; both refused by process label, before any training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune import load_task_config, prepare_finetune
from jetfm_coffea.finetune.cells import CellStore
from jetfm_coffea.finetune.cellstudy import CellPlan, cell_study
from jetfm_coffea.finetune.heldout import check_pool_without_labels, check_supervised_labels
from jetfm_coffea.finetune.trainer import load_pretrained
from jetfm_coffea.train.config import load_pretrain_config

from .conftest import tiny_task

TRUTH = {"weight": 1.0, "targets": {"GenTarget_nuPt": 1.0}, "center": {"GenTarget_nuPt": 40.0},
         "scale": {"GenTarget_nuPt": 20.0}}  # fmt: skip


def _taught(pretrained_run, objective):
    pre = load_pretrained(pretrained_run)
    cfg = load_pretrain_config({"objective": objective})
    return dataclasses.replace(pre, pretrain_config=cfg)


def _task():
    cfg = tiny_task()  # classes collisions (0), ttbar (1): signal ttbar
    cfg["optim"]["lr_grid"] = [1e-3]
    cfg["reference"] = {"learning_rates": [0.1]}
    return load_task_config(cfg)


def test_an_encoder_taught_the_signal_process_is_refused(pretrained_run):
    task = _task()
    taught = _taught(pretrained_run, {"process": {"weight": 1.0, "labels": [0, 1, 5]}})
    with pytest.raises(ConfigError, match=r"encoder 'hybrid' .* process labels \[0, 1, 5\].*"
                                          r"signal of task 'ttbar' \(labels \[1\]\)"):  # fmt: skip
        check_supervised_labels("hybrid", taught, task)
    legacy = _taught(pretrained_run, {"supervised": {"weight": 0.5}})
    with pytest.raises(ConfigError, match="'supervised' term, which learns every label"):
        check_supervised_labels("old", legacy, task)
    fine = _taught(pretrained_run, {"process": {"weight": 1.0, "labels": [0, 5]},
                                    "truth": TRUTH})  # fmt: skip
    check_supervised_labels("hybrid", fine, task)  # the signal excluded: accepted
    check_supervised_labels("ssl", load_pretrained(pretrained_run), task)


def test_an_encoder_taught_a_regression_target_is_refused_for_that_task(pretrained_run):
    task = load_task_config("wjets_nu_pt")
    taught = _taught(pretrained_run, {"truth": TRUTH})  # regresses GenTarget_nuPt
    with pytest.raises(ConfigError, match=r"pretrained to regress GenTarget_nuPt, the target"):
        check_supervised_labels("hybrid", taught, task)
    top = "GenTarget_hadTopPt"
    other = {**TRUTH, "targets": {top: 1.0}, "center": {top: 100.0}, "scale": {top: 50.0}}
    check_supervised_labels("hybrid", _taught(pretrained_run, {"truth": other}), task)


def test_a_cell_study_refuses_it_before_any_training(pretrained_run, labelled, tmp_path):
    task = _task()
    setup = prepare_finetune(task, pretrained_run, labelled, labels=["all"])
    taught = _taught(pretrained_run, {"process": {"weight": 1.0, "labels": [1]}})
    trained: list[str] = []
    with pytest.raises(ConfigError, match="encoder 'hybrid'"):
        cell_study(setup, {"ssl": load_pretrained(pretrained_run), "hybrid": taught},
                   CellStore(tmp_path / "cells"), CellPlan(labels=("all",), strict=False),
                   task_name="toy", work=tmp_path / "w", log=trained.append)  # fmt: skip
    assert not trained and not list((tmp_path / "cells").rglob("*.json"))


def test_a_control_pool_with_signal_events_is_refused(labelled):
    task = _task()
    with pytest.raises(ConfigError, match=r"the no-signal pool: \d+ events of the signal"):
        check_pool_without_labels(labelled, task, "the no-signal pool")
    check_pool_without_labels(labelled.take(np.flatnonzero(labelled.label != 1)), task, "pool")


def test_scratch_cells_are_shared_by_encoders_with_other_pretraining_heads(pretrained_run):
    from jetfm_coffea.finetune.cellstudy import encoder_architecture

    pre = load_pretrained(pretrained_run)
    heads = dataclasses.replace(pre, model_config=pre.model_config.model_copy(
        update={"n_classes": 9, "n_truth": 4}))  # fmt: skip
    wider = dataclasses.replace(pre, model_config=pre.model_config.model_copy(
        update={"dim": 32}))  # fmt: skip
    assert encoder_architecture(heads) == encoder_architecture(pre)
    assert encoder_architecture(wider) != encoder_architecture(pre)
