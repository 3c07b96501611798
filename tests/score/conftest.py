"""Classifier runs (random weights, real layout) and real CMS events for the score tests."""

from __future__ import annotations

import warnings

import pytest

from jetfm_coffea.finetune.testing import make_classifier_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny encoder + 2-class classification head, classes (background, signal)."""
    return make_classifier_run(tmp_path_factory.mktemp("runs") / "tiny", "tiny", seed=1)


@pytest.fixture(scope="session")
def fold_runs(tmp_path_factory):
    """Two k-fold models: [0] scores even event numbers, [1] odd ones."""
    base = tmp_path_factory.mktemp("folds")
    return [make_classifier_run(base / f"fold{i}", "tiny", seed=10 + i) for i in range(2)]


def open_events(path, mode="virtual", **kwargs):
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return NanoEventsFactory.from_root(
            {str(path): "Events"}, schemaclass=JetFMNanoAODSchema, mode=mode, **kwargs
        ).events()


@pytest.fixture(scope="session")
def ttbar_events(ttbar2015):
    """200 simulated ttbar events (full NanoAOD), virtual mode."""
    return open_events(ttbar2015)


@pytest.fixture(scope="session")
def singlemu_events(singlemu):
    """The first 2000 real 2012 SingleMu events, virtual mode."""
    return open_events(singlemu)[:2000]
