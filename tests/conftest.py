"""Shared fixtures: real CMS files from the shared test data, tiny NanoAOD files written here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jetfm_coffea._resources import testdata_dir

CMS = "cms"


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_net = pytest.mark.skip(reason="needs internet access (set JETFM_NETWORK_TESTS=1)")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "network" in item.keywords and not os.environ.get("JETFM_NETWORK_TESTS"):
            item.add_marker(skip_net)


@pytest.fixture(scope="session")
def cms_dir() -> Path:
    path = testdata_dir() / CMS
    if not path.is_dir():
        pytest.fail(f"shared CMS test data not found at {path}; set JETFM_TESTDATA")
    return path


@pytest.fixture(scope="session")
def singlemu(cms_dir) -> Path:
    """10,000 real 2012 SingleMu collision events, slim NanoAOD."""
    return cms_dir / "Run2012B_SingleMu_10000.root"


@pytest.fixture(scope="session")
def ttbar2015(cms_dir) -> Path:
    """200 events of 2015 ttbar simulation, full NanoAOD."""
    return cms_dir / "nanoAOD_2015_CMS_Open_Data_ttbar.root"


@pytest.fixture(scope="session")
def ttbar_v5(cms_dir) -> Path:
    """1,000 events of ttbar simulation, NanoAODv5 (has FatJet)."""
    return cms_dir / "NanoAODv5_ttbar_1000.root"


@pytest.fixture(scope="session")
def nano_dimuon(cms_dir) -> Path:
    """40 real collision events, full NanoAOD."""
    return cms_dir / "nano_dimuon.root"


@pytest.fixture(scope="session")
def dimuon100k(cms_dir) -> Path:
    """100,000 real 2012 DoubleMuParked events, muons only."""
    return cms_dir / "Run2012_DoubleMuParked_muons_100k.root"
