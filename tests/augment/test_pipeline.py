"""The pipeline: seeding, chunking invariance, numpy == torch, acceptance, NaN, smearing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from coffea.nanoevents import NanoEventsFactory

from jetfm_coffea.augment import (
    AUGMENTATIONS,
    augment_objects,
    augment_tensors,
    augment_tokens,
    augment_views,
    load_pipeline,
)
from jetfm_coffea.augment.rng import StepRandom, event_step_keys
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.tokens import EventObjects, TokenConfig, select_objects
from jetfm_coffea.tokens.build import EventTokens

ALL_STEPS = {
    "seed": 7,
    "views": 3,
    "steps": [
        {"name": "rotate_phi"},
        {"name": "boost_z", "max_rapidity": 0.8},
        {"name": "boost_transverse", "max_beta": 0.2},
        {"name": "reflect_eta"},
        {"name": "smear_energy"},
        {"name": "drop_objects", "probability": 0.2},
        {"name": "mask_objects", "probability": 0.2, "apply_probability": 0.5},
    ],
}
CFG = TokenConfig()
FIELDS = ("pt", "eta", "phi", "mass", "charge", "btag", "type_id", "mask", "n_nonfinite")


def _events(path, start=None, stop=None):
    return NanoEventsFactory.from_root(
        {str(path): "Events"},
        schemaclass=JetFMNanoAODSchema,
        mode="eager",
        entry_start=start,
        entry_stop=stop,
    ).events()


@pytest.fixture(scope="module")
def objects(singlemu) -> EventObjects:
    return select_objects(_events(singlemu, 0, 3000), CFG)


def _concat(parts):
    return {f: np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS}


def _torch_batch(objects, dtype=torch.float64):
    batch = {
        k: torch.as_tensor(getattr(objects, k)).to(dtype)
        for k in ("pt", "eta", "phi", "mass", "charge", "btag", "type_id")
    }
    batch["mask"] = torch.as_tensor(objects.mask)
    for k in ("run", "luminosityBlock", "event"):
        batch[k] = torch.as_tensor(getattr(objects, k))
    return batch


def test_all_builtins_registered():
    assert set(AUGMENTATIONS) >= {
        "rotate_phi", "boost_z", "boost_transverse", "reflect_eta", "smear_energy",
        "drop_objects", "mask_objects",
    }  # fmt: skip


def test_counter_rng_is_vectorised_uniform_and_id_driven():
    n = 200_000
    keys = event_step_keys(1, np.zeros(n, int), np.zeros(n, int), np.arange(n), 0, 0)
    rand = StepRandom(keys, 4)
    u, z = rand.uniform(1), rand.normal(1, per_object=True)
    assert u.shape == (n,) and z.shape == (n, 4)
    assert abs(u.mean() - 0.5) < 0.005 and abs(z.std() - 1.0) < 0.005
    ev, slot = np.array([5, 9]), np.array([3, 0])
    assert np.array_equal(rand.uniform_at(2, ev, slot), rand.uniform(2, True)[ev, slot])
    # different view / step / seed -> independent numbers
    for args in [(1, 1, 0), (1, 0, 1), (2, 0, 0)]:
        other = event_step_keys(
            args[0], np.zeros(n, int), np.zeros(n, int), np.arange(n), *args[1:]
        )
        assert abs(np.corrcoef(StepRandom(other, 4).uniform(1), u)[0, 1]) < 0.01


def test_chunking_the_file_gives_bit_identical_views(singlemu, objects):
    """Same events read as one chunk or as uneven chunks -> identical views, all K."""
    pipeline = load_pipeline(ALL_STEPS)
    parts = [
        select_objects(_events(singlemu, a, b), CFG) for a, b in [(0, 1), (1, 1234), (1234, 3000)]
    ]
    for view in range(pipeline.views):
        whole = augment_objects(objects, pipeline, CFG, view)
        chunked = _concat([augment_objects(p, pipeline, CFG, view) for p in parts])
        for f in FIELDS:
            assert np.array_equal(getattr(whole, f), chunked[f]), f
    # and in a different event order (another executor's partitioning)
    perm = np.random.default_rng(0).permutation(len(objects))
    shuffled = EventObjects(**{f: getattr(objects, f)[perm] for f in objects.__dataclass_fields__})
    a = augment_objects(objects, pipeline, CFG, 1)
    b = augment_objects(shuffled, pipeline, CFG, 1)
    assert np.array_equal(a.pt[perm], b.pt) and np.array_equal(a.mask[perm], b.mask)


def test_views_differ_and_are_reproducible(objects):
    views = augment_views(objects, ALL_STEPS, CFG)
    again = augment_views(objects, ALL_STEPS, CFG)
    assert len(views) == 3
    for v, w in zip(views, again, strict=True):
        assert np.array_equal(v.tokens, w.tokens) and np.array_equal(v.mask, w.mask)
        assert np.isfinite(v.tokens).all() and v.tokens.shape == (len(objects), CFG.n_tokens, 9)
    assert not np.array_equal(views[0].tokens, views[1].tokens)
    other = augment_views(objects, {**ALL_STEPS, "seed": 8}, CFG)
    assert not np.array_equal(views[0].tokens, other[0].tokens)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_torch_loader_path_matches_numpy(objects, dtype):
    """Same draws on both backends: float64 tensors agree to float32 rounding, float32
    tensors to 1e-3 relative (acceptance edge cases may flip a handful of objects)."""
    pipeline = load_pipeline(ALL_STEPS)
    ref = augment_objects(objects, pipeline, CFG, 2)
    ref_tokens = augment_views(objects, pipeline, CFG)[2]
    out = augment_tensors(_torch_batch(objects, dtype), pipeline, CFG, 2)
    mask = out["mask"].numpy()
    assert out["tokens"].shape == (len(objects), CFG.n_tokens, 9)
    if dtype == torch.float64:
        assert np.array_equal(mask, ref.mask)
        for k in ("pt", "eta", "phi", "mass"):
            assert np.allclose(out[k].numpy(), ref_tokens.objects.__dict__[k], rtol=1e-6, atol=1e-5)
        assert np.allclose(out["tokens"].numpy(), ref_tokens.tokens, rtol=1e-5, atol=1e-5)
    else:
        assert (mask != ref.mask).sum() <= 5
        both = mask & ref.mask
        assert np.allclose(out["pt"].numpy()[both], ref.pt[both], rtol=1e-3)
        dphi = (out["phi"].numpy()[both] - ref.phi[both] + math.pi) % (2 * math.pi) - math.pi
        assert np.abs(dphi).max() < 1e-3


def test_acceptance_is_reapplied_per_type_and_met_exempt():
    n, t = 4, 3
    obj = {
        "pt": np.array([[30.0, 6.0, 40.0]] * n, np.float32),
        "eta": np.array([[2.3, 0.0, 0.0]] * n, np.float32),
        "phi": np.zeros((n, t), np.float32),
        "mass": np.array([[0.1, 0.1, 0.0]] * n, np.float32),
        "type_id": np.array([[2.0, 2.0, 5.0]] * n, np.float32),
        "mask": np.ones((n, t), bool),
        "run": np.ones(n, int), "luminosityBlock": np.ones(n, int), "event": np.arange(n),
    }  # fmt: skip
    # a rapidity shift of exactly +0.5: the eta=2.3 muon leaves |eta| < 2.4, MET stays
    out = augment_objects(obj, {"steps": [{"name": "boost_z", "max_rapidity": 0.5}]}, CFG, 0)
    noacc = augment_objects(obj, {"steps": [{"name": "boost_z", "max_rapidity": 0.5}]}, CFG, 0,
                            acceptance=False)  # fmt: skip
    assert np.array_equal(out.mask[:, 0], np.abs(noacc.eta[:, 0]) < 2.4)
    assert out.mask[:, 2].all() and np.array_equal(out.eta[:, 2], obj["eta"][:, 2])
    assert np.array_equal(out.pt[:, 2], obj["pt"][:, 2])
    # smearing a 6 GeV muon (min_pt 5) down by 30% removes it
    smear = {"steps": [{"name": "smear_energy", "widths": {"Muon": {"scale": 0.2}}}]}
    out = augment_objects({**obj, "event": np.arange(n) + 100}, smear, CFG, 0)
    noacc = augment_objects({**obj, "event": np.arange(n) + 100}, smear, CFG, 0, acceptance=False)
    assert np.array_equal(out.mask[:, 1], noacc.pt[:, 1] > 5.0)
    assert np.all(out.pt[~out.mask] == 0)


def test_nonfinite_four_vectors_are_rejected_counted_never_propagated(objects):
    obj = {f: np.array(getattr(objects, f)) for f in objects.__dataclass_fields__}
    rows, cols = np.nonzero(obj["mask"])
    pick = np.arange(0, len(rows), 97)
    obj["eta"][rows[pick], cols[pick]] = np.nan
    obj["pt"][rows[pick[:3]], cols[pick[:3]]] = np.inf
    out = augment_objects(obj, ALL_STEPS, CFG, 0)
    assert out.n_nonfinite.sum() == len(pick)
    assert np.array_equal(out.n_nonfinite, np.bincount(rows[pick], minlength=len(objects)))
    for f in ("pt", "eta", "phi", "mass"):
        assert np.isfinite(getattr(out, f)).all()
    tens = augment_tensors({**_torch_batch(objects), "eta": torch.as_tensor(obj["eta"])},
                           ALL_STEPS, CFG, 0)  # fmt: skip
    assert int(tens["n_nonfinite"].sum()) == len(pick)
    assert torch.isfinite(tens["tokens"]).all()


def test_drop_and_mask_never_remove_every_object(objects):
    drop = augment_objects(objects, {"steps": [{"name": "drop_objects", "probability": 0.9}]}, CFG)
    mask = augment_objects(objects, {"steps": [{"name": "mask_objects", "probability": 0.9}]}, CFG)
    met = objects.type_id == 5
    cand = objects.mask & ~met
    had = cand.any(1)
    for out in (drop, mask):
        kept = out.mask & (out.type_id != 5)
        assert kept[had].any(1).all()  # never all of them
        assert ((out.mask & (out.type_id == 5)).sum(1) == (objects.mask & met).sum(1)).all()
        many = cand.sum(1) >= 6  # where the rescue hardly matters, ~10% survive
        assert 0.05 < kept[many].sum() / cand[many].sum() < 0.2
    # drop closes the gaps (valid slots first, order kept), mask keeps positions
    n_valid = drop.mask.sum(1)
    assert np.array_equal(drop.mask, np.arange(CFG.n_tokens)[None, :] < n_valid[:, None])
    assert not (mask.mask & ~objects.mask).any()
    assert np.array_equal(mask.pt[mask.mask], objects.pt[mask.mask])


def _wrap(x):
    return (x + math.pi) % (2 * math.pi) - math.pi


def test_met_conventions(objects):
    met = (objects.type_id == 5) & objects.mask
    lead = CFG.collections[0].max_count  # first muon slot (after the jets)
    i = np.flatnonzero(met.any(1) & objects.mask[:, lead])
    jm = met[i].argmax(1)
    # rotate_phi: MET rotates with the event (its angle to the leading muon is unchanged)
    rot = augment_objects(objects, {"steps": [{"name": "rotate_phi"}]}, CFG)
    rel0 = objects.phi[i, jm] - objects.phi[i, lead]
    rel1 = rot.phi[i, jm] - rot.phi[i, lead]
    assert np.abs(_wrap(rel1 - rel0)).max() < 1e-5
    # boost_z: MET unchanged
    bz = augment_objects(
        objects, {"steps": [{"name": "boost_z", "max_rapidity": 2}]}, CFG, acceptance=False
    )
    assert np.array_equal(bz.pt[met], objects.pt[met])
    assert np.array_equal(bz.phi[met], objects.phi[met])
    # boost_transverse: MET boosted as a massless pz=0 vector, stays transverse
    pipe = {"seed": 3, "steps": [{"name": "boost_transverse", "max_beta": 0.3}]}
    bt = augment_objects(objects, pipe, CFG, acceptance=False)
    assert np.all(bt.eta[met] == 0) and np.all(bt.mass[met] == 0)
    mu = augment_objects(
        {**objects.__dict__, "type_id": np.where(met, 2.0, objects.type_id).astype(np.float32)},
        pipe,
        CFG,
        acceptance=False,
    )  # fmt: skip  (the same vector, treated as a massless central muon)
    assert np.allclose(bt.pt[met], mu.pt[met], rtol=1e-6)
    assert np.allclose(bt.phi[met], mu.phi[met], atol=1e-6)


def test_smearing_widths_and_met_propagation(objects):
    zero = {"steps": [{"name": "smear_energy", "widths": {"Jet": {}, "Muon": {}}}]}
    same = augment_objects(objects, zero, CFG, acceptance=False)
    assert np.array_equal(same.pt, objects.pt) and np.array_equal(same.mass, objects.mass)
    sigma = 0.05
    wide = {"steps": [{"name": "smear_energy", "widths": {"Jet": {"resolution": sigma}},
                       "propagate_met": True}]}  # fmt: skip
    out = augment_objects(objects, wide, CFG, acceptance=False)
    jets = (objects.type_id == 1) & objects.mask
    from jetfm_coffea.tokens.features import energy

    ratio = (
        energy(np, out.pt, out.eta, out.mass)[jets]
        / energy(np, objects.pt, objects.eta, objects.mass)[jets]
    )
    assert jets.sum() > 2000
    assert abs(np.std(ratio - 1.0) - sigma) < 0.1 * sigma and abs(np.mean(ratio - 1)) < 0.005
    assert np.array_equal(out.mass[jets], objects.mass[jets])  # mass-preserving default

    # type-1 MET: vector sum of all tokens (visible + MET) is unchanged by smearing
    def total(o):
        px = np.where(o.mask, o.pt * np.cos(o.phi), 0).sum(1)
        py = np.where(o.mask, o.pt * np.sin(o.phi), 0).sum(1)
        return px, py

    has_met = ((objects.type_id == 5) & objects.mask).any(1)
    for a, b in zip(total(objects), total(out), strict=True):
        assert np.allclose(a[has_met], b[has_met], atol=2e-3)


def test_apply_probability_zero_is_identity(objects):
    steps = [{**s, "apply_probability": 0.0} for s in ALL_STEPS["steps"]]
    out = augment_objects(objects, {"steps": steps}, CFG)
    for f in ("pt", "eta", "phi", "mass", "mask"):
        assert np.array_equal(getattr(out, f), getattr(objects, f)), f


@pytest.mark.parametrize("view", [0, 1])
def test_fused_cartesian_path_matches_polar_reference(objects, view):
    """The fused Cartesian steps (default) equal the polar reference implementations run
    step by step (same draws): same kept objects, kinematics to float32 rounding."""
    pipeline = load_pipeline(ALL_STEPS)
    fused = augment_objects(objects, pipeline, CFG, view, acceptance=False)
    ref = augment_objects(objects, pipeline, CFG, view, acceptance=False, fused=False)
    assert np.array_equal(fused.mask, ref.mask)
    m = ref.mask
    for k in ("pt", "eta", "mass"):
        assert np.allclose(getattr(fused, k)[m], getattr(ref, k)[m], rtol=2e-6, atol=1e-5), k
    assert np.abs(_wrap(fused.phi[m] - ref.phi[m])).max() < 1e-5


def test_augment_tokens_matches_reference_features(objects):
    """Trig-free features of the fused path == compute_features on the padded objects."""
    pipeline = load_pipeline(ALL_STEPS)
    tokens = augment_tokens(objects, pipeline, CFG, 1)
    ref = EventTokens.from_objects(augment_objects(objects, pipeline, CFG, 1), CFG)
    assert np.array_equal(tokens.mask, ref.mask)
    assert np.array_equal(tokens.n_nonfinite, ref.n_nonfinite)
    assert np.allclose(tokens.tokens, ref.tokens, rtol=1e-5, atol=1e-5)
    for k in ("pt", "eta", "phi", "mass", "type_id"):
        assert np.array_equal(getattr(tokens.objects, k), getattr(ref.objects, k)), k
