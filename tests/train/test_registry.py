"""The objectives registry: a third-party objective from this file trains on real CMS events.

The objective below (regress the event's object multiplicity from the pooled
embedding, with its own head) is everything a new objective needs: this file and
the config that switches it on.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from pydantic import Field
from torch import nn

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.model import ModelConfig, register_head
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import (
    OBJECTIVES,
    Encoded,
    Objective,
    ObjectiveParams,
    TensorEventDataset,
    load_pretrain_config,
    load_run,
    pretrain,
    read_metrics,
    register_objective,
)
from jetfm_coffea.train.config import LEGACY_OBJECTIVE_KEYS


class MultiplicityHead(nn.Module):
    """log(1 + number of objects) from the pooled event embedding."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.linear = nn.Linear(config.dim, 1)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(embedding)[:, 0]


class MultiplicityParams(ObjectiveParams):
    weight: float = Field(0.0, ge=0.0)
    scale: float = Field(1.0, gt=0.0, description="target = scale * log(1 + n objects)")


register_head("multiplicity", MultiplicityHead)


@register_objective("multiplicity")
class Multiplicity(Objective):
    """Regress log(1 + n objects) of every event from its pooled embedding."""

    params = MultiplicityParams
    heads = ("multiplicity",)

    def loss(
        self, encoded: Encoded, params: MultiplicityParams
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n = encoded.batch["mask"].sum(1).float()
        pred = encoded.heads["multiplicity"](encoded.pooled).float()
        loss = F.mse_loss(pred, params.scale * n.log1p())
        return params.weight * loss, {"multiplicity_mse": loss}

    def card_line(self, params: MultiplicityParams) -> str:
        return f"object multiplicity regression (weight {params.weight}, scale {params.scale})"


MICRO = {
    "size": "custom",
    "overrides": {"dim": 16, "heads": 2, "layers": 1, "pair_hidden": 8, "proj_dim": 8},
}


def _config(objective: dict, steps: int = 4) -> dict:
    return {
        "model": MICRO,
        "objective": objective,
        "train": {
            "steps": steps,
            "batch_size": 32,
            "progress": False,
            "log_every": 2,
            "device": "cpu",
        },
        "optim": {"warmup_steps": 1, "lr": 3e-3},
    }


def test_a_registered_objective_trains_on_real_events(real_tokens, tmp_path):
    cfg = load_pretrain_config(_config({"multiplicity": {"weight": 0.5, "scale": 2.0}}))
    assert [o.name for o, _ in cfg.objective.active()] == ["contrastive", "masked", "multiplicity"]
    data = TensorEventDataset.from_event_tokens(real_tokens, TokenConfig(), batch_size=32, seed=1)
    res = pretrain(cfg, data, tmp_path / "run")
    records = read_metrics(tmp_path / "run")
    losses = [r["multiplicity_mse"] for r in records if "multiplicity_mse" in r]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert {"ntxent", "masked_mse"} <= set(records[-1])  # the built-ins still train
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "- object multiplicity regression (weight 0.5, scale 2.0)" in card
    # the head is saved and loads back; the resolved config names the section
    model, configs = load_run(tmp_path / "run")
    assert set(model.heads) == {"projection", "decoder", "multiplicity"}
    assert configs.info["heads"] == ["projection", "decoder", "multiplicity"]
    assert configs.pretrain.objective.section("multiplicity").scale == 2.0
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["objective"]["multiplicity"] == {"weight": 0.5, "scale": 2.0}
    x, m = torch.as_tensor(real_tokens.tokens[:4]), torch.as_tensor(real_tokens.mask[:4])
    res.model.eval()
    torch.testing.assert_close(model.embed(x, m), res.model.embed(x, m))


def test_the_objective_alone_is_enough(real_tokens, tmp_path):
    """Only the new objective on: the encoder sees the tokens, the loss is its term."""
    only = {"contrastive": {"loss": "none"}, "masked": {"weight": 0}, "multiplicity": {"weight": 1}}
    cfg = load_pretrain_config(_config(only))
    assert cfg.objective.heads() == ["multiplicity"] and not cfg.objective.uses_views
    data = TensorEventDataset.from_event_tokens(real_tokens, TokenConfig(), batch_size=32, seed=1)
    res = pretrain(cfg, data, tmp_path / "run")
    last = read_metrics(tmp_path / "run")[-1]
    assert last["loss"] == pytest.approx(last["multiplicity_mse"], rel=1e-6)
    assert res.losses[-1] < res.losses[0]


def test_objective_sections_and_the_flat_keys_of_earlier_configs():
    flat = load_pretrain_config(
        {"objective": {"contrastive": "vicreg", "n_views": 3, "masked_weight": 0.0}}
    )
    nested = load_pretrain_config(
        {"objective": {"contrastive": {"loss": "vicreg", "n_views": 3}, "masked": {"weight": 0}}}
    )
    assert flat.hash() == nested.hash()
    assert flat.objective.n_views == 3 and flat.objective.heads() == ["projection"]
    assert flat.augment["views"] == 3  # the fresh-view pipeline follows the objective
    # the resolved config reads back to itself; a flat override of it still applies
    assert load_pretrain_config(yaml.safe_load(flat.to_yaml())).hash() == flat.hash()
    again = load_pretrain_config(flat, **{"objective.masked_weight": 0.5})
    assert again.objective.section("masked").weight == 0.5
    # sections switched off by default are not written (registering one changes no hash)
    dumped = load_pretrain_config(None).model_dump()["objective"]
    assert list(dumped) == ["contrastive", "masked"]
    assert "multiplicity" in OBJECTIVES
    # old configs still read (data); the flat attribute spellings are gone (API)
    with pytest.raises(AttributeError, match="masked_weight"):
        _ = flat.objective.masked_weight
    assert set(LEGACY_OBJECTIVE_KEYS) >= {"contrastive", "masked_weight", "supervised_weight"}


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ({"multiplicty": {"weight": 1}}, r"unknown objective 'multiplicty'; registered .*"),
        ({"masked": {"fraction": 0.3}}, r"objective\.masked\.fraction: Extra inputs"),
        ({"multiplicity": {"weight": -1}}, r"objective\.multiplicity\.weight: Input should"),
        ({"contrastive": "none", "masked_weight": 0}, "no objective is active"),
    ],
)
def test_bad_objective_sections_are_named(objective, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_pretrain_config({"objective": objective})
    if "unknown" in message:
        assert "contrastive, masked, supervised" in str(err.value)


def test_registration_errors():
    with pytest.raises(ConfigError, match=r"needs heads \['nowhere'\].*register_head"):

        @register_objective("nowhere")
        class Nowhere(Objective):
            heads = ("nowhere",)

    with pytest.raises(ConfigError, match="already registered"):

        @register_objective("masked")
        class Other(Objective):
            pass

    with pytest.raises(ConfigError, match="registered: contrastive, masked"):
        OBJECTIVES["nowhere"]
    with pytest.raises(ValueError, match="already registered"):
        register_head("decoder", MultiplicityHead)


#: The objective section as runs wrote it before the registry (flat keys).
LEGACY_SECTION = {
    "contrastive": "ntxent", "contrastive_weight": 1.0, "temperature": 0.1, "vicreg_sim": 25.0,
    "vicreg_var": 25.0, "vicreg_cov": 1.0, "n_views": 2, "masked_weight": 1.0,
    "mask_fraction": 0.25, "type_weight": 1.0, "supervised_weight": 0.0,
}  # fmt: skip


def test_a_run_directory_of_the_flat_format_loads_and_resumes_exactly(real_tokens, tmp_path):
    def data():
        return TensorEventDataset.from_event_tokens(
            real_tokens, TokenConfig(), batch_size=32, seed=1
        )

    cfg = load_pretrain_config(_config({}, steps=4))
    straight = pretrain(cfg, data(), tmp_path / "a")
    pretrain(cfg, data(), tmp_path / "b", stop_at=2)
    path = tmp_path / "b" / "config.yaml"
    written = yaml.safe_load(path.read_text())
    written["objective"] = LEGACY_SECTION  # as an earlier version wrote it
    path.write_text(yaml.safe_dump(written, sort_keys=False))
    _, configs = load_run(tmp_path / "b")
    assert configs.pretrain.hash() == cfg.hash()  # the same config, read from flat keys
    rest = pretrain(cfg, data(), tmp_path / "b", resume=True)
    assert straight.losses[2:] == rest.losses
