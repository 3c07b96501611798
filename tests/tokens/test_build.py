"""The one token path on real CMS files and on tiny edge-case files."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from coffea.nanoevents import NanoEventsFactory

from jetfm_coffea.errors import MissingCollectionError
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.tokens import (
    CollectionSpec,
    EventTokens,
    TokenConfig,
    build_tokens,
)
from jetfm_coffea.tokens.build import MissingCollectionWarning


def events_of(path, mode="virtual", **kw):
    return NanoEventsFactory.from_root(
        {str(path): "Events"}, schemaclass=JetFMNanoAODSchema, mode=mode, **kw
    ).events()


@pytest.fixture(scope="module")
def singlemu_tokens(singlemu):
    return build_tokens(events_of(singlemu))


def test_shapes_and_ids(singlemu_tokens, singlemu):
    cfg = TokenConfig()
    tok = singlemu_tokens
    assert tok.tokens.shape == (10_000, cfg.n_tokens, len(cfg.features))
    assert tok.tokens.dtype == np.float32
    assert tok.mask.shape == (10_000, cfg.n_tokens)
    ids = uproot.open(singlemu)["Events"].arrays(["run", "luminosityBlock", "event"], library="np")
    np.testing.assert_array_equal(tok.event, ids["event"].astype(np.int64))
    np.testing.assert_array_equal(tok.run, ids["run"].astype(np.int64))
    # padding is exactly zero and tokens are packed to the front
    assert not tok.tokens[~tok.mask].any()
    counts = tok.counts
    assert np.array_equal(tok.mask, np.arange(cfg.n_tokens)[None, :] < counts[:, None])


def test_features_match_independent_computation(singlemu_tokens, singlemu):
    """Recompute every token of the first 200 events straight from the ROOT branches."""
    cfg = TokenConfig()
    arrays = uproot.open(singlemu)["Events"].arrays(entry_stop=200)
    names = cfg.feature_names
    for i in range(200):
        expected = []
        for spec in cfg.collections:
            if spec.kind == "met":
                pt, phi = float(arrays["MET_pt"][i]), float(arrays["MET_phi"][i])
                expected.append((pt, 0.0, phi, 0.0, 0.0, 0.0, spec.type_id))
                continue
            p = spec.name
            objs = []
            for j in range(len(arrays[f"{p}_pt"][i])):
                pt = float(arrays[f"{p}_pt"][i][j])
                eta = float(arrays[f"{p}_eta"][i][j])
                ok = pt > spec.min_pt and abs(eta) < spec.max_abs_eta
                for cut in spec.cuts:
                    ok = ok and bool(arrays[f"{p}_{cut.branch}"][i][j])
                if not ok:
                    continue
                mass = 0.0 if p == "Photon" else float(arrays[f"{p}_mass"][i][j])
                charge = float(arrays[f"{p}_charge"][i][j]) if spec.has_charge else 0.0
                btag = float(arrays["Jet_btag"][i][j]) if p == "Jet" else 0.0
                phi = float(arrays[f"{p}_phi"][i][j])
                objs.append((pt, eta, phi, mass, charge, btag, spec.type_id))
            objs.sort(key=lambda o: -o[0])
            expected.extend(objs[: spec.max_count])
        tok = singlemu_tokens
        assert tok.counts[i] == len(expected)
        for k, (pt, eta, phi, mass, charge, btag, type_id) in enumerate(expected):
            energy = np.hypot(pt * np.cosh(eta), mass)
            want = {
                "log_pt": np.log(pt),
                "eta": eta,
                "sin_phi": np.sin(phi),
                "cos_phi": np.cos(phi),
                "log_e": np.log(energy),
                "log_m": np.log1p(abs(mass)),  # real data has tiny negative masses
                "charge": charge,
                "btag": btag,
                "type_id": type_id,
            }
            got = dict(zip(names, tok.tokens[i, k], strict=True))
            for name in names:
                assert got[name] == pytest.approx(want[name], rel=2e-6, abs=2e-6), (i, k, name)


def test_eager_virtual_and_dask_identical(singlemu):
    eager = build_tokens(events_of(singlemu, "eager"))
    virtual = build_tokens(events_of(singlemu, "virtual"))
    lazy = build_tokens(events_of(singlemu, "dask"))
    computed = EventTokens.from_awkward(lazy.compute())
    for other in (virtual, computed):
        np.testing.assert_array_equal(eager.tokens, other.tokens)
        np.testing.assert_array_equal(eager.mask, other.mask)
        np.testing.assert_array_equal(eager.event, other.event)


def test_dask_reads_only_token_branches(singlemu):
    import dask_awkward as dak

    lazy = build_tokens(events_of(singlemu, "dask"))
    (columns,) = dak.necessary_columns(lazy).values()
    assert "Jet_puId" not in columns and "Tau_pt" not in columns and "PV_npvs" not in columns
    assert {"Jet_pt", "Muon_tightId", "MET_phi", "event"} <= set(columns)


def test_virtual_mode_access_log(singlemu):
    log: list[str] = []
    events = NanoEventsFactory.from_root(
        {str(singlemu): "Events"}, schemaclass=JetFMNanoAODSchema, mode="virtual", access_log=log
    ).events()
    build_tokens(events)
    touched = {entry.branch for entry in log}
    assert not any(c.startswith(("Tau_", "PV_", "HLT_")) for c in touched)
    assert "Jet_btag" in touched


def test_other_real_files(ttbar2015, ttbar_v5, nano_dimuon):
    for path in (ttbar2015, ttbar_v5, nano_dimuon):
        tok = build_tokens(events_of(path))
        assert len(tok) == uproot.open(path)["Events"].num_entries
        assert tok.counts.min() >= 1  # MET is always a token
        jets = tok.tokens[..., -1] == 1
        assert (tok.tokens[..., 0][jets] > np.log(20)).all()


def test_order_by_pt(singlemu):
    tok = build_tokens(events_of(singlemu), TokenConfig(order="pt"))
    pt = np.where(tok.mask, tok.objects.pt, -1)
    assert (np.diff(pt, axis=1) <= 0).all()


def test_max_tokens_clips(singlemu):
    tok = build_tokens(events_of(singlemu), TokenConfig(max_tokens=3))
    assert tok.tokens.shape[1] == 3 and tok.counts.max() == 3


def test_nan_and_inf_are_counted_and_masked(make_nanoaod):
    nan, inf = float("nan"), float("inf")
    path = make_nanoaod(
        {
            "Jet": {
                "pt": [[50.0, nan, 40.0], [30.0], []],
                "eta": [[0.1, 0.2, inf], [0.5], []],
                "phi": [[0.0, 1.0, 2.0], [0.3], []],
                "mass": [[5.0, 5.0, 5.0], [4.0], []],
            },
            "Muon": {
                "pt": [[], [25.0], []],
                "eta": [[], [1.0], []],
                "phi": [[], [nan], []],
                "mass": [[], [0.1], []],
                "charge": [[], [1.0], []],
                "tightId": [[], [True], []],
            },
            "Electron": {k: [[], [], []] for k in ("pt", "eta", "phi", "mass", "charge")},
            "Photon": {k: [[], [], []] for k in ("pt", "eta", "phi", "mass")},
            "MET_pt": [10.0, nan, 5.0],
            "MET_phi": [0.1, 0.2, 0.3],
        },
        3,
    )
    tok = build_tokens(events_of(path))
    np.testing.assert_array_equal(tok.n_nonfinite, [2, 2, 0])
    np.testing.assert_array_equal(tok.counts, [2, 1, 1])  # jet + MET, jet, MET
    assert np.isfinite(tok.tokens).all()


def test_empty_chunk_and_events_without_objects(make_nanoaod):
    empty = {k: [[]] for k in ("pt", "eta", "phi", "mass")}
    cols = {
        "Jet": empty,
        "Muon": {**empty, "charge": [[]], "tightId": [[]]},
        "Electron": {**empty, "charge": [[]]},
        "Photon": empty,
        "MET_pt": [float("nan")],
        "MET_phi": [0.0],
    }
    path = make_nanoaod(cols, 1)
    tok = build_tokens(events_of(path))
    assert len(tok) == 1 and tok.counts[0] == 0 and tok.n_nonfinite[0] == 1
    zero = build_tokens(events_of(path, entry_start=0, entry_stop=0))
    assert len(zero) == 0 and zero.tokens.shape == (0, TokenConfig().n_tokens, 9)


def test_missing_collection_names_collection_and_file(make_nanoaod):
    path = make_nanoaod(
        {"Jet": {k: [[1.0]] for k in ("pt", "eta", "phi", "mass")}, "MET_pt": [1], "MET_phi": [0]},
        1,
    )
    events = events_of(path)
    events.metadata["filename"] = str(path)
    with pytest.raises(MissingCollectionError, match=r"'Muon'.*tiny\.root"):
        build_tokens(events)
    cfg = TokenConfig(
        collections=[
            CollectionSpec(name="Jet", type_id=1, max_count=4),
            CollectionSpec(name="FatJet", type_id=6, max_count=2, optional=True),
        ]
    )
    with pytest.warns(MissingCollectionWarning, match="FatJet"):
        tok = build_tokens(events, cfg)
    assert tok.counts.tolist() == [1]  # the one jet; FatJet contributes nothing


def test_missing_cut_branch(singlemu):
    cfg = TokenConfig(
        collections=[
            CollectionSpec(
                name="Electron", type_id=3, max_count=2, cuts=[{"branch": "cutBased", "value": 2}]
            )
        ]
    )
    with pytest.raises(MissingCollectionError, match="Electron_cutBased"):
        build_tokens(events_of(singlemu), cfg)


def test_awkward_round_trip(singlemu_tokens):
    back = EventTokens.from_awkward(singlemu_tokens.to_awkward())
    np.testing.assert_array_equal(back.tokens, singlemu_tokens.tokens)
    arr = singlemu_tokens.to_awkward()  # one record per event, in event order
    assert len(arr) == len(singlemu_tokens)
    np.testing.assert_array_equal(ak.to_numpy(arr.event), singlemu_tokens.objects.event)


def test_unsorted_collections_are_sorted_and_ragged_equals_padded(make_nanoaod):
    """Objects not sorted by pT in the file still come out leading-first (the sort is
    skipped only when the file is sorted already); select_ragged is select_objects, ragged."""
    from jetfm_coffea.tokens import select_objects, select_ragged

    path = make_nanoaod(
        {
            "Jet": {
                "pt": [[30.0, 50.0, 40.0], [60.0, 70.0], []],
                "eta": [[0.1, 0.2, 0.3], [0.5, 0.6], []],
                "phi": [[0.0, 1.0, 2.0], [0.3, 0.4], []],
                "mass": [[5.0, 6.0, 7.0], [4.0, 3.0], []],
            },
            "Muon": {k: [[], [], []] for k in ("pt", "eta", "phi", "mass", "charge")}
            | {"tightId": [[], [], []]},
            "Electron": {k: [[], [], []] for k in ("pt", "eta", "phi", "mass", "charge")},
            "Photon": {k: [[], [], []] for k in ("pt", "eta", "phi", "mass")},
            "MET_pt": [10.0, 20.0, 5.0],
            "MET_phi": [0.1, 0.2, 0.3],
        },
        3,
    )
    ragged = select_ragged(events_of(path))
    assert ragged.offsets.tolist() == [0, 4, 7, 8]
    assert ragged.columns["pt"].tolist() == [50.0, 40.0, 30.0, 10.0, 70.0, 60.0, 20.0, 5.0]
    assert ragged.columns["mass"][:3].tolist() == [6.0, 7.0, 5.0]
    padded = select_objects(events_of(path))
    again = ragged.padded(TokenConfig().n_tokens)
    for name in ("pt", "eta", "phi", "mass", "charge", "btag", "type_id", "mask", "event"):
        np.testing.assert_array_equal(getattr(again, name), getattr(padded, name))
