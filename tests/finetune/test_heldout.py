"""A pretraining pool without a task's held-out events, and the guard against one with them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.finetune import SPLITS, plan_task, prepare_finetune
from jetfm_coffea.finetune.heldout import (
    check_pool_excludes_held_out,
    pool_without_held_out,
    read_pool_events,
    write_pool_events,
)
from jetfm_coffea.model.rundir import POOL_EVENTS

from .conftest import tiny_task


def _ids(data, index):
    names = data.dataset_names()
    return {
        (names[i], int(data.run[i]), int(data.luminosityBlock[i]), int(data.event[i]))
        for i in index
    }


def test_pool_leaves_out_exactly_the_val_and_test_events_of_the_task(labelled):
    setup = plan_task(tiny_task(), labelled)
    pool = pool_without_held_out(labelled, setup)
    kept = _ids(pool, range(len(pool)))
    for name, code in SPLITS.items():
        ids = _ids(labelled, np.flatnonzero(setup.split == code))
        assert len(ids) > 30, name
        assert (ids <= kept) if name == "train" else not (ids & kept), name
    assert len(pool) == (setup.split == SPLITS["train"]).sum()
    # (that other samples keep every event: tests/pipelines/test_demo.py)


def test_the_guard_names_the_pool_and_counts_the_leaked_events(labelled, tmp_path):
    setup = plan_task(tiny_task(), labelled)
    n_test = (setup.split == SPLITS["test"]).sum()
    with pytest.raises(TrainingError, match=rf"pool everything contains {n_test} test events"):
        check_pool_excludes_held_out(labelled, setup, pool_name="everything")
    pool = pool_without_held_out(labelled, setup, splits=("test",))
    check_pool_excludes_held_out(pool, setup, pool_name="no test events")  # passes
    n_val = (setup.split == SPLITS["val"]).sum()
    with pytest.raises(TrainingError, match=rf"contains {n_val} val events"):
        check_pool_excludes_held_out(pool, setup, pool_name="p", splits=("val",))
    # the keys round-trip through the pool file
    path = write_pool_events(tmp_path / POOL_EVENTS, pool)
    assert read_pool_events(path) == _ids(pool, range(len(pool)))


def test_finetuning_against_an_encoder_pretrained_on_the_test_events_is_refused(
    pretrained_run, labelled, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(pretrained_run, run)
    setup = plan_task(tiny_task(), labelled)
    clean = pool_without_held_out(labelled, setup)
    write_pool_events(run / POOL_EVENTS, clean)
    prepare_finetune(tiny_task(), run, labelled)  # a pool without the test events: fine
    test = np.flatnonzero(setup.split == SPLITS["test"])
    write_pool_events(run / POOL_EVENTS, labelled.take(test[:3]))
    with pytest.raises(TrainingError, match=rf"{POOL_EVENTS} contains 3 test events"):
        prepare_finetune(tiny_task(), run, labelled)
