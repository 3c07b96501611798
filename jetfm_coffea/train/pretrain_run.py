"""The run directory: resolved configs, weights, metrics, model card; and :func:`load_run`.

Layout::

    RUN/config.yaml            resolved PretrainConfig, first line "# hash: <sha256[:16]>"
    RUN/model_config.json      ModelConfig (architecture, feature order, token-config hash)
    RUN/token_config.yaml      TokenConfig of the training data
    RUN/augment_config.yaml    augmentation config (when one was given)
    RUN/model.safetensors      final weights (encoder + heads), metadata: config hashes
    RUN/metrics.jsonl          one JSON object per logged step
    RUN/run.json               status, steps, hashes, data provenance, versions, and
                               ``weights_sha256``: the SHA-256 of model.safetensors
    RUN/MODEL_CARD.md          human summary
    RUN/checkpoints/           resumable checkpoints (see checkpoint.py)

The files, their checks and their atomic writes are owned by
:mod:`jetfm_coffea.model.rundir` (shared with
fine-tuning, export and the scorer); this module adds what is particular to a pretraining
run: its resolved :class:`~jetfm_coffea.train.config.PretrainConfig`, the pretraining
model card and :func:`load_run`.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from jetfm_coffea import __version__
from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.errors import ModelFileError, ModifiedWeightsError, TrainingError
from jetfm_coffea.model.config import ModelConfig
from jetfm_coffea.model.model import EventModel
from jetfm_coffea.model.released import resolve_run
from jetfm_coffea.model.rundir import (
    AUGMENT_CONFIG,
    DATA_SHEET_KEY,
    METRICS,
    RUN_CONFIG,
    build_model_from,
    read_model_files,
    write_model_card,
    write_model_configs,
    write_run_json,
)
from jetfm_coffea.selection.datasheet import data_sheet_markdown
from jetfm_coffea.tokens.config import TokenConfig
from jetfm_coffea.train.config import PretrainConfig, load_pretrain_config

__all__ = [
    "RunConfigs",
    "load_run",
    "read_metrics",
    "write_pretrain_card",
    "write_run_files",
]


@dataclass
class RunConfigs:
    """Everything a run directory records besides the weights."""

    pretrain: PretrainConfig
    model: ModelConfig
    tokens: TokenConfig
    augment: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def write_run_files(run_dir: Path, configs: RunConfigs) -> None:
    """Write the config files and ``run.json`` of a run (rank 0 only).

    ``run.json`` records the SHA-256 of the weights present when it is written (runs
    save their weights first, then their run files; :mod:`jetfm_coffea.model.rundir`).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RUN_CONFIG, configs.pretrain.to_yaml())
    write_model_configs(run_dir, configs.model, configs.tokens)
    if configs.augment is not None:
        atomic_write_text(
            run_dir / AUGMENT_CONFIG, yaml.safe_dump(configs.augment, sort_keys=False)
        )
    info = {
        **configs.info,
        "config_hash": configs.pretrain.hash(),
        "model_config_hash": configs.model.hash(),
        "token_config_hash": configs.tokens.hash(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "jetfm_coffea": _version(),
        },
    }
    configs.info = write_run_json(run_dir, info)


def _version() -> str:
    return __version__


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (a torn last line is ignored)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise TrainingError(f"{run_dir} has no {METRICS}")
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def write_pretrain_card(run_dir: Path, configs: RunConfigs, n_parameters: int) -> None:
    """Write ``MODEL_CARD.md``: provenance, objective, size, steps."""
    cfg, info = configs.pretrain, configs.info
    parts = cfg.objective.card_lines()  # one line per active objective (the registry)
    data = info.get("data", {})
    views = info.get("views", {})
    if views.get("mode") in ("fresh", "resim+physics"):
        of = " of the re-simulated siblings" if views["mode"] == "resim+physics" else ""
        parts.append(
            f"fresh physics views{of} every step: {views['n_views']} per event, pipeline "
            f"{' -> '.join(views['steps'])} (hash `{views['pipeline_hash']}`, seed "
            f"{views['seed']}; `augment_config.yaml`)"
        )
    elif views.get("mode") in ("stored", "hook"):
        parts.append(f"views: {views['mode']} {views.get('hook', '(from the shards)')}")
    elif views.get("mode") == "resim":
        parts.append("views: the re-simulated siblings of each hard event (RS3L)")
    m = configs.model
    text = f"""# Model card: jetfm event encoder ({m.size})

## Model
- Transformer over event tokens: {m.layers} blocks, width {m.dim}, {m.heads} heads,
  {m.pooling} pooling, pair-feature attention bias: {m.pair_features}.
- Parameters: {n_parameters:,} (encoder + heads: {", ".join(info.get("heads", []))}).
- Input features: {", ".join(m.feature_names)}; token config hash `{configs.tokens.hash()}`.

## Objective
{chr(10).join("- " + p for p in parts)}

## Training
- Steps: {info.get("steps_done", 0)} of {cfg.train.steps}; batch {cfg.train.batch_size} per rank
  x {info.get("world_size", 1)} rank(s); AdamW lr {cfg.optim.lr}, warm-up
  {cfg.optim.warmup_steps} steps then cosine; precision {info.get("precision", "?")}.
- Status: {info.get("status", "?")}; config hash `{cfg.hash()}`.

## Data provenance
```json
{json.dumps(data, indent=1, default=str)}
```

## Pretraining data sheet
{data_sheet_markdown(info.get(DATA_SHEET_KEY))}

## Intended use and limits
Self-supervised event representation for CMS NanoAOD events with the token
configuration above; fine-tune or probe before using its outputs for physics.
Embeddings of events built with a different token configuration are meaningless
(`load_run` checks the hash).
"""
    write_model_card(run_dir, text, m)


def load_run(
    run_dir: str | Path,
    *,
    heads: bool = True,
    device: str | torch.device = "cpu",
    allow_modified_weights: bool = False,
) -> tuple[EventModel, RunConfigs]:
    """Load a trained model and its configs from a run directory (safetensors only).

    The directory is read and checked by :func:`jetfm_coffea.model.rundir.read_model_files` (pickles
    refused, configs consistent); the weights must have the SHA-256 that ``run.json``
    recorded when they were written; ``allow_modified_weights`` loads them anyway and
    says so in the returned ``info["loaded_weights"]`` (``sha256``, ``check``).
    ``heads=False`` returns the bare encoder (heads dropped). Problems of the directory
    are :class:`~jetfm_coffea.errors.TrainingError` here (the message names the file).
    ``builtin:<name>`` loads a released encoder (:mod:`~jetfm_coffea.model.released`: its
    files checked against its release card first).
    """
    run_dir = resolve_run(run_dir)
    try:
        files = read_model_files(run_dir, allow_modified_weights=allow_modified_weights)
        pretrain = load_pretrain_config(run_dir / RUN_CONFIG)
        model = build_model_from(files, device=device)
    except ModifiedWeightsError:
        raise  # its own error type: the override is --allow-modified-weights
    except ModelFileError as err:
        raise TrainingError(str(err)) from err
    except (OSError, ValueError) as err:
        raise TrainingError(f"{run_dir} is not a complete run directory: {err}") from err
    augment = None
    if (run_dir / AUGMENT_CONFIG).is_file():
        augment = yaml.safe_load((run_dir / AUGMENT_CONFIG).read_text())
    info = dict(files.run_info)
    info["loaded_weights"] = {"sha256": files.model_hash, "check": files.weights.status}
    if not heads:
        model.drop_heads()
    return model, RunConfigs(pretrain, files.model_config, files.token_config, augment, info)
