"""Fixtures of the shard tests: small real-data stores built once per session."""

from __future__ import annotations

import pytest

from jetfm_coffea.cluster import Execution
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.tokens import TokenConfig

AUGMENT = {
    "views": 2,
    "seed": 7,
    "steps": [{"name": "rotate_phi"}, {"name": "boost_z"}, {"name": "drop_objects"}],
}


@pytest.fixture(scope="session")
def token_config() -> TokenConfig:
    return TokenConfig()


@pytest.fixture(scope="session")
def singlemu_store(tmp_path_factory, singlemu, token_config):
    """10,000 real SingleMu events in 4 shards of 2,500, with 2 augmented views, label 3."""
    out = tmp_path_factory.mktemp("stores") / "singlemu"
    fileset = {"singlemu": {"files": {str(singlemu): "Events"}, "metadata": {"label": 3}}}
    summary = build_store(
        fileset,
        out,
        execution=Execution(executor="iterative", chunksize=2500),
        token_config=token_config,
        augmentation=AUGMENT,
    )
    assert summary.events_written == 10_000
    return out


@pytest.fixture(scope="session")
def plain_store(tmp_path_factory, singlemu, token_config):
    """The same events without views or labels, in 5 shards (loader contract defaults)."""
    out = tmp_path_factory.mktemp("stores") / "plain"
    build_store(
        singlemu,
        out,
        execution=Execution(executor="iterative", chunksize=2000),
        token_config=token_config,
    )
    return out
