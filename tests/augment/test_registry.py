"""A third-party augmentation registered in this file: config, pipeline, CLI, fresh views.

Everything a new augmentation needs is below (its parameter model and its
implementation); the built-ins are registered the same way.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from pydantic import Field

from jetfm_coffea.augment import (
    AUGMENTATIONS,
    AugmentationStep,
    StepContext,
    augment_objects,
    augment_tensors,
    describe_augmentations,
    load_pipeline,
    register,
)
from jetfm_coffea.augment.check import muon_objects, muon_token_config, objects_dimuon_mass
from jetfm_coffea.backend import where
from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import TensorEventDataset, load_pretrain_config, pretrain

CALLS: dict[str, int] = {}  # backend name -> calls of the implementation


class ScaleEnergy(AugmentationStep):
    """Global energy scale: the four-momentum of every visible object times ``factor``."""

    name: Literal["scale_energy"] = "scale_energy"
    factor: float = Field(1.02, gt=0.5, lt=2.0)


@register("scale_energy", params=ScaleEnergy)
def _scale_energy(spec: ScaleEnergy, ctx: StepContext, state: dict[str, Any]) -> dict[str, Any]:
    CALLS[ctx.lib.__name__] = CALLS.get(ctx.lib.__name__, 0) + 1
    f = where(ctx.lib, ctx.is_met, 1.0, ctx.asarray(np.asarray(spec.factor)))
    return {**state, "pt": state["pt"] * f, "mass": state["mass"] * f}


PIPELINE = {"seed": 5, "views": 2, "steps": [{"name": "scale_energy", "factor": 1.25}]}


def test_the_registered_params_are_the_schema(tmp_path):
    pipe = load_pipeline(PIPELINE)
    assert isinstance(pipe.steps[0], ScaleEnergy) and pipe.steps[0].factor == 1.25
    assert AUGMENTATIONS["scale_energy"].params is ScaleEnergy
    (tmp_path / "aug.yaml").write_text(pipe.to_yaml())
    again = load_pipeline(tmp_path / "aug.yaml")
    assert again == pipe and again.hash() == pipe.hash()
    assert "scale_energy: apply_probability" in describe_augmentations()
    assert "factor: 0.5 < float < 2" in describe_augmentations()
    with pytest.raises(ConfigError, match=r"step 0 \(scale_energy\): factor: Input should be"):
        load_pipeline({"steps": [{"name": "scale_energy", "factor": 3}]})
    with pytest.raises(ConfigError, match="unknown augmentation 'scale_energi'") as err:
        load_pipeline({"steps": [{"name": "scale_energi"}]})
    assert "rotate_phi" in str(err.value) and "scale_energy" in str(err.value)


def test_registration_checks_the_params_model():
    class Named(AugmentationStep):
        name: Literal["other"] = "other"

    with pytest.raises(ConfigError, match="params model is named 'other'"):
        register("mine", params=Named)
    with pytest.raises(ConfigError, match="must subclass AugmentationStep"):
        register("mine", params=dict)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown augmentation 'mine'"):
        AUGMENTATIONS["mine"]


def test_it_runs_in_the_pipeline_on_numpy_and_torch(dimuon100k):
    objects = muon_objects(dimuon100k, 0, 3000)
    after = augment_objects(objects, PIPELINE, muon_token_config(), acceptance=False)
    m0, m1 = objects_dimuon_mass(objects), objects_dimuon_mass(after)
    pair = np.isfinite(m0)
    np.testing.assert_allclose(m1[pair], 1.25 * m0[pair], rtol=1e-5)
    # the torch (training) side runs the same implementation, to the same numbers
    before = CALLS.get("torch", 0)
    batch = {k: torch.as_tensor(v) for k, v in objects.items()}
    out = augment_tensors(batch, PIPELINE, muon_token_config(), 0, acceptance=False)
    assert CALLS["torch"] == before + 1
    valid = objects["mask"]
    np.testing.assert_allclose(out["pt"].numpy()[valid], after.pt[valid], rtol=1e-6)
    np.testing.assert_allclose(out["pt"].numpy()[valid], 1.25 * objects["pt"][valid], rtol=1e-6)


def test_it_flows_through_augment_check(tmp_path, dimuon100k):
    """Not a symmetry: the CLI runs it and reports the 25% shift of the dimuon masses."""
    path = tmp_path / "aug.yaml"
    path.write_text(yaml.safe_dump(PIPELINE))
    out = tmp_path / "check"
    args = ["augment-check", str(dimuon100k), "--max-events", "3000", "--pipeline", str(path)]
    res = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert res.exit_code != 0 and "dimuon spectrum changed" in res.output
    summary = json.loads((out / "augment_check.json").read_text())
    assert summary["max_rel_mass_change"] == pytest.approx(0.25, rel=1e-4)
    assert summary["pipeline_hash"] == load_pipeline(path).hash()


@pytest.fixture(scope="module")
def real_tokens(singlemu, event_tokens):
    """EventTokens (with their raw objects) of 300 real 2012 SingleMu events."""
    return event_tokens(singlemu, 300)


def test_it_makes_the_fresh_views_of_pretraining(real_tokens, tmp_path):
    cfg = load_pretrain_config(
        {
            "model": {"size": "custom", "overrides": {"dim": 16, "heads": 2, "layers": 1}},
            "train": {"steps": 2, "batch_size": 32, "progress": False, "device": "cpu"},
            "augment": PIPELINE,
        }
    )
    data = TensorEventDataset.from_event_tokens(real_tokens, TokenConfig(), batch_size=32, seed=2)
    before = CALLS.get("torch", 0)
    pretrain(cfg, data, tmp_path / "run")
    assert CALLS.get("torch", 0) - before == 2 * 2  # 2 steps x 2 views
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["views"]["mode"] == "fresh" and info["views"]["steps"] == ["scale_energy"]
    assert "pipeline scale_energy" in (tmp_path / "run" / "MODEL_CARD.md").read_text()
    written = yaml.safe_load((tmp_path / "run" / "augment_config.yaml").read_text())
    assert written["steps"] == [{"apply_probability": 1.0, "name": "scale_energy", "factor": 1.25}]


PLUGIN = '''
from typing import Literal

from jetfm_coffea.augment import AugmentationStep, register


class MirrorY(AugmentationStep):
    """y -> -y for every object (phi -> -phi): a symmetry, masses unchanged."""

    name: Literal["mirror_y"] = "mirror_y"


@register("mirror_y", params=MirrorY)
def _mirror_y(spec, ctx, state):
    return {**state, "phi": -state["phi"]}
'''


def test_the_cli_imports_plugins_that_register(tmp_path, dimuon100k, monkeypatch):
    """``jetfm --plugin MODULE``: a shell user's augmentation reaches every command."""
    (tmp_path / "jetfm_mirror_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "aug.yaml"
    path.write_text("steps: [{name: mirror_y}, {name: rotate_phi}]\n")
    args = ["augment-check", str(dimuon100k), "--max-events", "3000", "--pipeline", str(path)]
    args += ["--out", str(tmp_path / "check")]
    res = CliRunner().invoke(main, ["--plugin", "jetfm_mirror_plugin", *args])
    assert res.exit_code == 0 and "PASS" in res.output, res.output
    res = CliRunner().invoke(main, ["--plugin", "jetfm_no_such_plugin", *args])
    assert res.exit_code != 0 and "--plugin jetfm_no_such_plugin: cannot import" in res.output


def test_it_makes_the_stored_views_of_build_shards(tmp_path, ttbar2015):
    """The coffea side: the shard processor runs the registered step on numpy arrays."""
    from jetfm_coffea.jobs.shards import build_store
    from jetfm_coffea.shards import open_store

    fileset = {"ttbar": {"files": [str(ttbar2015)], "metadata": {"label": 1}}}
    pipeline = {**PIPELINE, "views": 1}
    before = CALLS.get("numpy", 0)
    summary = build_store(
        fileset,
        tmp_path / "store",
        execution=Execution(executor="iterative", chunksize=100),
        augmentation=pipeline,
    )
    assert summary.events_written == 200 and summary.views_written == {"0": 200}
    assert CALLS.get("numpy", 0) - before == 2  # one view of each of the two chunks
    store = open_store(tmp_path / "store")
    assert store.augmentation["hash"] == load_pipeline(pipeline).hash()
