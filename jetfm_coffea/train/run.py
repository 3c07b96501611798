"""The run directory: resolved configs, weights, metrics, model card; and :func:`load_run`.

Layout::

    RUN/config.yaml            resolved PretrainConfig, first line "# hash: <sha256[:16]>"
    RUN/model_config.json      ModelConfig (architecture, feature order, token-config hash)
    RUN/token_config.yaml      TokenConfig of the training data
    RUN/augment_config.yaml    augmentation config (when one was given)
    RUN/model.safetensors      final weights (encoder + heads), metadata: config hashes
    RUN/metrics.jsonl          one JSON object per logged step
    RUN/run.json               status, steps, hashes, data provenance, versions
    RUN/MODEL_CARD.md          human summary
    RUN/checkpoints/           resumable checkpoints (see checkpoint.py)
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import safe_open

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.model.config import ModelConfig
from jetfm_coffea.model.model import EventModel
from jetfm_coffea.tokens.config import TokenConfig, load_token_config
from jetfm_coffea.train.checkpoint import atomic_write_text
from jetfm_coffea.train.config import PretrainConfig, load_pretrain_config

__all__ = [
    "PICKLE_SUFFIXES",
    "RunConfigs",
    "load_run",
    "read_metrics",
    "write_model_card",
    "write_run_files",
]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


@dataclass
class RunConfigs:
    """Everything a run directory records besides the weights."""

    pretrain: PretrainConfig
    model: ModelConfig
    tokens: TokenConfig
    augment: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def write_run_files(run_dir: Path, configs: RunConfigs) -> None:
    """Write the config files and ``run.json`` of a run (rank 0 only)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", configs.pretrain.to_yaml())
    atomic_write_text(
        run_dir / "model_config.json", json.dumps(configs.model.model_dump(mode="json"), indent=1)
    )
    atomic_write_text(
        run_dir / "token_config.yaml",
        f"# hash: {configs.tokens.hash()}\n{configs.tokens.to_yaml()}",
    )
    if configs.augment is not None:
        atomic_write_text(
            run_dir / "augment_config.yaml", yaml.safe_dump(configs.augment, sort_keys=False)
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
    configs.info = info
    atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1, default=str))


def _version() -> str:
    from jetfm_coffea import __version__

    return __version__


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (a torn last line is ignored)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise TrainingError(f"{run_dir} has no metrics.jsonl")
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def write_model_card(run_dir: Path, configs: RunConfigs, n_parameters: int) -> None:
    """Write ``MODEL_CARD.md``: provenance, objective, size, steps."""
    cfg, info = configs.pretrain, configs.info
    obj = cfg.objective
    parts = []
    if obj.uses_contrastive:
        t = f", temperature {obj.temperature}" if obj.contrastive == "ntxent" else ""
        parts.append(
            f"contrastive {obj.contrastive} (weight {obj.contrastive_weight}, "
            f"{obj.n_views} views{t})"
        )
    if obj.masked_weight > 0:
        parts.append(
            f"masked object modelling (weight {obj.masked_weight}, "
            f"{obj.mask_fraction:.0%} of tokens, type CE weight {obj.type_weight})"
        )
    if obj.supervised_weight > 0:
        parts.append(f"supervised auxiliary (weight {obj.supervised_weight})")
    data = info.get("data", {})
    views = info.get("views", {})
    if views.get("mode") == "fresh":
        parts.append(
            f"fresh physics views every step: {views['n_views']} per event, pipeline "
            f"{' -> '.join(views['steps'])} (hash `{views['pipeline_hash']}`, seed "
            f"{views['seed']}; `augment_config.yaml`)"
        )
    elif views.get("mode") in ("stored", "hook"):
        parts.append(f"views: {views['mode']} {views.get('hook', '(from the shards)')}")
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

## Intended use and limits
Self-supervised event representation for CMS NanoAOD events with the token
configuration above; fine-tune or probe before using its outputs for physics.
Embeddings of events built with a different token configuration are meaningless
(`load_run` checks the hash).
"""
    atomic_write_text(Path(run_dir) / "MODEL_CARD.md", text)


def load_run(
    run_dir: str | Path, *, heads: bool = True, device: str | torch.device = "cpu"
) -> tuple[EventModel, RunConfigs]:
    """Load a trained model and its configs from a run directory (safetensors only).

    Pickled weight files are never loaded: a run directory without
    ``model.safetensors`` is refused even if ``.pt``/``.bin`` files are present.
    ``heads=False`` returns the bare encoder (heads dropped).
    """
    run_dir = Path(run_dir)
    weights = run_dir / "model.safetensors"
    if not weights.is_file():
        pickles = sorted(p.name for p in run_dir.glob("*") if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f"; found {pickles}, which are pickles and are refused (untrusted code execution)"
            if pickles
            else ""
        )
        raise TrainingError(f"{run_dir} has no model.safetensors{hint}")
    try:
        model_cfg = ModelConfig.model_validate_json((run_dir / "model_config.json").read_text())
        pretrain = load_pretrain_config(run_dir / "config.yaml")
        tokens = load_token_config(run_dir / "token_config.yaml")
    except (OSError, ValueError) as err:
        raise TrainingError(f"{run_dir} is not a complete run directory: {err}") from err
    augment = None
    if (run_dir / "augment_config.yaml").is_file():
        augment = yaml.safe_load((run_dir / "augment_config.yaml").read_text())
    info = {}
    if (run_dir / "run.json").is_file():
        info = json.loads((run_dir / "run.json").read_text())
    with safe_open(str(weights), framework="pt", device="cpu") as fh:
        meta = fh.metadata() or {}
        state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    if meta.get("model_config_hash") not in (None, model_cfg.hash()):
        raise TrainingError(
            f"{weights} was written for model config {meta['model_config_hash']}, "
            f"but model_config.json has hash {model_cfg.hash()}"
        )
    if model_cfg.token_config_hash not in (None, tokens.hash()):
        raise TrainingError(
            f"{run_dir}: model built for token config {model_cfg.token_config_hash}, "
            f"token_config.yaml has {tokens.hash()}"
        )
    head_names = sorted({k.split(".")[1] for k in state if k.startswith("heads.")})
    model = EventModel(model_cfg, heads=head_names)
    model.load_state_dict(state, strict=True)
    if not heads:
        model.drop_heads()
    model.to(device).eval()
    return model, RunConfigs(pretrain, model_cfg, tokens, augment, info)
