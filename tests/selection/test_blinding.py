"""The blinding guard: declarative regions on the token objects, checked on real data."""

from __future__ import annotations

import re
import textwrap

import awkward as ak
import numpy as np
import pytest
from coffea.nanoevents import NanoEventsFactory

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.selection.blinding import (
    BlindingError,
    as_read_objects,
    load_blinding,
    region_masks,
)
from jetfm_coffea.tokens import TokenConfig, select_objects

from .conftest import Z_MUMU

CONFIG = TokenConfig()

REGIONS = {
    "regions": [
        {
            "name": "z_mumu",
            "on": "tokens",
            "all": [Z_MUMU],
        },
        {
            "name": "btag_or_hard_muon",
            "on": "tokens",
            "any": [
                {"objects": ["Jet"], "min_btag": 0.9, "min_count": 2},
                {"objects": ["Muon"], "min_pt": 60},
            ],
        },
        {
            "name": "nested",
            "on": "tokens",
            "all": [
                {"objects": ["Jet"], "min_pt": 30, "max_abs_eta": 2.4, "min_count": 3},
                {"any": [{"objects": ["Electron"]}, {"objects": ["Muon"], "charge": -1}]},
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def objects(singlemu):
    events = NanoEventsFactory.from_root(
        {str(singlemu): "Events"}, mode="eager", schemaclass=JetFMNanoAODSchema
    ).events()
    return select_objects(events, CONFIG), events


def muon_pairs_in_window(events, lo, hi, as_read: bool = False) -> np.ndarray:
    """Independent of the token code: tight muons as the token config selects them
    (pT > 5, |eta| < 2.4, tightId, 4 hardest) -- or every muon as read -- any
    opposite-charge pair in [lo, hi]."""
    mu = events.Muon
    if not as_read:
        mu = mu[(mu.pt > 5) & (abs(mu.eta) < 2.4) & (mu.tightId == 1)]
        mu = mu[ak.argsort(mu.pt, axis=1, ascending=False)][:, :4]
    a, b = ak.unzip(ak.combinations(mu, 2))
    mass = (a + b).mass
    ok = (a.charge * b.charge < 0) & (mass >= lo) & (mass <= hi)
    return ak.to_numpy(ak.any(ok, axis=1))


def test_pair_mass_window_matches_an_independent_computation(objects):
    obj, events = objects
    masks = region_masks(load_blinding(REGIONS, CONFIG), obj, CONFIG)
    expected = muon_pairs_in_window(events, 80, 100)
    assert expected.sum() > 100  # real Z -> mumu events in the file
    np.testing.assert_array_equal(masks["z_mumu"], expected)


def test_regions_are_evaluated_on_the_collections_as_read_by_default(objects):
    """The 2012 SingleMu Z window on every muon pair: 451 events, where the token
    objects (tight ID, pT > 5 GeV, |eta| < 2.4) see 377 and would leave 74 in shards."""
    obj, events = objects
    default = load_blinding({"regions": [{"name": "z", "all": [Z_MUMU]}]}, CONFIG)
    assert default.regions[0].on == "collections"
    with pytest.raises(ConfigError, match="collections as read"):
        region_masks(default, obj, CONFIG)  # the guard never falls back to the tokens
    as_read = as_read_objects(events, CONFIG)
    z = region_masks(default, obj, CONFIG, as_read)["z"]
    np.testing.assert_array_equal(z, muon_pairs_in_window(events, 80, 100, as_read=True))
    tokens = region_masks(load_blinding(REGIONS, CONFIG), obj, CONFIG)["z_mumu"]
    assert (int(z.sum()), int(tokens.sum())) == (451, 377)
    assert not (tokens & ~z).any()  # the safe side: a superset
    # the region's own cuts apply to the collections as read
    hard = {"regions": [{"name": "hard", "all": [{"objects": ["Muon"], "min_pt": 60}]}]}
    got = region_masks(load_blinding(hard, CONFIG), obj, CONFIG, as_read)["hard"]
    np.testing.assert_array_equal(got, ak.to_numpy(ak.any(events.Muon.pt > 60, axis=1)))


def test_regions_combine_as_declared(objects):
    obj, _ = objects
    masks = region_masks(load_blinding(REGIONS, CONFIG), obj, CONFIG)
    jet, muon, ele = (obj.mask & (obj.type_id == t) for t in (1, 2, 3))
    two_b = (jet & (obj.btag >= 0.9)).sum(1) >= 2
    hard_mu = (muon & (obj.pt > 60)).any(1)
    np.testing.assert_array_equal(masks["btag_or_hard_muon"], two_b | hard_mu)
    assert two_b.any() and hard_mu.any() and (two_b & ~hard_mu).any()
    three_jets = (jet & (obj.pt > 30) & (np.abs(obj.eta) < 2.4)).sum(1) >= 3
    lepton = ele.any(1) | (muon & (obj.charge == -1)).any(1)
    np.testing.assert_array_equal(masks["nested"], three_jets & lepton)
    assert 0 < masks["nested"].sum() < three_jets.sum()


def test_function_escape_hatch(objects, tmp_path, monkeypatch):
    (tmp_path / "my_regions.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def many_tokens(objects):
                return objects.mask.sum(axis=1) >= 8
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    obj, _ = objects
    busy = {"name": "busy", "on": "tokens", "function": "my_regions:many_tokens"}
    cfg = load_blinding({"regions": [busy]})
    mask = region_masks(cfg, obj, CONFIG)["busy"]
    np.testing.assert_array_equal(mask, obj.mask.sum(1) >= 8)
    assert cfg.summary()["regions"] == [busy]


def write(tmp_path, text):
    path = tmp_path / "blind.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_file_or_build_config_section(tmp_path):
    plain = write(tmp_path, "regions:\n  - name: a\n    all: [{objects: [Muon], min_count: 2}]\n")
    cfg = load_blinding(plain, CONFIG)
    assert cfg.regions[0].name == "a" and not cfg.apply_to_mc
    build = tmp_path / "build.yaml"
    build.write_text(
        "tokens: {}\nblinding:\n  apply_to_mc: true\n  regions:\n"
        "    - name: a\n      all: [{objects: [Muon], min_count: 2}]\n"
    )
    assert load_blinding(build, CONFIG).apply_to_mc
    build.write_text("tokens: {}\n")
    assert load_blinding(build, CONFIG) is None
    assert load_blinding(plain).hash() == cfg.hash()
    with pytest.raises(ConfigError, match="cannot read blinding config"):
        load_blinding(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            "regions:\n  - name: sr\n    all: [{objects: [Jet]}, {objects: [Bjet]}]\n",
            "regions[0] (sr).all[1].objects",
            "unknown object type 'Bjet'; the token config has Jet, Muon",
        ),
        (
            "regions:\n  - name: sr\n    all:\n"
            "      - {pair_mass: {objects: [Tau]}, min: 1, max: 2}\n",
            "regions[0] (sr).all[0].pair_mass.objects",
            "unknown object type 'Tau'",
        ),
        ("regions:\n  - name: sr\n    all: []\n", "regions[0]", "region 'sr' is empty"),
        (
            "regions:\n  - name: sr\n    all: [{any: []}]\n",
            "regions[0].all[0]",
            "'any' is empty",
        ),
        ("regions: []\n", "regions", "at least 1 item"),
        (
            "regions:\n  - name: sr\n    all: [{objects: [Jet], min_ct: 2}]\n",
            "regions[0].all[0].min_ct",
            "Extra inputs are not permitted",
        ),
        (
            "regions:\n  - name: sr\n    function: no_such_module_xyz:f\n",
            "regions[0] (sr).function",
            "cannot import no_such_module_xyz:f",
        ),
        (
            "regions:\n  - name: sr\n    all:\n"
            "      - {pair_mass: {objects: [Muon]}, min: 9, max: 3}\n",
            "regions[0].all[0]",
            "empty mass window",
        ),
    ],
)
def test_bad_blinding_yaml_names_file_and_key(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(BlindingError) as err:
        load_blinding(path, CONFIG)
    message = str(err.value)
    assert message.startswith(f"blinding config {path}, {key}"), message
    assert re.search(re.escape(reason), message), message
