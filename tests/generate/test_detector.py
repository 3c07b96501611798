"""The detector is stage functions over one particle record, its numbers in DetectorConfig.

The split of ``simulate`` into stages (and its inline thresholds into
:class:`DetectorConfig`) kept the output bit for bit: the digest below is the one of the
466-line ``simulate`` it replaced, on the same Pythia events and detector seed.
"""

from __future__ import annotations

import dataclasses
import hashlib

import awkward as ak
import numpy as np
import pytest

from jetfm_coffea.generate.detector import DetectorConfig, particle_record, simulate
from jetfm_coffea.generate.processes import PROCESSES, pythia_settings
from jetfm_coffea.generate.run import make_pythia

#: sha256 of every branch of ``simulate`` (ttbar, 13 TeV, Pythia seed 11, 60 events,
#: PFCands on, detector rng seed 123), computed with the implementation before the split.
DIGEST_BEFORE_SPLIT = "71c3d0bd8d3a587e85a5ee7bfa1942340c7cbff2408b248ba04cb64912e72be3"


def _digest(branches: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(branches):
        value = branches[name]
        h.update(name.encode())
        if isinstance(value, np.ndarray):
            h.update(str(value.dtype).encode())
            h.update(np.ascontiguousarray(value).tobytes())
            continue
        for field in value.fields:
            flat = ak.to_numpy(ak.flatten(value[field]))
            h.update(field.encode())
            h.update(str(flat.dtype).encode())
            h.update(flat.tobytes())
            h.update(ak.to_numpy(ak.num(value[field])).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def ttbar_batch():
    pythia = make_pythia(pythia_settings(PROCESSES["ttbar"], 13000, 11))
    return pythia.nextBatch(60)


def test_outputs_are_bit_identical_to_the_unsplit_detector(ttbar_batch):
    branches = simulate(ttbar_batch, np.random.default_rng(123), DetectorConfig(pfcands=True))
    assert _digest(branches) == DIGEST_BEFORE_SPLIT


def test_the_thresholds_come_from_the_config(ttbar_batch):
    base = simulate(ttbar_batch, np.random.default_rng(5), DetectorConfig(pfcands=True))
    tighter = DetectorConfig(pfcands=True, cand_track_pt_min=2.0, electron_eff_barrel=0.0)
    other = simulate(ttbar_batch, np.random.default_rng(5), tighter)
    assert ak.sum(ak.num(other["PFCands"])) < ak.sum(ak.num(base["PFCands"]))
    electrons = other["Electron"]
    barrel_high_pt = (abs(electrons.eta) < 1.479) & (electrons.pt > 12)  # smearing margin
    assert not ak.any(barrel_high_pt)


def test_particle_record_is_flat_and_consistent(ttbar_batch):
    p = particle_record(ttbar_batch)
    assert p.n == 60 and len(p.evt) == len(p.pid) == int(p.off[-1])
    assert (p.local >= 0).all() and (p.local[p.off[:-1]] == 0).all()
    assert p.final.sum() > 0 and (p.charge[~p.final] == 0).all()
    fields = {f.name for f in dataclasses.fields(DetectorConfig)}
    assert {"cand_hf_e_min", "muon_iso_r", "electron_id_probs", "gen_photon_pt_min"} <= fields
