"""Augmentation pipeline configuration: validation, errors, hashing, YAML."""

from __future__ import annotations

import numpy as np
import pytest

from jetfm_coffea.augment import (
    AUGMENTATIONS,
    AugmentationPipeline,
    augment_objects,
    describe_augmentations,
    load_pipeline,
    register,
)
from jetfm_coffea.augment.config import step_models
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens import TokenConfig

YAML = """
augment:
  seed: 12345
  views: 2
  steps:
    - {name: rotate_phi}
    - {name: boost_z, max_rapidity: 0.5}
    - {name: boost_transverse, max_beta: 0.1}
    - {name: reflect_eta, probability: 0.5}
    - name: smear_energy
      widths: {Jet: {scale: 0.02, resolution: 0.03}, Muon: {scale: 0.002, resolution: 0.005}}
    - {name: drop_objects, probability: 0.1}
    - {name: mask_objects, probability: 0.15, apply_probability: 0.5}
"""


def test_yaml_round_trip_and_hash(tmp_path):
    path = tmp_path / "aug.yaml"
    path.write_text(YAML)
    pipe = load_pipeline(path)
    assert pipe.views == 2 and [s.name for s in pipe.steps][:2] == ["rotate_phi", "boost_z"]
    (tmp_path / "again.yaml").write_text(pipe.to_yaml())
    again = load_pipeline(tmp_path / "again.yaml")
    assert again == pipe and again.hash() == pipe.hash() and len(pipe.hash()) == 16
    assert AugmentationPipeline.model_validate(pipe.model_dump()).hash() == pipe.hash()
    assert load_pipeline({**pipe.model_dump(), "seed": 1}).hash() != pipe.hash()


def test_every_spec_has_an_implementation():
    assert all(AUGMENTATIONS[name].polar is not None for name in step_models())
    assert set(step_models()) >= {"rotate_phi", "boost_z", "smear_energy", "mask_objects"}


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ({"steps": [{"name": "boost"}]}, "unknown augmentation 'boost'"),
        ({"steps": [{"name": "boost_z", "max_rapidity": 9}]}, "less than or equal to 3"),
        ({"steps": [{"name": "boost_transverse", "max_beta": 1.0}]}, "max_beta"),
        ({"steps": [{"name": "rotate_phi", "angle": 1}]}, "Extra inputs"),
        ({"steps": [{"name": "drop_objects", "probability": 1.0}]}, "probability"),
        ({"steps": [{"name": "smear_energy", "widths": {"Jet": {"scale": -1}}}]}, "scale"),
        ({"views": 0}, "views"),
    ],
)
def test_bad_config_lists_names_and_ranges(bad, needle):
    with pytest.raises(ConfigError) as err:
        load_pipeline(bad)
    msg = str(err.value)
    assert needle in msg
    for name in step_models():
        assert name in msg
    assert "max_rapidity: 0 <= float <= 3" in msg and "max_beta: 0 <= float <= 0.5" in msg


def test_describe_lists_every_augmentation():
    text = describe_augmentations()
    assert all(name in text for name in step_models())


def test_misspelt_smearing_collection_is_a_config_error():
    n = 2
    obj = {
        "pt": np.full((n, 1), 30, np.float32), "eta": np.zeros((n, 1), np.float32),
        "phi": np.zeros((n, 1), np.float32), "mass": np.zeros((n, 1), np.float32),
        "type_id": np.ones((n, 1), np.float32), "mask": np.ones((n, 1), bool),
        "run": np.zeros(n, int), "luminosityBlock": np.zeros(n, int), "event": np.arange(n),
    }  # fmt: skip
    with pytest.raises(ConfigError, match="Jets"):
        augment_objects(obj, {"steps": [{"name": "smear_energy", "widths": {"Jets": {}}}]})
    with pytest.raises(ConfigError, match="event"):
        augment_objects({k: v for k, v in obj.items() if k != "event"}, {"steps": []})
    with pytest.raises(ConfigError, match="view"):
        augment_objects(obj, {"steps": []}, TokenConfig(), -1)


def test_registry_register_and_lookup():
    @register("_test_identity")
    def _identity(spec, ctx, state):
        return state

    try:
        assert AUGMENTATIONS["_test_identity"].implementation is _identity
        assert AUGMENTATIONS["_test_identity"].cartesian is None
        assert "_test_identity" in AUGMENTATIONS
    finally:
        AUGMENTATIONS.unregister("_test_identity")
    with pytest.raises(ConfigError, match="unknown augmentation 'nope'; registered: rotate_phi"):
        AUGMENTATIONS["nope"]
