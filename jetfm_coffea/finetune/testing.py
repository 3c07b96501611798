"""Random-weight classifier runs for tests, examples and benchmarks.

They have the layout of a fine-tuned run directory (``model.safetensors`` with the
encoder and a ``classifier`` head, ``model_config.json``, ``token_config.yaml``,
``config.yaml``, ``run.json`` with the class names), so the scorer is exercised
exactly as on a real fine-tuned model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from jetfm_coffea.model.config import LEGACY_PAIR_VERSION
from jetfm_coffea.tokens.config import TokenConfig

__all__ = ["make_classifier_run"]


def make_classifier_run(
    run_dir: str | Path,
    size: str = "tiny",
    class_names: Sequence[str] = ("background", "signal"),
    token_config: TokenConfig | None = None,
    seed: int = 0,
    model_version: str | None = None,
    pair_version: int | None = None,
) -> Path:
    """Write a run directory holding a randomly initialised encoder + classification head.

    ``pair_version`` builds the model with that pair-feature definition (default: the
    current one); the legacy version 1 is written as runs were before the field existed
    (no ``pair_version`` in ``model_config.json``), to test that old runs keep working.
    """
    import torch

    from jetfm_coffea.model import build_model, model_config_for
    from jetfm_coffea.model.rundir import MODEL_CONFIG, write_weights
    from jetfm_coffea.train.config import load_pretrain_config
    from jetfm_coffea.train.pretrain_run import RunConfigs, write_run_files

    token_config = token_config or TokenConfig()
    overrides = {} if pair_version is None else {"pair_version": pair_version}
    config = model_config_for(token_config, size, n_classes=len(class_names), **overrides)
    torch.manual_seed(seed)
    model = build_model(config, heads=["classifier"]).eval()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pretrain = load_pretrain_config({"model": {"size": size}})
    info = {"status": "completed", "class_names": list(class_names), "heads": ["classifier"]}
    if model_version:
        info["model_version"] = model_version
    meta = {
        "model_config_hash": config.hash(),
        "token_config_hash": token_config.hash(),
        "format": "jetfm-event-model",
    }
    # weights first, then the run files: run.json records the weights' SHA-256
    write_weights(run_dir, model.state_dict(), meta)
    write_run_files(run_dir, RunConfigs(pretrain, config, token_config, None, info))
    if config.pair_version == LEGACY_PAIR_VERSION:  # as written before the field existed
        path = run_dir / MODEL_CONFIG
        data = json.loads(path.read_text())
        del data["pair_version"]
        path.write_text(json.dumps(data, indent=1))
    return run_dir
