"""Fixtures of the selection tests: the real 2012 SingleMu file and golden JSONs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
from coffea.lumi_tools import LumiMask

from jetfm_coffea.opendata import golden_json_path

GOLDEN_2012 = "Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON.txt"
GOLDEN_2016 = "Cert_271036-284044_13TeV_Legacy2016_Collisions16_JSON.txt"
#: The blinding condition the tests use most: an opposite-charge dimuon mass in 80-100 GeV.
Z_MUMU = {"pair_mass": {"objects": ["Muon"]}, "min": 80, "max": 100, "opposite_charge": True}


@pytest.fixture(scope="session")
def ids(singlemu) -> dict[str, np.ndarray]:
    """run, luminosityBlock, event of the 10k SingleMu events, read with uproot."""
    with uproot.open(singlemu) as f:
        return f["Events"].arrays(["run", "luminosityBlock", "event"], library="np")


@pytest.fixture(scope="session")
def partial_golden(tmp_path_factory, ids):
    """A golden JSON certifying part of the file's sections (both kinds occur)."""
    path = tmp_path_factory.mktemp("golden") / "partial.json"
    path.write_text(json.dumps({"194711": [[1, 300], [400, 619]], "195916": [[40, 50]]}))
    keep = independent_keep(path, ids)
    assert 0 < keep.sum() < len(keep)
    return path


def independent_keep(golden, ids) -> np.ndarray:
    """coffea's LumiMask called directly on the file's run/luminosityBlock."""
    path = golden_json_path(golden)
    runs, lumis = (ids[k].astype(np.uint32) for k in ("run", "luminosityBlock"))
    return np.asarray(LumiMask(str(path))(runs, lumis), bool)
