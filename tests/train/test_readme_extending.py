"""The README's "Extending" examples run: its objective and augmentation pretrain together."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import yaml

from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import TensorEventDataset, load_pretrain_config, pretrain, read_metrics

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(heading: str) -> dict[str, list[str]]:
    """The fenced code blocks of a README subsection, by language."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n#", start + len(heading) + 2)
    section = text[start : end if end > 0 else None]
    out: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S):
        out.setdefault(lang, []).append(body)
    return out


def test_the_extending_examples_pretrain_on_real_events(real_tokens, tmp_path, monkeypatch):
    objective = _blocks("### A pretraining objective")
    augmentation = _blocks("### An augmentation")
    for i, code in enumerate(objective["python"] + augmentation["python"]):
        module = types.ModuleType(f"readme_extending_{i}")  # a user's module
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(code, str(README), "exec"), module.__dict__)
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
