"""A tiny pretrained run and a labelled two-class fileset of real CMS files (machinery only).

Label 0: 2012 SingleMu collision data; label 1: NanoAODv5 ttbar simulation. The task
is trivially separable and says nothing about physics; the tests check the machinery.
"""

from __future__ import annotations

import json

import pytest

from jetfm_coffea.finetune import load_labelled
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import pretrain
from jetfm_coffea.train.data import events_source

N_PER_DATASET = 200


@pytest.fixture(scope="session")
def pretrained_run(tmp_path_factory, singlemu):
    """A 2-step pretraining run of a very small encoder on 128 real events."""
    out = tmp_path_factory.mktemp("pretrained") / "run"
    source = events_source(singlemu, TokenConfig(), max_events=128)
    source.batch_size = 32
    cfg = {
        "model": {
            "size": "custom",
            "overrides": {"dim": 16, "heads": 2, "layers": 1, "pair_hidden": 8, "proj_dim": 8},
        },
        "objective": {"contrastive": "none", "masked_weight": 1.0},
        "train": {"steps": 2, "progress": False, "log_every": 1, "device": "cpu"},
    }
    pretrain(cfg, source, out, keep_model=False)
    return out


@pytest.fixture(scope="session")
def labelled_fileset(tmp_path_factory, singlemu, ttbar_v5):
    path = tmp_path_factory.mktemp("fileset") / "labelled.json"
    spec = {
        "collisions2012": {"files": {str(singlemu): "Events"}, "metadata": {"label": 0}},
        "ttbar": {"files": [str(ttbar_v5)], "metadata": {"label": 1, "weight": 2.0}},
    }
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="session")
def labelled(labelled_fileset):
    """LabelledEvents: 200 collision events (label 0) + 200 ttbar events (label 1)."""
    return load_labelled(
        fileset=labelled_fileset, token_config=TokenConfig(), max_events_per_dataset=N_PER_DATASET
    )


def tiny_task(**train):
    """A task config with a budget of a few steps."""
    loop = {
        "batch_size": 32,
        "max_epochs": 2,
        "min_steps": 0,
        "max_steps": 8,
        "patience": 3,
        "log_every": 1,
        "device": "cpu",  # the numbers compared below are CPU numbers, GPU visible or not
    }
    loop.update(train)
    return {
        "classes": {"collisions": 0, "ttbar": 1},
        "labels": [40, "all"],
        "seeds": [0, 1],
        "train": loop,
        "optim": {"lr": 3e-3, "warmup_steps": 0},
    }
