"""docs/extending.md's examples run: its objective and augmentation pretrain together."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import yaml

from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import TensorEventDataset, load_pretrain_config, pretrain, read_metrics

PAGE = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def test_the_extending_examples_pretrain_on_real_events(
    real_tokens, tmp_path, monkeypatch, doc_blocks
):
    objective = doc_blocks("extending.md", "## A pretraining objective")
    augmentation = doc_blocks("extending.md", "## An augmentation")
    for i, code in enumerate(objective["python"] + augmentation["python"]):
        module = types.ModuleType(f"docs_extending_{i}")  # a user's module
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(code, str(PAGE), "exec"), module.__dict__)
    config = {
        **yaml.safe_load(objective["yaml"][0]),
        **yaml.safe_load(augmentation["yaml"][0]),
        "model": {"size": "custom", "overrides": {"dim": 16, "heads": 2, "layers": 1}},
        "train": {"steps": 2, "batch_size": 32, "progress": False, "device": "cpu"},
    }
    cfg = load_pretrain_config(config)
    assert [o.name for o, _ in cfg.objective.active()] == ["contrastive", "masked", "n_objects"]
    data = TensorEventDataset.from_event_tokens(real_tokens, TokenConfig(), batch_size=32, seed=0)
    pretrain(cfg, data, tmp_path / "run")
    assert "n_objects_mse" in read_metrics(tmp_path / "run")[-1]
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "object-count regression (weight 0.5)" in card
    assert "rotate_phi -> scale_pt" in card
