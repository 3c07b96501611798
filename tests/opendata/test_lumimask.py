"""Golden-JSON masks on real 2012 collision data, checked against an independent computation."""

from __future__ import annotations

import json
import re

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest
import uproot
from coffea.lumi_tools import LumiMask
from coffea.nanoevents import NanoEventsFactory

from jetfm_coffea.errors import MissingCollectionError
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.opendata import (
    UnknownLumiMaskError,
    apply_lumimask,
    golden_json_path,
    load_catalogue,
    load_lumimask,
    lumimask_for,
    lumimask_provenance,
)

GOLDEN_2012 = "Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON.txt"
GOLDEN_2016 = "Cert_271036-284044_13TeV_Legacy2016_Collisions16_JSON.txt"


def certified(path, runs, lumis) -> np.ndarray:
    """Independent of coffea: a (run, lumi) pair is certified if a [first, last] range holds it."""
    ranges = json.loads(path.read_text())
    pairs = zip(runs, lumis, strict=True)
    return np.array(
        [any(a <= ls <= b for a, b in ranges.get(str(r), ())) for r, ls in pairs], dtype=bool
    )


@pytest.fixture(scope="module")
def run_lumi(singlemu):
    with uproot.open(singlemu) as f:
        arrays = f["Events"].arrays(["run", "luminosityBlock", "event"], library="np")
    return arrays["run"], arrays["luminosityBlock"], arrays["event"]


@pytest.fixture(scope="module")
def partial_golden(tmp_path_factory, run_lumi):
    """A golden JSON certifying only part of the test file's luminosity sections."""
    runs, lumis, _ = run_lumi
    assert set(np.unique(runs)) == {194711, 195916}
    path = tmp_path_factory.mktemp("golden") / "partial.json"
    path.write_text(json.dumps({"194711": [[1, 300], [400, 619]], "195916": [[40, 50]]}))
    keep = certified(path, runs, lumis)
    assert 0 < keep.sum() < len(keep)  # the test is only meaningful if both kinds occur
    return path


def events(path, mode):
    return NanoEventsFactory.from_root(
        {str(path): "Events"}, mode=mode, schemaclass=JetFMNanoAODSchema
    ).events()


def test_real_2012_data_with_the_2012_golden_json(singlemu, run_lumi):
    runs, lumis, _ = run_lumi
    expected = certified(golden_json_path(GOLDEN_2012), runs, lumis)
    ev = events(singlemu, "eager")
    kept = apply_lumimask(ev, GOLDEN_2012)
    assert np.array_equal(ak.to_numpy(lumimask_for(ev, GOLDEN_2012)), expected)
    assert len(kept) == expected.sum() == 10000  # these runs are fully certified
    # the 2016 golden JSON certifies none of the 2012 runs
    assert len(apply_lumimask(ev, GOLDEN_2016)) == 0


@pytest.mark.parametrize("mode", ["eager", "virtual", "dask"])
def test_mask_keeps_exactly_the_certified_events(singlemu, run_lumi, partial_golden, mode):
    runs, lumis, evno = run_lumi
    expected = certified(partial_golden, runs, lumis)
    kept = apply_lumimask(events(singlemu, mode), partial_golden)
    if mode == "dask":
        assert isinstance(kept, dak.Array)
        kept = kept.compute(scheduler="sync")
    assert len(kept) == expected.sum()
    assert np.array_equal(ak.to_numpy(kept.event), evno[expected])
    assert np.array_equal(ak.to_numpy(kept.luminosityBlock), lumis[expected])


def test_plain_awkward_records(partial_golden, run_lumi):
    runs, lumis, _ = run_lumi
    arr = ak.zip({"run": runs, "luminosityBlock": lumis}, depth_limit=1)
    assert np.array_equal(
        ak.to_numpy(lumimask_for(arr, partial_golden)), certified(partial_golden, runs, lumis)
    )


def test_2018_events_are_not_certified_by_the_2012_json(nano_dimuon):
    with uproot.open(nano_dimuon) as f:
        ev = f["Events"].arrays(["run", "luminosityBlock"])
    assert set(ak.to_numpy(ev.run)) == {315267}
    assert len(apply_lumimask(ev, GOLDEN_2012)) == 0


def test_simulation_passes_through_unchanged(ttbar2015):
    ev = events(ttbar2015, "virtual")
    assert apply_lumimask(ev, None) is ev
    assert lumimask_provenance(None) is None


def test_provenance_names_the_mask_and_its_sha256(partial_golden):
    info = load_catalogue().lumimasks[GOLDEN_2012]
    assert lumimask_provenance(GOLDEN_2012) == {
        "golden_json": GOLDEN_2012,
        "sha256": info.sha256,
        "record_id": 1002,
    }
    copy = partial_golden.with_name("my_copy.txt")
    copy.write_bytes(golden_json_path(GOLDEN_2012).read_bytes())
    assert lumimask_provenance(copy) == lumimask_provenance(GOLDEN_2012)
    user = lumimask_provenance(partial_golden)
    assert user["golden_json"] == "partial.json" and user["record_id"] is None
    assert len(user["sha256"]) == 64


def test_load_lumimask_is_a_cached_coffea_lumimask():
    mask = load_lumimask(GOLDEN_2012)
    assert isinstance(mask, LumiMask)
    assert load_lumimask(GOLDEN_2012) is mask


def test_events_without_run_lumi_are_a_clear_error(dimuon100k):
    with uproot.open(dimuon100k) as f:  # muons only, like record 12341
        ev = f["Events"].arrays(["nMuon"], entry_stop=10)
    with pytest.raises(MissingCollectionError, match="missing branches: run, luminosityBlock"):
        apply_lumimask(ev, GOLDEN_2012)


def test_unknown_golden_json_lists_the_shipped_ones():
    with pytest.raises(
        UnknownLumiMaskError,
        match=re.escape(f"did you mean '{GOLDEN_2012}'"),
    ):
        golden_json_path("Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON")
    with pytest.raises(UnknownLumiMaskError, match="give a file path or one of the shipped"):
        golden_json_path("golden-2012.json")
